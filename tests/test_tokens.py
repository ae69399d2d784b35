"""Tests of the finite-n token system (spherepde.tokens).

References are written independently of the code under test: naive double loops over
⟨Qx_i, Kx_j⟩, closed forms (circle, two tokens, β = 0), scipy's harmonics, Gegenbauer
polynomials, graph components and ODE solver. Tolerances are stated where they are used.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.sparse.csgraph import connected_components
from scipy.special import eval_chebyt, eval_gegenbauer, expit, sph_harm_y
from scipy.stats import ortho_group

from spherepde import kernels
from spherepde.errors import InputError, NumericalFailure
from spherepde.manifolds import Circle, sampling
from spherepde.tokens import (
    attention_field,
    close_pair_fraction,
    cluster_count,
    cluster_threshold,
    diagnostics,
    empirical_spectrum,
    energy,
    initial_tokens,
    mean_direction,
    simulate,
    trajectory,
    velocity,
)
from spherepde.kernels import numba_available

EPS = np.finfo(float).eps
MODELS = st.sampled_from(["SA", "USA"])
# the backends of this installation: the reference tests run on each
BACKENDS = st.sampled_from(["numpy", "numba"] if numba_available() else ["numpy"])
NEEDS_NUMBA = pytest.mark.skipif(
    not numba_available(), reason="numba is not installed (optional: pip install 'spherepde[numba]')"
)
SEEDS = st.integers(0, 2**32 - 1)
# β ∈ [−4, 4] with 0 drawn explicitly: the β = 0 limit must need no special case
BETAS = st.one_of(st.just(0.0), st.floats(-4.0, 4.0))


def tokens(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def matrices(d, seed):
    """Random Q, K, V with entries N(0, 1/d): ⟨Qx, Ky⟩ = O(1) on the unit sphere."""
    return np.random.default_rng(seed).standard_normal((3, d, d)) / np.sqrt(d)


def reference_velocity(x, beta, model, Q, K, V):
    """The token velocity as written: a double loop over ⟨Qx_i, Kx_j⟩ with unstabilized e^{...}.

    Also returns the bound Σ_j w_ij |V x_j| / Z_i on the size of the summed terms.
    """
    n, d = x.shape
    v, bound = np.zeros((n, d)), np.zeros(n)
    for i in range(n):
        total, weights, size = np.zeros(d), 0.0, 0.0
        for j in range(n):
            w = math.exp(beta * float(np.dot(Q @ x[i], K @ x[j])))
            total += w * (V @ x[j])
            weights += w
            size += w * np.linalg.norm(V @ x[j])
        norm = weights if model == "SA" else n
        u = total / norm
        v[i] = u - np.dot(x[i], u) * x[i]
        bound[i] = size / norm
    return v, bound


# ------------------------------------------------------------------------ velocity


@settings(max_examples=60)
@given(n=st.integers(1, 12), d=st.integers(2, 5), beta=BETAS, model=MODELS, seed=SEEDS,
       block=st.integers(1, 14), identity=st.booleans(), backend=BACKENDS)
def test_blocked_velocity_equals_double_loop(n, d, beta, model, seed, block, identity, backend):
    x = tokens(n, d, seed)
    Q, K, V = np.eye(d)[None].repeat(3, 0) if identity else matrices(d, seed + 1)
    v = velocity(x, beta, model, Q, K, V, block=block, backend=backend)
    ref, bound = reference_velocity(x, beta, model, Q, K, V)
    # Both sum n ≤ 12 terms in different orders: rounding ≤ n ε Σ|terms| ≈ 3e-15 Σ|terms|;
    # e^{z} adds |z| ε (|z| ≲ 15) and the projection one more term: 1e-12 leaves a margin of 10.
    assert np.all(np.abs(v - ref).max(axis=1) <= 1e-12 * (bound + 1e-300))


@settings(max_examples=30)
@given(n=st.integers(1, 20), d=st.integers(2, 5), seed=SEEDS)
def test_sa_and_usa_agree_at_beta_zero(n, d, seed):
    """At β = 0 both read ẋ_i = P_{x_i} V x̄, for any Q, K, V."""
    x = tokens(n, d, seed)
    Q, K, V = matrices(d, seed + 1)
    u = V @ x.mean(axis=0)
    expected = u - (x @ u)[:, None] * x
    for model in ("SA", "USA"):
        # a mean of n terms of size ≤ |V|: rounding ≤ n ε |V|, here below 1e-13
        assert np.abs(velocity(x, 0.0, model, Q, K, V) - expected).max() < 1e-13


@settings(max_examples=30)
@given(n=st.integers(1, 20), beta=st.floats(-5.0, 5.0), seed=SEEDS)
def test_circle_usa_closed_form(n, beta, seed):
    """d = 2, identity: θ̇_i = −(1/n) Σ_j e^{β cos(θ_i−θ_j)} sin(θ_i−θ_j)."""
    theta = np.random.default_rng(seed).uniform(0, 2 * np.pi, n)
    x = np.column_stack([np.cos(theta), np.sin(theta)])
    diff = theta[:, None] - theta[None, :]
    theta_dot = -(np.exp(beta * np.cos(diff)) * np.sin(diff)).mean(axis=1)
    expected = theta_dot[:, None] * np.column_stack([-np.sin(theta), np.cos(theta)])
    # terms of size ≤ e^{|β|}; angles and products add a few ε each
    assert np.abs(velocity(x, beta, "USA") - expected).max() < 1e-13 * math.exp(abs(beta))


@settings(max_examples=30)
@given(n=st.integers(1, 15), d=st.integers(2, 5), beta=BETAS, model=MODELS, seed=SEEDS)
def test_velocity_is_tangent_and_equivariant(n, d, beta, model, seed):
    """v(Rx; RQRᵀ, RKRᵀ, RVRᵀ) = R v(x; Q, K, V) for every orthogonal R, and ⟨x_i, v_i⟩ = 0."""
    x = tokens(n, d, seed)
    Q, K, V = matrices(d, seed + 1)
    R = ortho_group.rvs(d, random_state=seed % 2**31)
    v = velocity(x, beta, model, Q, K, V)
    w = velocity(x @ R.T, beta, model, R @ Q @ R.T, R @ K @ R.T, R @ V @ R.T)
    scale = reference_velocity(x, beta, model, Q, K, V)[1].max()
    # the rotated problem differs only by rounding of the rotated inputs: a few ε per term
    assert np.abs(w - v @ R.T).max() < 1e-12 * scale
    assert np.abs(np.einsum("ij,ij->i", x, v)).max() < 1e-14 * scale


def test_usa_large_beta_does_not_overflow():
    """USA at β|B| ≈ 707: Σ_j e^{β⟨x,Bx_j⟩} overflows, the mean (1/n)Σ_j does not.

    n/2 tokens at x and n/2 at y with angle φ: v_x = ½ e^{707 cos φ} P_x y exactly.
    """
    n, phi, beta, b = 200, 0.01, 700.0, 1.01
    x, y = np.array([1.0, 0.0, 0.0]), np.array([np.cos(phi), np.sin(phi), 0.0])
    points = np.array([x] * (n // 2) + [y] * (n // 2))
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(beta * b * points @ points[0]).sum())  # the naive sum fails
    v = velocity(points, beta, "USA", Q=b * np.eye(3))
    speed = 0.5 * math.exp(beta * b * math.cos(phi) + math.log(math.sin(phi)))
    # the exponent 707 cos φ carries an absolute rounding error ≈ 707 ε ≈ 2e-13
    np.testing.assert_allclose(np.linalg.norm(v / speed, axis=1), 1.0, rtol=1e-11)
    assert v[0, 1] > 0 > v[-1, 1]  # the two groups approach each other


def test_sa_huge_beta_two_tokens():
    """SA, β = 10⁵: A_12 = 1/(1 + e^{β(1−cos φ)}) underflows gracefully, no NaN."""
    phi = 1e-3
    points = np.array([[1.0, 0.0], [np.cos(phi), np.sin(phi)]])
    for beta in (1e5, -1e5):
        v = velocity(points, beta, "SA")
        expected = expit(-beta * (1 - math.cos(phi))) * math.sin(phi)
        assert np.all(np.isfinite(v))
        # the exponent β(⟨x_1,x_2⟩ − 1) inherits the rounding of ⟨x_1,x_2⟩ times β: ≈ |β| ε
        # = 2e-11 absolute, the same relative error in A_12
        assert abs(v[0, 1] - expected) <= 1e-10 * abs(expected) + 1e-300


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=NEEDS_NUMBA)])
def test_overflow_is_a_numerical_failure(backend):
    points = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(NumericalFailure):
        velocity(points, 700.0, "USA", Q=2 * np.eye(3), backend=backend)  # e^{1400} is not a double
    with pytest.raises(NumericalFailure):  # logits β⟨Qx, Ky⟩ = 1e310: inf − inf, NaN propagates
        velocity(points, 1e308, "SA", Q=10 * np.eye(3), backend=backend)


# ------------------------------------------------------------------------ compiled backend


def term_scale(x, beta, model, Q, K, V):
    """Σ_j w_ij |V x_j| / Z_i (SA) or (1/n) Σ_j e^{β⟨Qx_i,Kx_j⟩} |V x_j| (USA): the size of the
    terms summed for token i, formed stably (numpy, not the code under test)."""
    logits = beta * (x @ Q.T) @ (x @ K.T).T
    top = logits.max(axis=1, keepdims=True)
    w = np.exp(logits - top)
    size = w @ np.linalg.norm(x @ V.T, axis=1)
    return size / w.sum(axis=1) if model == "SA" else size * np.exp(top[:, 0] - np.log(len(x)))


@NEEDS_NUMBA
@settings(max_examples=40)
@given(n=st.integers(1, 40), d=st.integers(2, 5), beta=st.one_of(st.just(0.0), st.floats(-6.0, 6.0)),
       model=MODELS, seed=SEEDS, block=st.integers(1, 45), identity=st.booleans())
def test_compiled_kernel_equals_numpy(n, d, beta, model, seed, block, identity):
    """The numba kernel against the blocked numpy path (the symmetric one for Q = K = V = I,
    β ≥ 0), any block size (rows per block 1..45, so 1 to 40 blocks and partial last blocks).

    Error budget: logits of size ≤ |β|‖B‖ (‖Q‖, ‖K‖ ≤ 6.5 in 8000 draws, typically 3: ≤ 250)
    carry ≲ 4 ε |β|‖B‖ ≤ 2e-13 absolute, the same relative error in each weight; sums of n ≤ 40
    terms in different order add ≲ n ε ≈ 1e-14; the exponentials differ by ≤ 1 ulp. 1e-12 of the
    terms' size leaves a margin ≥ 4 in the worst case.
    """
    x = tokens(n, d, seed)
    Q, K, V = np.eye(d)[None].repeat(3, 0) if identity else 2 * matrices(d, seed + 1)
    compiled = velocity(x, beta, model, Q, K, V, block=block, backend="numba")
    reference = velocity(x, beta, model, Q, K, V, backend="numpy")
    scale = term_scale(x, beta, model, Q, K, V)
    assert np.all(np.abs(compiled - reference).max(axis=1) <= 1e-12 * scale + 1e-300)


def test_backends(monkeypatch):
    """"auto" is numba when it imports, numpy otherwise; "numba" without numba is an InputError."""
    x = tokens(5, 3, seed=0)
    assert attention_field(1.0, "SA", 3, backend="numpy").backend == "numpy"
    assert attention_field(1.0, "SA", 3).backend == ("numba" if numba_available() else "numpy")
    monkeypatch.setattr(kernels, "_compiled_kernel", lambda: None)  # as if numba were absent
    assert attention_field(1.0, "SA", 3, backend="AUTO").backend == "numpy"
    with pytest.raises(InputError, match="numba is not installed"):
        velocity(x, 1.0, backend="numba")
    with pytest.raises(InputError, match="backend = 'gpu'"):
        velocity(x, 1.0, backend="gpu")


# ------------------------------------------------------------------------ time stepping


def simulate_angle(beta, model, phi0, d, t_end):
    """Two tokens at angle φ0 in R^d; returns the angle at the save times."""
    x0 = np.zeros((2, d))
    x0[0, 0] = 1.0
    x0[1, :2] = np.cos(phi0), np.sin(phi0)
    t, x = simulate(x0, beta, model, t_end=t_end, save_every=t_end / 4, rtol=1e-12)
    cross = np.linalg.norm(x[:, 0, :, None] * x[:, 1, None, :] - x[:, 1, :, None] * x[:, 0, None, :],
                           axis=(1, 2)) / np.sqrt(2)
    return t, np.arctan2(cross, np.einsum("td,td->t", x[:, 0], x[:, 1]))


@settings(max_examples=25)
@given(beta=st.floats(-3.0, 3.0), model=MODELS, phi0=st.floats(0.2, 3.0), d=st.integers(2, 4))
def test_two_tokens_follow_the_reduced_ode(beta, model, phi0, d):
    """Two tokens stay in their plane and their angle φ obeys (from the token equations)

        SA:  φ̇ = −2 sin φ / (1 + e^{β(1−cos φ)}),   USA: φ̇ = −e^{β cos φ} sin φ.
    """
    def rate(_, phi):
        if model == "SA":
            return -2 * np.sin(phi) * expit(-beta * (1 - np.cos(phi)))
        return -np.exp(beta * np.cos(phi)) * np.sin(phi)

    t, phi = simulate_angle(beta, model, phi0, d, t_end=1.0)
    ref = solve_ivp(rate, (0, 1.0), [phi0], method="DOP853", t_eval=t, rtol=1e-13, atol=1e-15).y[0]
    # both solvers run at error tolerance ~1e-12 per step over ≤ a few hundred steps
    np.testing.assert_allclose(phi, ref, rtol=1e-8, atol=1e-12)


def test_two_tokens_beta_zero_closed_form():
    """β = 0: φ̇ = −sin φ, so tan(φ/2) = tan(φ0/2) e^{−t} exactly, for SA and USA."""
    for model in ("SA", "USA"):
        t, phi = simulate_angle(0.0, model, 2.5, 3, t_end=3.0)
        # rtol 1e-12 per step, some 50 steps, error amplification ≤ 1 (contracting flow)
        np.testing.assert_allclose(np.tan(phi / 2), np.tan(1.25) * np.exp(-t), rtol=1e-9)


@pytest.mark.parametrize("model,beta", [("SA", 2.0), ("USA", 2.0), ("SA", -1.0)])
def test_rk4_is_fourth_order(model, beta):
    """Successive differences |x_dt − x_{dt/2}| shrink by 2⁴ = 16 (renormalization keeps order 4)."""
    x0 = tokens(6, 3, seed=3)
    final = [simulate(x0, beta, model, t_end=1.0, method="rk4", dt=0.1 / 2**k)[1][-1] for k in range(4)]
    diffs = [np.abs(a - b).max() for a, b in zip(final, final[1:])]
    orders = np.log2(np.array(diffs[:-1]) / diffs[1:])
    # measured 4.0–4.2 on these runs; the asymptotic range admits ±0.3
    assert np.all(np.abs(orders - 4) < 0.3), orders


@pytest.mark.parametrize("model", ["SA", "USA"])
def test_adaptive_error_follows_rtol(model):
    """Global error of the adaptive run against a fine RK4 solution: ≤ 10·rtol, decreasing."""
    x0 = tokens(6, 3, seed=3)
    ref = simulate(x0, 2.0, model, t_end=1.0, method="rk4", dt=5e-4)[1][-1]  # error ≈ 1e-14
    errors = [np.abs(simulate(x0, 2.0, model, t_end=1.0, rtol=r)[1][-1] - ref).max()
              for r in (1e-6, 1e-8, 1e-10)]
    assert errors[0] < 1e-5 and errors[1] < 1e-7 and errors[2] < 1e-9, errors
    assert errors[0] > errors[1] > errors[2]


@settings(max_examples=20)
@given(n=st.integers(2, 12), d=st.integers(2, 4), beta=st.floats(-2.0, 3.0), model=MODELS,
       seed=SEEDS, method=st.sampled_from(["rk4", "dopri5"]))
def test_rotated_tokens_give_rotated_trajectories(n, d, beta, model, seed, method):
    """Identity matrices: the flow is O(d)-equivariant, reflections included."""
    x0 = tokens(n, d, seed)
    R = ortho_group.rvs(d, random_state=seed % 2**31)
    kwargs = dict(t_end=1.0, save_every=0.5, method=method, dt=0.05, rtol=1e-9)
    _, x = simulate(x0, beta, model, **kwargs)
    _, y = simulate(x0 @ R.T, beta, model, **kwargs)
    # same arithmetic on rotated data: rounding differences (1e-16) amplified by at most
    # e^{L t}, L ≲ e^{|β|}; for the adaptive run they may also alter step choices, whose
    # effect is bounded by the error tolerance 1e-9
    assert np.abs(y - x @ R.T).max() < 1e-8
    assert np.abs(np.linalg.norm(x, axis=2) - 1).max() < 4 * EPS  # tokens stay on the sphere


@settings(max_examples=30)
@given(n=st.integers(3, 25), d=st.integers(2, 4), beta=st.floats(-3.0, 4.0), model=MODELS,
       seed=SEEDS)
def test_energy_is_non_decreasing(n, d, beta, model, seed):
    """With identity matrices dE/dt ≥ 0 for SA and USA, any β (docs/mathematics.md, "Energy")."""
    _, x = simulate(tokens(n, d, seed), beta, model, t_end=2.0, save_every=0.1, rtol=1e-10)
    e = np.array([energy(snapshot, beta) for snapshot in x])
    # E is summed with relative rounding ≈ n² ε / n² ~ 1e-15; the step error (rtol 1e-10 on
    # positions) enters E at second order near equilibria, where the increments vanish too
    assert np.all(np.diff(e) >= -1e-12 * np.abs(e[:-1])), np.diff(e)


@settings(max_examples=15)
@given(n=st.integers(2, 15), d=st.integers(2, 4), beta=st.floats(-3.0, 3.0), model=MODELS,
       seed=SEEDS)
def test_energy_rate(n, d, beta, model, seed):
    """dE/dt = (1/n) Σ_i Z_i^s |ẋ_i|², Z_i = (1/n) Σ_j e^{β⟨x_i,x_j⟩}, s = 1 (SA), 0 (USA).

    (Differentiate E = (1/2βn²) Σ (e^{β⟨x_i,x_j⟩} − 1) along ẋ; at β = 0, E = |x̄|²/2.)
    dE/dt is measured by the one-sided 5-point difference, error O((ch)⁴) with c the rate
    scale (1 for SA, e^{|β|} for USA): h = 0.002/c gives a relative truncation error ~1e-8.
    """
    x0 = tokens(n, d, seed)
    h = 0.002 * (1.0 if model == "SA" else math.exp(-abs(beta)))
    _, x = simulate(x0, beta, model, save_times=h * np.arange(5), rtol=1e-13)
    e = np.array([energy(snapshot, beta) for snapshot in x])
    measured = np.dot([-25, 48, -36, 16, -3], e) / (12 * h)
    v = velocity(x0, beta, model)
    mobility = np.exp(beta * x0 @ x0.T).mean(axis=1) if model == "SA" else 1.0
    expected = np.mean(mobility * np.sum(v * v, axis=1))
    # truncation 1e-8 (allow 1e-6); rounding of E amplified by Σ|weights|/12h ≈ 10/h
    assert abs(measured - expected) <= 1e-6 * expected + 1e-13 * np.abs(e).max() / h


def test_snapshots_land_exactly_on_save_times():
    x0 = tokens(10, 3, seed=0)
    times = []
    t, x = simulate(x0, 1.0, "SA", t_end=1.0, save_every=0.3, progress=times.append)
    assert t.tolist() == [*(0.3 * np.arange(4)), 1.0]  # k·save_every, then t_end
    assert t[-1] == 1.0 and times[-1] == 1.0 and np.all(np.diff(times) > 0)
    assert np.abs(x[0] - x0).max() < 4 * EPS and x.shape == (5, 10, 3)  # x0 renormalized
    t2, x2 = simulate(x0, 1.0, "SA", save_times=[0.3, 1.0], rtol=1e-8)
    assert t2.tolist() == [0.3, 1.0]
    np.testing.assert_allclose(x2, x[[1, 4]], atol=1e-7)  # two runs at rtol 1e-8
    stream = trajectory(x0, 1.0, "SA", save_times=[0.5, 1.0], method="rk4", dt=0.1)
    assert [s for s, _ in stream] == [0.5, 1.0]


def test_resume_from_a_snapshot_repeats_the_run():
    """Restarting at t0 = 0.5 from the snapshot there takes the same RK4 steps.

    Only the renormalization of the given x0 (≤ 2ε) differs; 5 steps at Lipschitz constant
    ≲ e^2 amplify it to well below 1e-14."""
    x0 = tokens(10, 3, seed=0)
    _, x = simulate(x0, 2.0, "USA", t_end=1.0, save_every=0.5, method="rk4", dt=0.1)
    (t, y), = trajectory(x[1], 2.0, "USA", save_times=[1.0], t0=0.5, method="rk4", dt=0.1)
    assert t == 1.0 and np.abs(y - x[2]).max() < 1e-14


# ------------------------------------------------------------------------ initial tokens


def test_uniform_tokens_are_seeded():
    a, b, c = (initial_tokens("uniform", 100, 4, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert a.shape == (100, 4) and np.abs(np.linalg.norm(a, axis=1) - 1).max() < 4 * EPS


def test_lattices():
    x = initial_tokens("lattice", 12, 2)
    gaps = np.mod(np.diff(np.arctan2(x[:, 1], x[:, 0]), append=np.arctan2(x[0, 1], x[0, 0])), 2 * np.pi)
    np.testing.assert_allclose(gaps, 2 * np.pi / 12, rtol=1e-13)
    y = initial_tokens("lattice", 1000, 3)
    # equal-area rings: the z are equally spaced; the lattice is far more even than iid
    # tokens, whose degree-l energy is N(3,l)/n = (2l+1)/1000 on average
    np.testing.assert_allclose(np.diff(np.sort(y[:, 2])), 2 / 1000, rtol=1e-10)
    assert np.all(empirical_spectrum(y, 6)[1:] < 0.01 * (2 * np.arange(1, 7) + 1) / 1000)


def test_density_sampling_on_circle_and_sphere():
    """Sample moments against exact ones; 5 standard errors tolerance (1 − 6e-7 confidence)."""
    n = 20000
    theta = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    x = sampling.sample(1 + 0.5 * np.cos(2 * theta), (theta,), n, np.random.default_rng(0))
    c2 = np.cos(2 * np.arctan2(x[:, 1], x[:, 0]))
    # E cos 2θ = ∫ cos 2θ (1 + ½ cos 2θ) dθ/2π = 1/4; linear interpolation error O(h²) ≈ 1e-4
    assert abs(c2.mean() - 0.25) < 5 * c2.std() / np.sqrt(n)

    colat = np.pi * (np.arange(60) + 0.5) / 60  # no poles on the grid: the pole closure is used
    lon = 2 * np.pi * np.arange(120) / 120
    rho = 1 + 0.9 * np.cos(colat)[:, None] * np.ones(120)
    y = sampling.sample(rho, (colat, lon), n, np.random.default_rng(1))
    # E z = ∫ z (1 + 0.9 z) dσ = 0.9/3 = 0.3; E x = E y = 0
    for k, expected in ((2, 0.3), (0, 0.0), (1, 0.0)):
        assert abs(y[:, k].mean() - expected) < 5 * y[:, k].std() / np.sqrt(n)


def test_quantile_tokens_of_the_uniform_density_are_the_lattices():
    """ρ ≡ 1: on S² the quantile tokens are the Fibonacci lattice (z_k = 1 − (2k+1)/n, golden
    angle), on S¹ the angles 2π(j + ½)/n; either grid orientation."""
    colat = np.pi * (np.arange(30) + 0.5) / 30
    lon = 2 * np.pi * np.arange(60) / 60
    for n in (1, 2, 7, 1000):
        x = sampling.quantile_points(np.ones((30, 60)), (colat[::-1], lon), n)
        # θ_j by bisection to 1e-16, then trigonometry: a few ε; 1000·golden angle carries 1e-13
        assert np.abs(x - initial_tokens("lattice", n, 3)).max() < 1e-12
    theta = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    y = sampling.quantile_points(np.full(50, 3.0), (theta,), 8)
    np.testing.assert_allclose(np.mod(np.arctan2(y[:, 1], y[:, 0]), 2 * np.pi), 2 * np.pi * (np.arange(8) + 0.5) / 8,
                               rtol=1e-14)


@pytest.mark.parametrize("n", [500, 2000])
def test_quantile_tokens_match_the_density_to_order_one_over_n(n):
    """Low-degree coefficients ∫ Ȳ dμ_n of the quantile tokens against those of ρ dσ.

    S²: ρ = 1 + 0.8 zx + 0.5 z + 0.3 (x² − y²) > 0, harmonics of degree ≤ 4 (scipy, times
    √(4π)); exact coefficients by Gauss–Legendre × trapezoid quadrature (exact for degree ≤ 6).
    The quantiles form a midpoint rule in z and a golden-ratio (Weyl) sequence in φ per token,
    error O(1/n): measured n·error = 0.27, 0.22, 0.08 at n = 250, 1000, 4000; bound 0.5/n.
    iid tokens err by ≈ 2/√n (0.09 at n = 500: 20× the bound). The grid (200 × 400) biases
    the bilinear interpolant by O(h²) ≈ 2e-5 < 0.5/2000.
    S¹: ρ = 1 + 0.7 cos 2θ + 0.2 sin 3θ, Fourier coefficients k = 1..6: the quantiles are a
    midpoint rule in the distribution function, error O(1/n²) (measured 4e-6 at n = 400) down
    to the interpolation bias (2000 nodes: 1e-6); bound 0.5/n as on S².
    """
    colat = np.pi * (np.arange(200) + 0.5) / 200
    lon = 2 * np.pi * np.arange(400) / 400

    def rho(colatitude, longitude):
        s = np.sin(colatitude)
        x, y, z = s * np.cos(longitude), s * np.sin(longitude), np.cos(colatitude)
        return 1 + 0.8 * z * x + 0.5 * z + 0.3 * (x * x - y * y)

    harmonics = [(l, m) for l in range(1, 5) for m in range(-l, l + 1)]
    x = sampling.quantile_points(rho(*np.meshgrid(colat, lon, indexing="ij")), (colat, lon), n)
    t, p = np.arccos(np.clip(x[:, 2], -1, 1)), np.arctan2(x[:, 1], x[:, 0])
    tokens_c = np.array([np.sqrt(4 * np.pi) * np.conj(sph_harm_y(l, m, t, p)).mean() for l, m in harmonics])
    z, w = np.polynomial.legendre.leggauss(8)
    T, P = np.meshgrid(np.arccos(z), 2 * np.pi * np.arange(16) / 16, indexing="ij")
    W = (w / 2)[:, None] / 16
    exact = np.array([np.sum(W * rho(T, P) * np.sqrt(4 * np.pi) * np.conj(sph_harm_y(l, m, T, P))) for l, m in harmonics])
    assert np.abs(tokens_c - exact).max() < 0.5 / n

    theta = 2 * np.pi * np.arange(2000) / 2000
    y = sampling.quantile_points(1 + 0.7 * np.cos(2 * theta) + 0.2 * np.sin(3 * theta), (theta,), n)
    angle = np.arctan2(y[:, 1], y[:, 0])
    fourier = np.array([np.exp(-1j * k * angle).mean() for k in range(1, 7)])
    assert np.abs(fourier - [0, 0.35, -0.1j, 0, 0, 0]).max() < 0.5 / n


def test_given_points():
    x = tokens(5, 3, seed=0)
    np.testing.assert_allclose(initial_tokens("points", points=x), x, atol=4 * EPS)
    np.testing.assert_allclose(initial_tokens("points", points=x * (1 + 1e-7)), x, atol=4 * EPS)
    with pytest.raises(InputError, match="norm 1.00001"):
        initial_tokens("points", points=x * 1.00001)


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda: initial_tokens("uniform", 0, 3), "n = 0"),
        (lambda: initial_tokens("uniform", 5, 1), "d = 1"),
        (lambda: initial_tokens("gaussian", 5, 3), "'gaussian'"),
        (lambda: initial_tokens("lattice", 5, 4), "d = 4"),
        (lambda: velocity(tokens(4, 3, 0), float("nan")), "beta = nan"),
        (lambda: velocity(tokens(4, 3, 0), np.inf, "USA"), "beta = inf"),
        (lambda: velocity(tokens(4, 3, 0), 1.0, "XA"), "'XA'"),
        (lambda: velocity(tokens(4, 3, 0), 1.0, V=np.eye(2)), "V has shape (2, 2)"),
        (lambda: velocity(tokens(4, 3, 0), 1.0, Q=np.ones((3, 4))), "Q has shape (3, 4)"),
        (lambda: velocity(2 * tokens(4, 3, 0), 1.0), "norm 2"),
        (lambda: velocity(np.ones(3), 1.0), "shape (3,)"),
        (lambda: velocity(tokens(4, 3, 0), 1.0, block=0), "block = 0"),
        (lambda: velocity(tokens(4, 3, 0), 1.0, backend="cuda"), "backend = 'cuda'"),
        (lambda: initial_tokens("quantile", 5, 3), "needs density"),
        (lambda: initial_tokens("quantile", 5, 3, density=np.ones(Circle(4).grid_shape), manifold=Circle(4)), "d = 3"),
        (lambda: sampling.quantile_points(-np.ones(8), (np.arange(8.0) / 2,), 5), "must be >= 0"),
        (lambda: simulate(tokens(4, 3, 0), 1.0, t_end=-1.0), "t_end = -1"),
        (lambda: simulate(tokens(4, 3, 0), 1.0, t_end=1.0, method="rk4"), "dt"),
        (lambda: simulate(tokens(4, 3, 0), 1.0, t_end=1.0, method="euler"), "'euler'"),
        (lambda: simulate(tokens(4, 3, 0), 1.0, save_times=[0.5, 0.2]), "save_times"),
        (lambda: cluster_count(tokens(4, 3, 0), delta=-1), "delta = -1"),
        (lambda: empirical_spectrum(tokens(4, 3, 0), -2), "lmax = -2"),
    ],
)
def test_bad_input_raises_input_error(call, needle):
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert needle in message and "\n" not in message


# ------------------------------------------------------------------------ diagnostics


@settings(max_examples=30)
@given(n=st.integers(1, 30), d=st.integers(2, 5), beta=st.floats(-20.0, 20.0), seed=SEEDS,
       block=st.integers(1, 31))
def test_pair_diagnostics_match_double_loops(n, d, beta, seed, block):
    x = tokens(n, d, seed)
    x[n // 2:] = x[0] + 1e-3 * x[n // 2:]  # a cluster, so that close pairs exist
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    gram = x @ x.T
    if abs(beta) > 1e-4:
        terms = np.expm1(beta * gram) / (2 * beta * n * n)
    else:  # Taylor series of (e^{βt} − 1)/β, remainder β³t⁴/24 < 1e-12 relative
        terms = gram * (1 + beta * gram / 2 + (beta * gram) ** 2 / 6) / (2 * n * n)
    # n² terms summed in another order: rounding ≤ n² ε Σ|terms| / n² ≈ 1e-13 Σ|terms|
    assert abs(energy(x, beta, block=block) - terms.sum()) <= 1e-13 * np.abs(terms).sum()
    assert abs(energy(x, beta, scaled=True, block=block) - terms.sum() * math.exp(-abs(beta))) \
        <= 1e-13 * np.abs(terms).sum() * math.exp(-abs(beta))
    if n > 1:
        close = (np.count_nonzero(gram > 0.999) - n) / (n * (n - 1))
        assert close_pair_fraction(x, block=block) == close
    assert mean_direction(x) == pytest.approx(np.linalg.norm(x.mean(0)), abs=1e-15)


def test_energy_at_large_and_small_beta():
    x = tokens(20, 3, seed=5)
    gram = x @ x.T
    for beta in (1000.0, -1000.0):  # E ≈ e^{1000} is not a double; e^{-|β|} E is
        expected = (np.exp(beta * gram - 1000.0).sum() / 400 - math.exp(-1000.0)) / (2 * beta)
        assert energy(x, beta, scaled=True) == pytest.approx(expected, rel=1e-13)
    # one cluster at β = 716: E = (e^β − 1)/(2β) ≈ 6.3e307 is still a double; formed as
    # exp(716 + log(…)), it carries the rounding of the argument, 716 ε ≈ 1.6e-13 relative
    cluster = np.tile(x[:1], (5, 1))
    assert energy(cluster, 716.0) == pytest.approx(math.exp(716.0 - math.log(1432.0)), rel=1e-12)
    # continuity at β = 0: E_β = |x̄|²/2 + β Σ⟨x_i,x_j⟩²/(4n²) + O(β²)
    for beta in (1e-6, -1e-6):
        series = energy(x, 0.0) + beta * (gram**2).sum() / (4 * 400)
        assert energy(x, beta) == pytest.approx(series, abs=1e-11)


@settings(max_examples=30)
@given(n=st.integers(1, 40), d=st.integers(2, 4), seed=SEEDS, delta=st.floats(1e-3, 0.5),
       block=st.integers(1, 41))
def test_clusters_are_graph_components(n, d, seed, delta, block):
    """Single-linkage clusters = connected components of the graph ⟨x_i,x_j⟩ > 1 − δ (scipy)."""
    x = tokens(n, d, seed)
    expected, _ = connected_components(x @ x.T > 1 - delta, directed=False)
    assert cluster_count(x, delta, block=block) == expected


def test_cluster_count_of_separated_clusters():
    """Five tight clusters (spread 1e-3) at ±e_1, ±e_2, e_3: five, whatever the order of tokens."""
    rng = np.random.default_rng(0)
    centers = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1.0]])
    x = centers[rng.integers(0, 5, 500)] + 1e-3 * rng.standard_normal((500, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert cluster_count(x) == 5
    assert diagnostics(x, 3.0)["clusters"] == 5


@pytest.mark.parametrize("d", [2, 3, 4])
def test_default_cluster_threshold_gives_half_a_neighbour(d):
    """A uniform cloud of n = 2000 tokens has on average ½ linked neighbour per token at δ_n.

    The linked (unordered) pairs are ≈ Poisson(n/4 = 500): 5 standard errors = 5·√500·2/n.
    """
    n = 2000
    delta = cluster_threshold(n, d)
    assert delta < 1e-2  # not capped for these n, d
    x = initial_tokens("uniform", n, d, seed=d)
    neighbours = (np.count_nonzero(x @ x.T > 1 - delta) - n) / n
    assert abs(neighbours - 0.5) < 5 * math.sqrt(n / 4) * 2 / n
    assert cluster_count(x) > 0.6 * n  # no percolation: mostly singletons and pairs


def harmonic_dimension_theory(d, l):
    """N(d,l) = (2l+d−2)(l+d−3)!/(l!(d−2)!), with N(2,0) = 1."""
    if d == 2:
        return 1 if l == 0 else 2
    return (2 * l + d - 2) * math.factorial(l + d - 3) // (math.factorial(l) * math.factorial(d - 2))


@settings(max_examples=20)
@given(n=st.integers(1, 25), d=st.integers(2, 6), seed=SEEDS, lmax=st.integers(0, 8))
def test_spectrum_is_the_addition_theorem_sum(n, d, seed, lmax):
    """Against N(d,l)/n² Σ_ij C_l^{ν}(t)/C_l^{ν}(1) with scipy's Gegenbauer (Chebyshev for d = 2)."""
    x = tokens(n, d, seed)
    t = np.clip(x @ x.T, -1, 1)
    nu = (d - 2) / 2
    legendre = [eval_chebyt(l, t) if d == 2 else eval_gegenbauer(l, nu, t) / eval_gegenbauer(l, nu, 1.0)
                for l in range(lmax + 1)]
    expected = [harmonic_dimension_theory(d, l) * p.sum() / n**2 for l, p in enumerate(legendre)]
    # |P_l| ≤ 1 bounds each sum by N(d,l); recurrence and scipy err by ≲ l ε per term
    np.testing.assert_allclose(empirical_spectrum(x, lmax, block=7), expected, rtol=0,
                               atol=1e-12 * harmonic_dimension_theory(d, lmax))


