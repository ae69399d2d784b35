"""Measured against predicted growth rates, on synthetic spectra with known rates."""
import json
import math

import h5py
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from spherepde import compare, config, linear
from spherepde.errors import InputError

SETTINGS = settings(deadline=None, max_examples=40)
WINDOW = 0.05  # compare_spectrum's default max_amplitude


def exponential_spectrum(t, initial, rates):
    """E_l(t) = E_l(0) e^{2λ_l t} for l ≥ 1 and E_0 = 1: exactly linear dynamics."""
    energy = np.asarray(initial)[None, :] * np.exp(2 * np.outer(t, rates))
    energy[:, 0] = 1.0
    return energy


def initial_energies(d, weights):
    """White noise: E_l(0) ∝ N(d,l), times weights of order one."""
    return 1e-8 * np.array([1.0] + [linear.harmonic_dimension(l, d) * w for l, w in enumerate(weights, 1)])


def write_run(path, t, spectrum, config, modes=None):
    """A run file with the layout of design.md §2 (only what compare reads)."""
    with h5py.File(path, "w") as f:
        f["t"] = t
        f["diagnostics/spectrum"] = spectrum
        if modes is not None:
            f["diagnostics/modes"] = modes
        f.attrs["config"] = config


def config_text(model="SA", beta=9.0, kind="sphere", lmax=10, modes=None, extra=""):
    seeded = f"modes = {json.dumps(modes)}\n" if modes else ""
    return (
        f'[model]\nname = "{model}"\nbeta = {beta}\n{extra}\n[domain]\nkind = "{kind}"\nlmax = {lmax}\n'
        f'[initial]\nkind = "perturbed_uniform"\namplitude = 1e-3\n{seeded}'
    )


problems = st.tuples(
    st.sampled_from(["SA", "USA"]),
    st.sampled_from([2, 3]),
    st.one_of(st.floats(1.0, 40.0), st.floats(-20.0, -1.0)),
    st.lists(st.floats(0.5, 2.0), min_size=10, max_size=10),
    st.integers(30, 120),
)


@SETTINGS
@given(problem=problems)
def test_recovers_known_rates(problem):
    model, d, beta, weights, n_t = problem
    rates = linear.growth_rates(beta, d, model, 10)
    initial = initial_energies(d, weights)
    fastest = int(np.argmax(rates))
    t = np.linspace(0, 1.2 * math.log(1 / initial[fastest]) / (2 * rates[fastest]), n_t)  # past A = 1
    energy = exponential_spectrum(t, initial, rates)
    result = compare.compare_spectrum(t, energy, beta, d, model)

    amplitude = np.sqrt(energy[:, 1:].sum(axis=1))
    assert result["window"]["t_end"] == t[amplitude <= WINDOW][-1]
    assert result["window"]["t_start"] == t[0]
    # Exact exponentials: the least-squares slopes are exact up to rounding of log E
    # (≤ 1e-15 |log E| ≈ 4e-14) over the fitted span, far below 1e-9 of the largest rate.
    scale = np.max(np.abs(rates))
    fitted = [row for row in result["degrees"] if row["measured_rate"] is not None]
    assert result["window"]["leading_degree"] in [row["degree"] for row in fitted]
    for row in fitted:
        assert row["predicted_rate"] == rates[row["degree"]]
        assert abs(row["measured_rate"] - rates[row["degree"]]) <= 1e-9 * scale
    dominant = result["dominant_degree"]
    at_end = energy[np.nonzero(amplitude <= WINDOW)[0][-1]]
    assert dominant["measured"] == dominant["expected"] == int(np.argmax(at_end[1:])) + 1
    assert dominant["fastest_growing"] == linear.dominant_degree(beta, d, model)
    # Predicted end: Σ_l E_l(0) e^{2λ_l t} = 1; the measurement interpolates log A between
    # snapshots of this same function, so it is within one snapshot spacing.
    end = result["linear_phase_end"]
    assert np.sum(initial[1:] * np.exp(2 * rates[1:] * end["predicted"])) == pytest.approx(1.0, rel=1e-9)
    assert abs(end["measured"] - end["predicted"]) <= t[1] - t[0]
    json.dumps(result, allow_nan=False)


