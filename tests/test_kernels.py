"""The weighted attention sums (spherepde.kernels): one suite over every backend, against a plain
double loop written from the definition, with weights (tokens: 1/n; densities on a grid: signed).

S_i = Σ_j w_j e^{β⟨x_i,By_j⟩ - m_i} (V y_j, 1) with m_i ≥ max_j β⟨x_i,By_j⟩ (stabilized), so that the
velocity of Σ_j w_j δ_{y_j} is P_x S[:d]/S[d] (SA) or P_x S[:d] e^m (USA)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde import kernels
from spherepde.kernels import DIRECT_BACKENDS, DirectSum, DirectVelocity, numba_available
from spherepde.model import AttentionModel

BACKENDS = [b if b != "numba" else pytest.param(b, marks=pytest.mark.skipif(not numba_available(), reason="numba not installed"))
            for b in DIRECT_BACKENDS]
SEEDS = st.integers(0, 2**32 - 1)


def points(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference(x, y, w, beta, B, V, normalized):
    """The velocity of Σ_j w_j δ_{y_j} at x_i written out with unstabilized exponentials (moderate β),
    and the size Σ_j |w_j| e^{...} |V y_j| / |Z_i| (SA) of the summed terms, for tolerances."""
    out, size = np.zeros_like(x), np.zeros(len(x))
    for i, xi in enumerate(x):
        e = np.exp(beta * (y @ B.T) @ xi) * w
        m, z = e @ (y @ V.T), e.sum()
        scale = np.abs(e) @ np.linalg.norm(y @ V.T, axis=1)
        u = m / z if normalized else m
        out[i] = u - (xi @ u) * xi
        size[i] = scale / abs(z) if normalized else scale
    return out, size


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40)
@given(n=st.integers(1, 30), d=st.integers(2, 5), beta=st.one_of(st.just(0.0), st.floats(-6, 6)),
       name=st.sampled_from(["SA", "USA"]), seed=SEEDS, identity=st.booleans(), block=st.one_of(st.none(), st.integers(1, 9)))
def test_weighted_velocity_equals_the_double_loop(backend, n, d, beta, name, seed, identity, block):
    """Positive weights of any size (a weighted point measure); the symmetric path (B = bI, βb ≥ 0) and the
    general one. Rounding: sums of n ≤ 30 terms in another order and exponents of size ≤ 6‖B‖: ≤ 1e-12 of
    the terms' size."""
    rng = np.random.default_rng(seed)
    x = points(n, d, seed)
    w = rng.uniform(0.1, 2.0, n)
    Q, K, V = (np.eye(d), np.eye(d), np.eye(d)) if identity else rng.standard_normal((3, d, d)) / np.sqrt(d)
    model = AttentionModel(name, beta, d, Q, K, V)
    got = DirectVelocity(model, backend, block)(x, w)
    expected, size = reference(x, x, w, beta, model.B, model.V, model.normalized)
    assert np.all(np.abs(got - expected).max(axis=1) <= 1e-12 * size + 1e-300)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signed_weights_and_separate_targets(backend):
    """Targets other than the sources, and weights of both signs (a density's undershoot on a grid):
    the sums are linear in the weights, so S(w₁ + w₂) = S(w₁) + S(w₂) after the stabilization is undone."""
    rng = np.random.default_rng(0)
    x, y = points(7, 3, 1), points(20, 3, 2)
    w1, w2 = rng.uniform(0.5, 1, 20), -0.1 * rng.uniform(0, 1, 20)
    model = AttentionModel("USA", 2.5, 3, Q=rng.standard_normal((3, 3)))
    total = DirectSum(model, backend)

    def unstabilized(w):
        sums, top = total(x, y, w)
        return sums * np.exp(top)[:, None]

    np.testing.assert_allclose(unstabilized(w1 + w2), unstabilized(w1) + unstabilized(w2), rtol=1e-12, atol=1e-12)
    direct = np.array([(np.exp(2.5 * (y @ model.B.T) @ xi) * (w1 + w2)) @ np.hstack([y, np.ones((20, 1))]) for xi in x])
    np.testing.assert_allclose(unstabilized(w1 + w2), direct, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_weights_remove_a_point(backend):
    x = points(12, 3, 4)
    w = np.full(12, 1 / 11)
    w[5] = 0.0
    keep = np.arange(12) != 5
    model = AttentionModel("SA", 3.0, 3)
    full = DirectVelocity(model, backend)(x, w)
    without = DirectVelocity(model, backend)(x[keep], w[keep])
    np.testing.assert_allclose(full[keep], without, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_usa_sums_do_not_overflow_before_the_weights_scale_them(backend):
    """USA at β = 705 with weights 1/n, n = 10⁴ points at one place: the velocity e^{705}·… of the mean is a
    double even though Σ_j e^{705} is not; the largest weight is carried in the exponent."""
    n, phi = 10_000, 1e-3
    x = np.array([[1.0, 0.0]] * (n // 2) + [[math.cos(phi), math.sin(phi)]] * (n // 2))
    v = DirectVelocity(AttentionModel("USA", 705.0, 2), backend)(x, np.full(n, 1 / n))
    expected = 0.5 * math.exp(705 * math.cos(phi)) * math.sin(phi)
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(np.abs(v[:, 1]), expected * np.abs(np.cos(np.arctan2(x[:, 1], x[:, 0]))), rtol=1e-9)


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
def test_compiled_exponential_over_its_range():
    """USA, two tokens at angle φ: v_1 = ½ e^{β cos φ} sin φ exactly, the compiled weight being
    e^{β(cos φ − 1)}; β = 700 and cos φ from −0.011 to 1 sweep the argument over [−708, 0].
    The argument β(⟨x_1,x_2⟩ − 1) is rounded to ≈ 3 ε β = 5e-13 absolute: tolerance 1e-12.
    Below −708 the weight is e^{−708} instead: v_1 is ½ e^{β − 708} sin φ, still tiny."""
    field = DirectVelocity(AttentionModel("USA", 700.0, 2), "numba")
    for c in np.r_[np.linspace(-0.011, 1.0, 301)[:-1], 1 - 1e-9]:
        s = math.sqrt(1 - c * c)
        v = field(np.array([[1.0, 0.0], [c, s]]), np.full(2, 0.5))
        assert v[0, 1] == pytest.approx(0.5 * math.exp(700.0 * c) * s, rel=1e-12)
    v = field(np.array([[1.0, 0.0], [-0.5, math.sqrt(0.75)]]), np.full(2, 0.5))
    assert v[0, 1] == pytest.approx(0.5 * math.exp(700.0 - 708.0) * math.sqrt(0.75), rel=1e-12)


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
def test_compiled_kernel_is_independent_of_the_thread_count(monkeypatch):
    """Above _PARALLEL_PAIRS the rows are split among threads at block boundaries; each row's
    arithmetic is the same, so the result is identical to the one-thread result, bit for bit
    (resumed runs depend on it)."""
    x = points(1100, 3, seed=4)  # n² > 2²⁰: parallel
    w = np.full(1100, 1 / 1100)
    for Q in (None, np.random.default_rng(5).standard_normal((3, 3))):  # the symmetric and the general path
        field = DirectVelocity(AttentionModel("SA", 3.0, 3, Q=Q), "numba")
        kernels._compiled_kernel()  # imports numba
        monkeypatch.setattr(kernels.numba.config, "NUMBA_NUM_THREADS", 3)
        split = field(x, w)
        monkeypatch.setattr(kernels, "_PARALLEL_PAIRS", 10**9)
        np.testing.assert_array_equal(field(x, w), split)
        monkeypatch.undo()


@settings(max_examples=40)
@given(n=st.integers(1, 30), d=st.integers(2, 5), beta=st.one_of(st.just(0.0), st.floats(-6, 6)),
       name=st.sampled_from(["SA", "USA"]), seed=SEEDS, identity=st.booleans())
def test_pairwise_velocity_equals_the_double_loop(n, d, beta, name, seed, identity):
    """The projected-term sum (kernels.PairwiseVelocity) is the same velocity: to 1e-12 of the terms' size."""
    rng = np.random.default_rng(seed)
    x = points(n, d, seed)
    w = rng.uniform(0.1, 2.0, n)
    Q, K, V = (np.eye(d), np.eye(d), np.eye(d)) if identity else rng.standard_normal((3, d, d)) / np.sqrt(d)
    model = AttentionModel(name, beta, d, Q, K, V)
    expected, size = reference(x, x, w, beta, model.B, model.V, model.normalized)
    got = kernels.PairwiseVelocity(model)(x, w)
    assert np.all(np.abs(got - expected).max(axis=1) <= 1e-12 * size + 1e-300)


@pytest.mark.parametrize("name,clock", [("SA", "depth"), ("USA", "rescaled")])
@pytest.mark.parametrize("gap", [0.5, 1.0, 2.0])
def test_pairwise_velocity_keeps_attractions_far_below_the_self_term(name, clock, gap):
    """Two masses m₁, m₂ a gap Δ apart at β = 400 (attraction e^{β(cos Δ − 1)} from 1e-22 down to 1e-250 of the
    self term): the exact velocity of mass 1 is m₂ e^{β(cos Δ−1)} (x₂ − cos Δ x₁) / (m₁ + m₂ e^{β(cos Δ−1)}) (SA) or
    m₂ e^{β(cos Δ−1)} (x₂ − cos Δ x₁) (USA, rescaled clock); the pairwise sum gets it to 1e-12 relative (the
    exponent alone is conditioned to β·1e-16 = 4e-14). (The summed-then-projected
    direct velocity has an absolute error of about 1e-16 m₁ there, which may or may not cancel.)"""
    beta, m1, m2 = 400.0, 0.3, 0.7
    rotation = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))[0]  # generic coordinates: round-off
    x = np.array([[1.0, 0.0, 0.0], [math.cos(gap), math.sin(gap), 0.0]]) @ rotation.T
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = np.array([m1, m2])
    model = AttentionModel(name, beta, 3, clock=clock)
    cos = float(x[0] @ x[1])
    k = math.exp(beta * (cos - 1))
    toward = x[1] - cos * x[0]
    exact = m2 * k * toward / (m1 + m2 * k) if name == "SA" else m2 * k * toward
    got = kernels.PairwiseVelocity(model)(x, w)[0]
    assert np.linalg.norm(got - exact) <= 1e-12 * np.linalg.norm(exact)
