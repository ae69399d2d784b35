"""Tokens against the mean field (spherepde.meanfield): empirical harmonic coefficients, negative
Sobolev and exact Wasserstein distances, and token runs against PDE runs. References: scipy's
harmonics and POT, closed forms for Dirac masses and lattices, permutations."""

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy.special import eval_legendre

from spherepde import meanfield, tokens
from spherepde.errors import InputError
from spherepde.harmonics import harmonic_dimension
from spherepde.manifolds import Circle, Sphere

SETTINGS = settings(max_examples=40)

MANIFOLDS = {3: Sphere, 2: Circle}


def unit(v):
    v = np.atleast_2d(np.asarray(v, dtype=float))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def zonal(d, l, t):
    """Σ_m Y_lm(x) Y_lm(y) / N(d, l) at t = ⟨x,y⟩ (addition theorem): P_l(t) on S², cos(l·arccos t) on S¹."""
    return eval_legendre(l, t) if d == 3 else np.cos(l * np.arccos(np.clip(t, -1, 1)))


points = st.lists(st.floats(-1, 1), min_size=3, max_size=3).filter(lambda v: np.linalg.norm(v) > 0.1)


@pytest.mark.parametrize("d", [2, 3])
@SETTINGS
@given(seed=st.integers(0, 2**31))
def test_real_harmonics_match_the_transforms(d, seed):
    """Σ_k w_k f(x_k) Y(x_k) over the quadrature grid = the coefficients of f from the transform
    (the quadrature is exact for the products), and Y(x_k)·a = the synthesized grid values."""
    M = MANIFOLDS[d](12)
    a = np.random.default_rng(seed).standard_normal(M.real_size)
    f = M.synthesis(M.from_real_coefficients(a)).ravel()
    Y = M.harmonics(M.points().reshape(-1, d))
    np.testing.assert_allclose((M.weights.ravel() * f) @ Y, a, atol=1e-12 * np.abs(a).sum())
    np.testing.assert_allclose(Y @ a, f, atol=1e-12 * np.abs(a).sum())


@pytest.mark.parametrize("d", [2, 3])
@SETTINGS
@given(x=points, y=points)
def test_real_harmonics_satisfy_the_addition_theorem(d, x, y):
    """Σ_m Y_lm(x) Y_lm(y) = N(d,l) P_l(⟨x,y⟩): independent of SHTns and of the recurrence."""
    assume(min(np.linalg.norm(x[:d]), np.linalg.norm(y[:d])) > 0.1)
    x, y = unit(x[:d]), unit(y[:d])
    L = 20
    degrees = MANIFOLDS[d](L).real_degrees
    products = MANIFOLDS[d](L).harmonics(x)[0] * MANIFOLDS[d](L).harmonics(y)[0]
    t = float(x[0] @ y[0])
    for l in range(L + 1):
        N = harmonic_dimension(d, l)
        assert products[degrees == l].sum() == pytest.approx(N * zonal(d, l, t), abs=1e-11 * N)


def sample(rng, n, d, a, manifold):
    """n iid tokens from ρ = Σ a Y (exact rejection sampling: |Σ_m a_lm Y_lm| ≤ ‖a_l‖ √N(d,l))."""
    l = manifold.real_degrees
    bound = sum(np.linalg.norm(a[l == k]) * np.sqrt(harmonic_dimension(d, k)) for k in range(manifold.lmax + 1))
    out = np.empty((0, d))
    while len(out) < n:
        x = unit(rng.standard_normal((4 * n, d)))
        keep = rng.random(len(x)) * bound < manifold.harmonics(x) @ a
        out = np.vstack([out, x[keep]])
    return out[:n]