@SETTINGS
@given(problem=problems, seed=st.integers(0, 2**32 - 1))
def test_recovers_rates_through_noise(problem, seed):
    # Multiplicative noise e^{η}, η ~ N(0, σ²) on E_l: log √E_l carries noise σ/2, so the
    # fitted slope has standard error (σ/2)/√S_tt, S_tt = Σ (t_i - t̄)² over the fitted
    # snapshots; 6 standard errors fail with probability ~2e-9.
    model, d, beta, weights, n_t = problem
    sigma = 1e-3
    rates = linear.growth_rates(beta, d, model, 10)
    initial = initial_energies(d, weights)
    fastest = int(np.argmax(rates))
    t = np.linspace(0, 1.2 * math.log(1 / initial[fastest]) / (2 * rates[fastest]), n_t)
    noise = np.random.default_rng(seed).normal(0, sigma, (n_t, 11))
    energy = exponential_spectrum(t, initial, rates) * np.exp(noise)
    result = compare.compare_spectrum(t, energy, beta, d, model)
    lead = result["degrees"][result["window"]["leading_degree"] - 1]
    used = t[(t >= lead["t_first"]) & (t <= result["window"]["t_end"])][: lead["samples"]]
    standard_error = sigma / 2 / math.sqrt(np.sum((used - used.mean()) ** 2))
    assert abs(lead["measured_rate"] - lead["predicted_rate"]) <= 6 * standard_error


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("d, l", [(3, 4), (2, 3)])
def test_seeded_mode_and_nonlinear_harmonics(sign, d, l):
    # ρ = 1 + c(t) Y_l with c = ±1e-3 e^{λ_l t}; the quadratic terms put energy c⁴ into degree
    # 2l, which grows at 2λ_l: it lies below A²/max_amplitude and must not be fitted.
    beta = 9.0
    rates = linear.growth_rates(beta, d, "SA", 2 * l)
    t = np.linspace(0, 12, 49)
    c = sign * 1e-3 * np.exp(rates[l] * t)
    energy = np.zeros((t.size, 2 * l + 1))
    energy[:, 0], energy[:, l], energy[:, 2 * l] = 1.0, c**2, c**4
    result = compare.compare_spectrum(t, energy, beta, d, "SA", modes=[[l, 0]], mode_coefficients=c[:, None])
    (mode,) = result["modes"]
    assert (mode["degree"], mode["order"]) == (l, 0)
    assert mode["measured_rate"] == pytest.approx(rates[l], rel=1e-12)  # exact data, see above
    assert result["degrees"][l - 1]["measured_rate"] == pytest.approx(rates[l], rel=1e-12)
    assert result["degrees"][2 * l - 1]["measured_rate"] is None


def _refusal(t, energy, match):
    with pytest.raises(compare.NoExponentialWindow, match=match) as info:
        compare.compare_spectrum(t, energy, 9.0, 3, "SA")
    assert "\n" not in str(info.value) and isinstance(info.value, InputError)


def test_refuses_a_run_far_from_uniform():
    t = np.linspace(0, 5, 30)
    _refusal(t, exponential_spectrum(t, [1.0] + [0.02] * 6, [0.0] + [0.5] * 6), "does not start near")


def test_refuses_decay():
    t = np.linspace(0, 5, 30)
    _refusal(t, exponential_spectrum(t, [1.0] + [1e-6] * 6, [0.0] + [-0.5] * 6), "does not grow")


@pytest.mark.parametrize("energy", [0.0, 1e-30])
def test_refuses_a_uniform_state(energy):
    # exactly uniform, or perturbed at round-off level only
    t = np.linspace(0, 5, 30)
    _refusal(t, exponential_spectrum(t, [1.0] + [energy] * 6, [0.0] + [0.5] * 6), "above round-off")


