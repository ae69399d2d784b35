"""Funk–Hecke coefficients of the attention kernel e^{β⟨x,y⟩}."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde.errors import InputError
from spherepde.model import AttentionModel, funk_hecke, funk_hecke_over_beta, kernel_bandwidth
from spherepde.sphere import Sphere


def series(l, beta, d=3):
    """ĥ_l = Γ(d/2) Σ_k (β/2)^{2k+l} / (k! Γ(k+l+d/2)), summed term by term.

    For β > 0 every term is positive (no cancellation), and the sign of β enters only
    through (β/2)^l, so this reference is independent of the Bessel routines and of the
    parity rule used by the code.
    """
    total, k = 0.0, 0
    while True:
        log_term = (2 * k + l) * math.log(abs(beta) / 2) - math.lgamma(k + 1) - math.lgamma(k + l + d / 2)
        term = math.exp(log_term + math.lgamma(d / 2))
        total += term
        if k > abs(beta) and term < 1e-17 * total:
            return total * (1.0 if beta > 0 or l % 2 == 0 else -1.0)
        k += 1


@pytest.mark.parametrize("d", [2, 3, 5])
@pytest.mark.parametrize("beta", [-20.0, -1.0, 1e-3, 0.5, 3.0, 9.0, 40.0, 300.0])
def test_funk_hecke_matches_power_series(beta, d):
    h = funk_hecke(12, beta, d)
    expected = np.array([series(l, beta, d) for l in range(13)])
    # both sides are accurate to a few ulps per term; 1e-12 leaves room for the Bessel
    # routine's documented accuracy and the ~|β| terms of the series
    np.testing.assert_allclose(h, expected, rtol=1e-12)


def test_closed_forms_on_s2():
    """theory.md §3: ĥ_0 = sinh β/β, ĥ_1 = (β cosh β − sinh β)/β²."""
    for beta in (0.3, 9.0, 30.0):
        h = funk_hecke(1, beta)
        assert h[0] == pytest.approx(np.sinh(beta) / beta, rel=1e-13)
        assert h[1] == pytest.approx((beta * np.cosh(beta) - np.sinh(beta)) / beta**2, rel=1e-12)


@given(st.floats(0.01, 50.0), st.integers(2, 6))
@settings(max_examples=30, deadline=None)
def test_parity_under_beta_sign(beta, d):
    """ĥ_l(−β) = (−1)^l ĥ_l(β)."""
    l = np.arange(9)
    np.testing.assert_allclose(funk_hecke(8, -beta, d), (-1.0) ** l * funk_hecke(8, beta, d), rtol=1e-13)


def test_small_beta_is_continuous_with_beta_zero():
    """The series branch joins the β = 0 limit: ĥ_l/β → 1/d for l = 1, → 0 for l ≥ 2."""
    for d in (2, 3, 7):
        g = funk_hecke_over_beta(4, 1e-9, d)
        np.testing.assert_allclose(g, funk_hecke_over_beta(4, 0.0, d), atol=1e-8)
        assert funk_hecke(4, 0.0, d)[0] == 1.0


def test_scaled_coefficients_do_not_overflow_at_beta_1000():
    k = funk_hecke(200, 1000.0, scaled=True)
    assert np.all(np.isfinite(k)) and np.all(k > 0)
    # e^{-β} ĥ_0 = (1 − e^{−2β})/(2β) on S²
    assert k[0] == pytest.approx(1.0 / 2000.0, rel=1e-12)
    assert np.all(np.diff(k) < 0)


def test_kernel_bandwidth_table_of_theory():
    """theory.md §7: first l with ĥ_l/ĥ_0 < 1e−14 on S²."""
    got = [kernel_bandwidth(b, 3, 1e-14) for b in (1, 4, 16, 64, 128, 256, 400)]
    assert got == [13, 21, 36, 66, 92, 130, 162]


@pytest.mark.parametrize("beta", [-4.0, 0.0, 2.5])
def test_kernel_operator_against_grid_quadrature(beta):
    """K∗Y_lm(x_i) = Σ_j w_j e^{β⟨x_i,x_j⟩} Y_lm(x_j) equals ĥ_l Y_lm(x_i) on the dealiased grid."""
    S = Sphere(10)
    x = S.points().reshape(-1, 3)
    w = S.weights.ravel()
    kernel = np.exp(beta * x @ x.T) * w  # Gauss grid: exact for the degree ≤ 3·lmax integrand up to the kernel's tail
    h = funk_hecke(10, beta)
    for l, m in [(0, 0), (1, -1), (3, 2), (6, -5), (9, 0)]:
        y = S.synthesis(S.from_real_coefficients(np.eye(S.real_size)[S.real_index(l, m)])).ravel()
        # the kernel's degrees beyond 3·lmax are below 1e-13 of ĥ_0 for |β| ≤ 4 (bandwidth table)
        np.testing.assert_allclose(kernel @ y, h[l] * y, atol=1e-12 * np.exp(abs(beta)))


def test_model_validation():
    with pytest.raises(InputError, match="'XA'"):
        AttentionModel("XA", 1.0)
    with pytest.raises(InputError, match="finite"):
        AttentionModel("SA", float("nan"))
    with pytest.raises(InputError, match="700"):
        AttentionModel("USA", 800.0)
    assert AttentionModel("sa", 1.0).name == "SA"