@pytest.mark.parametrize("d", [2, 3])
def test_empirical_coefficients_of_samples_converge_like_one_over_root_n(d):
    """Tokens drawn from a band-limited ρ: E Σ_{1≤l≤L} Σ_m (â_lm − a_lm)² = (Σ_{l=1}^L N(d,l) − Σ_{l≥1} ‖a_l‖²)/n
    exactly (Σ_m Y_lm² = N(d,l) pointwise). The mean over 30 samples has a relative standard
    error ≈ √(2/(30·dof)) ≤ 5% (dof = Σ N(d,l) = 12 on S¹, 48 on S²); tolerance 20%. A sign or
    scale error in any harmonic would bias â and fail at n = 8000."""
    M = MANIFOLDS[d](6)
    a = np.zeros(M.real_size)
    a[0] = 1.0
    for (l, m), value in {(1, 0): 0.1, (2, 1): 0.15, (4, 0) if d == 2 else (4, -3): 0.12}.items():
        a[M.real_index(l, m)] = value  # Σ |a| √N < 1: ρ > 0
    rng = np.random.default_rng(11)
    dof = sum(harmonic_dimension(d, l) for l in range(1, 7))
    for n in (500, 2000, 8000):
        errors = [np.sum((meanfield.empirical_coefficients(sample(rng, n, d, a, M), M) - a)[1:] ** 2) for _ in range(30)]
        assert np.mean(errors) * n / (dof - np.sum(a[1:] ** 2)) == pytest.approx(1.0, abs=0.2)


@SETTINGS
@given(st.lists(points, min_size=4, max_size=4))
def test_wasserstein_of_two_diracs_on_the_sphere(p):
    """W₂²(½δ_p + ½δ_q, ½δ_p' + ½δ_q') = ½ min over the two pairings of the squared geodesic distances."""
    p, q, r, s = (unit(v)[0] for v in p)
    dist = lambda u, v: np.arccos(np.clip(u @ v, -1, 1))  # noqa: E731
    expected = np.sqrt(0.5 * min(dist(p, r) ** 2 + dist(q, s) ** 2, dist(p, s) ** 2 + dist(q, r) ** 2))
    # arccos near ±1 loses half the digits: 1e-7 absolute
    assert meanfield.wasserstein_distance([p, q], [r, s]) == pytest.approx(expected, abs=1e-7)


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 2**31))
def test_wasserstein_on_the_sphere_against_permutations(n, seed):
    """Equal weights, n = m: the optimal plan is a permutation (Birkhoff); brute force over all of them."""
    import itertools

    rng = np.random.default_rng(seed)
    x, y = unit(rng.standard_normal((n, 3))), unit(rng.standard_normal((n, 3)))
    cost = meanfield.geodesic_distance(x, y) ** 2
    best = min(cost[range(n), perm].mean() for perm in itertools.permutations(range(n)))
    assert meanfield.wasserstein_distance(x, y) == pytest.approx(np.sqrt(best), abs=1e-12)


@SETTINGS
@given(st.integers(1, 40), st.floats(-10.0, 10.0))
def test_circle_wasserstein_of_a_rotated_lattice(n, shift):
    """n equally spaced equal atoms turned by `shift`: W₂ = the distance from shift to (2π/n)ℤ.
    W₂ is the root of W₂², so near 0 its absolute accuracy is √(round-off) ≈ 1e-8."""
    theta = 2 * np.pi * np.arange(n) / n
    step = 2 * np.pi / n
    expected = abs(shift - step * np.round(shift / step))
    assert meanfield.circle_wasserstein_distance(theta, theta + shift) == pytest.approx(expected, abs=1e-7)


@SETTINGS
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31))
def test_circle_wasserstein_against_pot(n, m, seed):
    """The circular formula against the network simplex on the full arc-length cost matrix."""
    import ot

    rng = np.random.default_rng(seed)
    theta, phi = rng.uniform(-np.pi, 3 * np.pi, n), rng.uniform(0, 2 * np.pi, m)
    a, b = rng.random(n) + 0.01, rng.random(m) + 0.01
    arc = np.abs(np.mod(theta[:, None] - phi[None, :] + np.pi, 2 * np.pi) - np.pi)
    expected = np.sqrt(ot.emd2(a / a.sum(), b / b.sum(), arc**2))
    assert meanfield.circle_wasserstein_distance(theta, phi, a, b) == pytest.approx(expected, abs=1e-12)
    x = np.column_stack([np.cos(theta), np.sin(theta)])
    y = np.column_stack([np.cos(phi), np.sin(phi)])
    assert meanfield.wasserstein_distance(x, y, a, b) == pytest.approx(expected, abs=1e-12)