def test_refuses_too_few_snapshots():
    t = np.array([0.0, 5.0, 10.0, 15.0])
    _refusal(t, exponential_spectrum(t, [1.0] + [1e-6] * 6, [0.0] + [0.4] * 6), "only 2 snapshot")


@SETTINGS
@given(power=st.floats(1.0, 10.0))
def test_refuses_power_law_growth(power):
    # E_4 = 1e-8 (1+t)^p reaches ‖ρ-1‖ = 0.05 within the run but is no exponential: log √E_4
    # is concave in t, by at least 13% of its rise for p ≤ 10 over that window.
    t_window = (WINDOW**2 / 1e-8) ** (1 / power) - 1
    t = np.linspace(0, 1.5 * t_window, 200)
    energy = np.zeros((t.size, 6))
    energy[:, 0], energy[:, 4] = 1.0, 1e-8 * (1 + t) ** power
    _refusal(t, energy, "straight line")


def test_rejects_inconsistent_input():
    t = np.linspace(0, 1, 10)
    with pytest.raises(InputError, match="shape"):
        compare.compare_spectrum(t, np.ones((9, 5)), 9.0, 3, "SA")
    with pytest.raises(InputError, match="mode"):
        compare.compare_spectrum(
            t, np.ones((10, 5)), 9.0, 3, "SA", modes=[[2, 0]], mode_coefficients=np.ones((10, 2))
        )
    with pytest.raises(InputError, match="model"):
        compare.compare_spectrum(t, np.ones((10, 5)), 9.0, 3, "XA")


# --- run files ------------------------------------------------------------------------------

def seeded_run(path, kind="sphere", model="SA", beta=9.0, extra=""):
    d, l = config.DOMAINS[kind], 4
    rates = linear.growth_rates(beta, d, model, 10)
    t = np.linspace(0, 2.2 * math.log(1e3) / rates[l], 60)
    c = 1e-3 * np.exp(rates[l] * t)
    energy = np.zeros((t.size, 11))
    energy[:, 0], energy[:, l] = 1.0, c**2
    write_run(path, t, energy, config_text(model, beta, kind, 10, [[l, 0]], extra), c[:, None])
    return rates[l]


@pytest.mark.parametrize("kind, model, beta", [("sphere", "SA", 9.0), ("circle", "usa", 5.0)])
def test_compare_run(tmp_path, kind, model, beta):
    path = tmp_path / "run.h5"
    rate = seeded_run(path, kind, model, beta)
    result = compare.compare_run(path)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["dim"] == config.DOMAINS[kind] and result["model"] == model.upper()
    assert (result["run"], result["domain"], result["initial"]) == (str(path), kind, "perturbed_uniform")
    assert result["modes"][0]["measured_rate"] == pytest.approx(rate, rel=1e-12)
    assert result["degrees"][3]["measured_rate"] == pytest.approx(rate, rel=1e-12)
    # one degree from amplitude 1e-3: ‖ρ-1‖ = 1 at ln(1e3)/λ_4, both measured on the
    # log-linear data (interpolation is exact) and predicted
    end = result["linear_phase_end"]
    assert end["predicted"] == pytest.approx(math.log(1e3) / rate, rel=1e-12)
    assert end["measured"] == pytest.approx(math.log(1e3) / rate, rel=1e-12)
    text = compare.format_comparison(result)
    assert "window t ∈ [0," in text and "leading degree 4" in text and str(path) in text
    assert "no linear signal" in text and "1-3, 5-10" in text


def test_compare_run_refuses_general_matrices(tmp_path):
    path = tmp_path / "run.h5"
    seeded_run(path, extra="V = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]")
    with pytest.raises(InputError, match="V in .* is not the identity"):
        compare.compare_run(path)
    seeded_run(path, extra="V = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]")
    assert compare.compare_run(path)["window"]["leading_degree"] == 4