@settings(max_examples=20)
@given(n=st.integers(1, 25), seed=SEEDS)
def test_spectrum_from_harmonics_on_circle_and_sphere(n, seed):
    """Σ_m ρ_lm² from the harmonics themselves.

    On S¹ Y = √2 cos lθ, √2 sin lθ; on S² √(4π) Y_lm (scipy's are orthonormal over area 4π).
    """
    lmax = 6
    x2, x3 = tokens(n, 2, seed), tokens(n, 3, seed)
    theta = np.arctan2(x2[:, 1], x2[:, 0])
    circle = [1.0] + [2 * abs(np.exp(1j * l * theta).mean()) ** 2 for l in range(1, lmax + 1)]
    colat, lon = np.arccos(np.clip(x3[:, 2], -1, 1)), np.arctan2(x3[:, 1], x3[:, 0])
    sphere = [4 * np.pi * sum(abs(sph_harm_y(l, m, colat, lon).mean()) ** 2 for m in range(-l, l + 1))
              for l in range(lmax + 1)]
    # both sides are sums of O(1) terms: agreement to rounding, 1e-12
    np.testing.assert_allclose(empirical_spectrum(x2, lmax), circle, atol=1e-12)
    np.testing.assert_allclose(empirical_spectrum(x3, lmax), sphere, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_uniform_tokens_have_spectrum_n_over_N(d):
    """iid uniform tokens give E Σ_m ρ_lm² = N(d,l)/n (docs/mathematics.md, "Linear theory").

    Σ_m ρ_lm² = N/n + (N/n²) Σ_{i≠j} P_l(⟨x_i,x_j⟩) with pairwise uncorrelated terms of
    variance 1/N, so its variance is 2N(n−1)/n³. The mean of R runs must lie within 5
    standard errors (false alarm probability 6e-7 per degree).
    """
    n, runs, lmax = 40, 300, 5
    spectra = np.array([empirical_spectrum(initial_tokens("uniform", n, d, seed=1000 * d + r), lmax)
                        for r in range(runs)])
    dims = np.array([harmonic_dimension_theory(d, l) for l in range(1, lmax + 1)])
    standard_error = np.sqrt(2 * dims * (n - 1) / n**3 / runs)
    assert np.all(np.abs(spectra[:, 1:].mean(axis=0) - dims / n) < 5 * standard_error)
    assert np.all(spectra[:, 0] == pytest.approx(1.0, abs=1e-13))


def test_energy_diagnostic_needs_identity_matrices():
    """As for the PDE (AttentionModel.has_energy): the energy is defined when B = QᵀK = I
    and V = I, e.g. Q = K = R orthogonal, and NaN for other matrices (no monotone energy)."""
    x = tokens(30, 3, seed=2)
    R = ortho_group.rvs(3, random_state=1)
    assert diagnostics(x, 2.0, Q=R, K=R)["energy"] == pytest.approx(energy(x, 2.0), rel=1e-15)
    for matrices_ in ({"Q": 2 * np.eye(3)}, {"V": R}, {"Q": R}, {"K": np.diag([1.0, 1.0, 1.1])}):
        out = diagnostics(x, 2.0, **matrices_)
        assert math.isnan(out["energy"]) and out["mean_direction"] == mean_direction(x)


def test_single_cluster_diagnostics():
    """All tokens at one point: Σ_m ρ_lm² = N(d,l), |x̄| = 1, one cluster, all pairs close."""
    x = np.tile(tokens(1, 4, seed=0), (10, 1))
    out = diagnostics(x, 2.0, lmax=4)
    dims = [harmonic_dimension_theory(4, l) for l in range(5)]
    np.testing.assert_allclose(out["spectrum"], dims, rtol=1e-13)
    assert out["clusters"] == 1 and out["close_pairs"] == 1.0
    assert out["mean_direction"] == pytest.approx(1.0, abs=1e-15)
    assert out["energy"] == pytest.approx(math.expm1(2.0) / 4.0, rel=1e-14)