def test_wasserstein_of_a_lattice_against_the_uniform_density():
    """n equally spaced tokens vs ρ ≡ 1 on S¹: each token takes its arc of length 2π/n, so
    W₂² = (1/2π) n ∫_{-π/n}^{π/n} θ² dθ = (π/n)²/3. The density as 3·4000+1 grid points is off by
    a relative (n/m)² ≈ 1e-4."""
    M = Circle(8)
    c = M.from_real_coefficients(np.eye(1, M.real_size)[0])
    n = 100
    lattice = tokens.initial_tokens("lattice", n, 2)
    result = meanfield.tokens_vs_density(lattice, M, c, lmax=8, grid_lmax=4000)
    assert result["wasserstein"] == pytest.approx(np.pi / (n * np.sqrt(3)), rel=1e-3)
    assert result["support"] == Circle(4000).n and result["clipped_mass"] == 0.0
    # the lattice's coefficients vanish below degree n: the Sobolev distance sees nothing
    assert result["sobolev"] < 1e-13


@pytest.mark.parametrize("d,grid", [(3, 12), (3, 6), (2, 12), (2, 5)])
def test_density_support_keeps_mass_and_low_coefficients(d, grid):
    """The weighted grid points of a density of degree 12, on its own grid or coarse-grained:
    the quadrature is exact to degree ≥ 3·grid, so mass and every coefficient of degree
    ≤ 3·grid − 12 are exact."""
    M = MANIFOLDS[d](12)
    a = np.zeros(M.real_size)
    a[0] = 1.0
    a[1:] = 0.05 * np.random.default_rng(3).standard_normal(M.real_size - 1) / np.sqrt(M.real_degrees[1:] + 1.0) ** 3
    x, w, clipped = meanfield.density_support(M, M.from_real_coefficients(a), grid)
    assert clipped == 0.0 and w.sum() == pytest.approx(1.0, abs=1e-15)
    exact = M.real_degrees <= 3 * grid - 12
    np.testing.assert_allclose((w @ M.harmonics(x))[exact], a[exact], atol=1e-13)
    if grid < 12:
        assert not exact.all() and len(x) < M.weights.size  # coarse-grained indeed
    with pytest.raises(InputError, match="grid_lmax"):
        meanfield.density_support(M, M.from_real_coefficients(a), 3)


@SETTINGS
@given(st.floats(0.05, np.pi), st.floats(0.6, 3.0))
def test_sobolev_distance_of_two_diracs(gamma, s):
    """‖δ_x − δ_y‖²_{H^{-s}} = Σ_{l=1}^{L} (1 + l(l+1))^{-s} 2(2l+1)(1 − P_l(cos γ)) on S² (addition theorem)."""
    M = Sphere(16)
    x, y = np.array([[0, 0, 1.0]]), np.array([[np.sin(gamma), 0, np.cos(gamma)]])
    l = np.arange(1, 17)
    expected = np.sqrt(np.sum((1 + l * (l + 1.0)) ** -s * 2 * (2 * l + 1) * (1 - eval_legendre(l, np.cos(gamma)))))
    got = meanfield.sobolev_distance(meanfield.empirical_coefficients(x, M), meanfield.empirical_coefficients(y, M), M, s)
    assert got == pytest.approx(expected, rel=1e-11)