def test_compare_run_rejects_bad_files(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(InputError, match="does not exist"):
        compare.compare_run(tmp_path / "missing.h5")
    write_run(path, np.arange(5.0), np.ones((5, 3)), "[model\nname =")
    with pytest.raises(InputError, match="not valid TOML"):
        compare.compare_run(path)
    write_run(path, np.arange(5.0), np.ones((5, 3)), config_text(kind="torus"))
    with pytest.raises(InputError, match="torus"):
        compare.compare_run(path)
    with h5py.File(path, "w") as f:
        f["t"] = np.arange(5.0)
        f.attrs["config"] = config_text()
    with pytest.raises(InputError, match="diagnostics/spectrum"):
        compare.compare_run(path)


def test_plot_comparison(tmp_path):
    path = tmp_path / "run.h5"
    seeded_run(path)
    for source in (path, compare.compare_run(path)):
        out = compare.plot_comparison(source, tmp_path / "compare.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        out.unlink()
    t = np.linspace(0, 10, 40)
    energy = exponential_spectrum(t, [1] + [1e-6] * 4, [0] + [0.5] * 4)
    synthetic = compare.compare_spectrum(t, energy, 9.0, 3, "SA")
    with pytest.raises(InputError, match="run file"):
        compare.plot_comparison(synthetic, tmp_path / "compare.png")


def test_slow_degrees_are_flagged_unresolved():
    """A degree whose predicted amplitude changes by less than a factor e over its fitted span is
    reported but flagged, and left out of the text table."""
    from spherepde import linear

    beta, lmax = 9.0, 12
    rates = linear.growth_rates(beta, 3, "SA", lmax)
    t = np.linspace(0.0, 8.0, 33)
    energy = 1e-8 * np.exp(2 * np.outer(t, rates))
    energy[:, 0] = 1.0
    result = compare.compare_spectrum(t, energy, beta, 3, "SA")
    for row in result["degrees"]:
        span = t[-1] - row["t_first"] if row["t_first"] is not None else 0.0
        assert row["resolved"] == (row["measured_rate"] is not None and rates[row["degree"]] * span >= 1.0)
    assert any(row["resolved"] for row in result["degrees"]) and not all(row["resolved"] for row in result["degrees"])
    text = compare.format_comparison(result)
    slowest = max(row["degree"] for row in result["degrees"] if not row["resolved"])
    assert f"\n{slowest:>5} " not in text and "not measurable" in text


# --------------------------------------------------------------------------- tokens vs mean field
from scipy.special import eval_legendre  # noqa: E402

from spherepde import particles  # noqa: E402
from spherepde.circle import Circle  # noqa: E402
from spherepde.sphere import Sphere  # noqa: E402

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
        N = particles.harmonic_dimension(d, l)
        assert products[degrees == l].sum() == pytest.approx(N * zonal(d, l, t), abs=1e-11 * N)


def sample(rng, n, d, a, manifold):
    """n iid tokens from ρ = Σ a Y (exact rejection sampling: |Σ_m a_lm Y_lm| ≤ ‖a_l‖ √N(d,l))."""
    l = manifold.real_degrees
    bound = sum(np.linalg.norm(a[l == k]) * np.sqrt(particles.harmonic_dimension(d, k)) for k in range(manifold.lmax + 1))
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
    dof = sum(particles.harmonic_dimension(d, l) for l in range(1, 7))
    for n in (500, 2000, 8000):
        errors = [np.sum((compare.empirical_coefficients(sample(rng, n, d, a, M), M) - a)[1:] ** 2) for _ in range(30)]
        assert np.mean(errors) * n / (dof - np.sum(a[1:] ** 2)) == pytest.approx(1.0, abs=0.2)


@SETTINGS
@given(st.lists(points, min_size=4, max_size=4))
def test_wasserstein_of_two_diracs_on_the_sphere(p):
    """W₂²(½δ_p + ½δ_q, ½δ_p' + ½δ_q') = ½ min over the two pairings of the squared geodesic distances."""
    p, q, r, s = (unit(v)[0] for v in p)
    dist = lambda u, v: np.arccos(np.clip(u @ v, -1, 1))  # noqa: E731
    expected = np.sqrt(0.5 * min(dist(p, r) ** 2 + dist(q, s) ** 2, dist(p, s) ** 2 + dist(q, r) ** 2))
    # arccos near ±1 loses half the digits: 1e-7 absolute
    assert compare.wasserstein_distance([p, q], [r, s]) == pytest.approx(expected, abs=1e-7)


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 2**31))
def test_wasserstein_on_the_sphere_against_permutations(n, seed):
    """Equal weights, n = m: the optimal plan is a permutation (Birkhoff); brute force over all of them."""
    import itertools

    rng = np.random.default_rng(seed)
    x, y = unit(rng.standard_normal((n, 3))), unit(rng.standard_normal((n, 3)))
    cost = compare.geodesic_distance(x, y) ** 2
    best = min(cost[range(n), perm].mean() for perm in itertools.permutations(range(n)))
    assert compare.wasserstein_distance(x, y) == pytest.approx(np.sqrt(best), abs=1e-12)


@SETTINGS
@given(st.integers(1, 40), st.floats(-10.0, 10.0))
def test_circle_wasserstein_of_a_rotated_lattice(n, shift):
    """n equally spaced equal atoms turned by `shift`: W₂ = the distance from shift to (2π/n)ℤ.
    W₂ is the root of W₂², so near 0 its absolute accuracy is √(round-off) ≈ 1e-8."""
    theta = 2 * np.pi * np.arange(n) / n
    step = 2 * np.pi / n
    expected = abs(shift - step * np.round(shift / step))
    assert compare.circle_wasserstein_distance(theta, theta + shift) == pytest.approx(expected, abs=1e-7)


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
    assert compare.circle_wasserstein_distance(theta, phi, a, b) == pytest.approx(expected, abs=1e-12)
    x = np.column_stack([np.cos(theta), np.sin(theta)])
    y = np.column_stack([np.cos(phi), np.sin(phi)])
    assert compare.wasserstein_distance(x, y, a, b) == pytest.approx(expected, abs=1e-12)


def test_wasserstein_of_a_lattice_against_the_uniform_density():
    """n equally spaced tokens vs ρ ≡ 1 on S¹: each token takes its arc of length 2π/n, so
    W₂² = (1/2π) n ∫_{-π/n}^{π/n} θ² dθ = (π/n)²/3. The density as 3·4000+1 grid points is off by
    a relative (n/m)² ≈ 1e-4."""
    M = Circle(8)
    c = M.from_real_coefficients(np.eye(1, M.real_size)[0])
    n = 100
    tokens = particles.initial_tokens("lattice", n, 2)
    result = compare.tokens_vs_density(tokens, M, c, lmax=8, grid_lmax=4000)
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
    x, w, clipped = compare.density_support(M, M.from_real_coefficients(a), grid)
    assert clipped == 0.0 and w.sum() == pytest.approx(1.0, abs=1e-15)
    exact = M.real_degrees <= 3 * grid - 12
    np.testing.assert_allclose((w @ M.harmonics(x))[exact], a[exact], atol=1e-13)
    if grid < 12:
        assert not exact.all() and len(x) < M.weights.size  # coarse-grained indeed
    with pytest.raises(InputError, match="grid_lmax"):
        compare.density_support(M, M.from_real_coefficients(a), 3)


@SETTINGS
@given(st.floats(0.05, np.pi), st.floats(0.6, 3.0))
def test_sobolev_distance_of_two_diracs(gamma, s):
    """‖δ_x − δ_y‖²_{H^{-s}} = Σ_{l=1}^{L} (1 + l(l+1))^{-s} 2(2l+1)(1 − P_l(cos γ)) on S² (addition theorem)."""
    M = Sphere(16)
    x, y = np.array([[0, 0, 1.0]]), np.array([[np.sin(gamma), 0, np.cos(gamma)]])
    l = np.arange(1, 17)
    expected = np.sqrt(np.sum((1 + l * (l + 1.0)) ** -s * 2 * (2 * l + 1) * (1 - eval_legendre(l, np.cos(gamma)))))
    got = compare.sobolev_distance(compare.empirical_coefficients(x, M), compare.empirical_coefficients(y, M), M, s)
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
    a, b, c = (compare.empirical_coefficients(x, M) for x in clouds)
    ra, rb = (compare.empirical_coefficients(x @ R.T, M) for x in clouds[:2])
    D = lambda u, v, s=compare.SOBOLEV_ORDER: compare.sobolev_distance(u, v, M, s)  # noqa: E731
    assert D(a, a) == 0.0 and D(a, b) == pytest.approx(D(b, a), rel=1e-15)
    assert D(a, c) <= D(a, b) + D(b, c) + 1e-15
    assert D(ra, rb) == pytest.approx(D(a, b), rel=1e-10)
    assert D(a, b, 1.0) >= D(a, b, 2.0) >= D(a, b, 3.0)