@SETTINGS
@given(st.integers(0, 2**31))
def test_sobolev_distance_is_a_rotation_invariant_metric(seed):
    """Symmetric, zero on equal measures, triangle inequality, invariant under a common
    rotation (each degree is an orthogonal representation), decreasing in s."""
    rng = np.random.default_rng(seed)
    M = Sphere(10)
    clouds = [unit(rng.standard_normal((rng.integers(1, 30), 3))) for _ in range(3)]
    R = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    a, b, c = (meanfield.empirical_coefficients(x, M) for x in clouds)
    ra, rb = (meanfield.empirical_coefficients(x @ R.T, M) for x in clouds[:2])
    D = lambda u, v, s=meanfield.SOBOLEV_ORDER: meanfield.sobolev_distance(u, v, M, s)  # noqa: E731
    assert D(a, a) == 0.0 and D(a, b) == pytest.approx(D(b, a), rel=1e-15)
    assert D(a, c) <= D(a, b) + D(b, c) + 1e-15
    assert D(ra, rb) == pytest.approx(D(a, b), rel=1e-10)
    assert D(a, b, 1.0) >= D(a, b, 2.0) >= D(a, b, 3.0)


@pytest.mark.parametrize("d,beta", [(3, 4.0), (3, -2.5), (2, 6.0)])
def test_particle_energy_is_the_pde_energy_less_one_over_two_beta(d, beta):
    """Conventions: tokens.energy(x) = E − 1/(2β) with E = (1/2βn²) Σ_ij e^{β⟨x_i,x_j⟩}; the
    PDE diagnostic is E_β(ρ) = (1/2β) Σ_l ĥ_l E_l (diagnostics.energy_scaled · e^{|β|}). Applied to
    the empirical measure (its spectrum by the pair sum, up to a degree where ĥ_l/ĥ_0 < 1e-17)
    the two must differ by exactly 1/(2β); the self-interaction i = j is part of both."""
    from spherepde import diagnostics
    from spherepde.dynamics import ContinuityEquation
    from spherepde.model import AttentionModel

    x = tokens.initial_tokens("uniform", 300, d, seed=1)
    M = MANIFOLDS[d](48)
    equation = ContinuityEquation(M, AttentionModel("SA", beta, d))
    spectrum = tokens.empirical_spectrum(x, M.lmax)
    pde_energy = diagnostics.energy_scaled(equation.model, spectrum) * np.exp(abs(beta))
    assert tokens.energy(x, beta) == pytest.approx(pde_energy - 1 / (2 * beta), rel=1e-11)
    # and by coefficients from the harmonics instead of the pair sum
    a = meanfield.empirical_coefficients(x, M)
    assert np.bincount(M.real_degrees, a**2) == pytest.approx(spectrum, rel=1e-9, abs=1e-15)


def test_compare_token_run(tmp_path):
    """A token run against a PDE run of the same model: at t = 0 the tokens are n iid
    uniform and the PDE's ρ₀ is within 1e-3 of uniform, so D_s ≈ √(Σ_l w_l N(d,l)/n) (the
    sampling noise); refused for another β."""
    from spherepde import config, solver

    time = {"t_end": 0.5, "save_every": 0.25}
    solver.run(config.resolve({"model": {"beta": 4.0}, "domain": {"lmax": 24}, "time": time}), tmp_path / "pde.h5")
    raw = {"model": {"beta": 4.0}, "particles": {"n": 400}, "time": time}
    solver.run(config.resolve_particles(raw), tmp_path / "tokens.h5")
    result = meanfield.compare_token_run(tmp_path / "tokens.h5", tmp_path / "pde.h5", lmax=12, grid_lmax=16)
    assert result["t"] == [0.0, 0.25, 0.5] and len(result["sobolev"]) == 3 and result["support"] > 400
    l = np.arange(1, 13)
    noise = np.sqrt(np.sum((1 + l * (l + 1.0)) ** -2 * (2 * l + 1)) / 400)
    assert 0.6 * noise < result["sobolev"][0] < 1.5 * noise  # one sample: the χ² with ~168 dof varies by ~±20%
    assert all(0 < w < 1 for w in result["wasserstein"])
    solver.run(config.resolve_particles({**raw, "model": {"beta": 5.0}}), tmp_path / "other.h5")
    with pytest.raises(InputError, match="different models"):
        meanfield.compare_token_run(tmp_path / "other.h5", tmp_path / "pde.h5")