@pytest.mark.parametrize("d,beta", [(3, 4.0), (3, -2.5), (2, 6.0)])
def test_particle_energy_is_the_pde_energy_less_one_over_two_beta(d, beta):
    """Conventions: particles.energy(x) = E − 1/(2β) with E = (1/2βn²) Σ_ij e^{β⟨x_i,x_j⟩}; the
    PDE diagnostic is E_β(ρ) = (1/2β) Σ_l ĥ_l E_l (diagnostics.energy_scaled · e^{|β|}). Applied to
    the empirical measure (its spectrum by the pair sum, up to a degree where ĥ_l/ĥ_0 < 1e-17)
    the two must differ by exactly 1/(2β); the self-interaction i = j is part of both."""
    from spherepde import diagnostics
    from spherepde.dynamics import ContinuityEquation
    from spherepde.model import AttentionModel

    x = particles.initial_tokens("uniform", 300, d, seed=1)
    M = MANIFOLDS[d](48)
    equation = ContinuityEquation(M, AttentionModel("SA", beta, d))
    spectrum = particles.empirical_spectrum(x, M.lmax)
    pde_energy = diagnostics.energy_scaled(equation, spectrum) * np.exp(abs(beta))
    assert particles.energy(x, beta) == pytest.approx(pde_energy - 1 / (2 * beta), rel=1e-11)
    # and by coefficients from the harmonics instead of the pair sum
    a = compare.empirical_coefficients(x, M)
    assert np.bincount(M.real_degrees, a**2) == pytest.approx(spectrum, rel=1e-9, abs=1e-15)


def test_compare_token_run(tmp_path):
    """A token run against a PDE run of the same model: at t = 0 the tokens are n iid
    uniform and the PDE's ρ₀ is within 1e-3 of uniform, so D_s ≈ √(Σ_l w_l N(d,l)/n) (the
    sampling noise); refused for another β."""
    from spherepde import config, solver

    time = {"t_end": 0.5, "save_every": 0.25}
    solver.run(config.resolve({"model": {"beta": 4.0}, "domain": {"lmax": 24}, "time": time}), tmp_path / "pde.h5")
    tokens = config.resolve_particles({"model": {"beta": 4.0}, "particles": {"n": 400}, "time": time})
    solver.run_particles(tokens, tmp_path / "tokens.h5")
    result = compare.compare_token_run(tmp_path / "tokens.h5", tmp_path / "pde.h5", lmax=12, grid_lmax=16)
    assert result["t"] == [0.0, 0.25, 0.5] and len(result["sobolev"]) == 3 and result["support"] > 400
    l = np.arange(1, 13)
    noise = np.sqrt(np.sum((1 + l * (l + 1.0)) ** -2 * (2 * l + 1)) / 400)
    assert 0.6 * noise < result["sobolev"][0] < 1.5 * noise  # one sample: the χ² with ~168 dof varies by ~±20%
    assert all(0 < w < 1 for w in result["wasserstein"])
    tokens["model"]["beta"] = 5.0
    solver.run_particles(tokens, tmp_path / "other.h5")
    with pytest.raises(InputError, match="different models"):
        compare.compare_token_run(tmp_path / "other.h5", tmp_path / "pde.h5")
