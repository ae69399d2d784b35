"""Harmonic analysis on S^{d-1}: Funk–Hecke coefficients of e^{β⟨x,y⟩} and their β-derivative,
the dimension of the harmonics of each degree, and the zonal harmonics (normalized Gegenbauer).

References independent of the code: power series summed term by term, closed forms on S², finite
differences, scipy's Gegenbauer polynomials and its Gauss–Jacobi quadrature, grid quadrature."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import eval_gegenbauer, gammaln, roots_jacobi

from spherepde.errors import InputError
from spherepde.harmonics import (
    MAX_ABS_BETA,
    funk_hecke,
    funk_hecke_derivative,
    funk_hecke_over_beta,
    harmonic_dimension,
    kernel_bandwidth,
    log_funk_hecke,
    zonal_harmonics,
)
from spherepde.manifolds import Sphere


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
    """ĥ_0 = sinh β/β, ĥ_1 = (β cosh β − sinh β)/β² on S²."""
    for beta in (0.3, 9.0, 30.0):
        h = funk_hecke(1, beta)
        assert h[0] == pytest.approx(np.sinh(beta) / beta, rel=1e-13)
        assert h[1] == pytest.approx((beta * np.cosh(beta) - np.sinh(beta)) / beta**2, rel=1e-12)


@given(st.floats(0.01, 50.0), st.integers(2, 6))
@settings(max_examples=30)
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
    """The band limit table of docs/mathematics.md: first l with ĥ_l/ĥ_0 < 1e−14 on S²."""
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


def derivative_series(l, beta, d):
    """∂_β ĥ_l = Γ(d/2) Σ_k ((2k+l)/2) (β/2)^{2k+l-1} / (k! Γ(k+l+ν₀+1)), summed in log form."""
    nu0 = (d - 2) / 2
    if beta == 0.0:
        return 1.0 / d if l == 1 else 0.0
    total, k = 0.0, 0
    sign = math.copysign(1.0, beta) ** (l - 1) if l != 1 else 1.0
    while True:
        if 2 * k + l > 0:
            term = math.exp(
                gammaln(d / 2) + math.log((2 * k + l) / 2) + (2 * k + l - 1) * math.log(abs(beta) / 2)
                - gammaln(k + 1) - gammaln(k + l + nu0 + 1)
            )
            total += term
            if k > abs(beta) and term <= 1e-18 * total:
                return sign * total
        k += 1


@given(st.sampled_from([2, 3, 4, 5]), st.one_of(st.just(0.0), st.floats(-60, 60, allow_subnormal=False)))
@settings(max_examples=40)
def test_funk_hecke_derivative_matches_the_power_series(d, beta):
    """All terms of the series have one sign: it is accurate to a few ulps, and the recurrence
    ĥ_{l+1} + (l/β)ĥ_l adds two terms of one sign, each to ≈1e-12 (model.log_funk_hecke)."""
    lmax = 25
    expected = [derivative_series(l, beta, d) for l in range(lmax + 1)]
    np.testing.assert_allclose(funk_hecke_derivative(lmax, beta, d), expected, rtol=1e-11, atol=1e-300)


@given(st.sampled_from([2, 3]), st.floats(-40, 40).filter(lambda b: abs(b) > 0.05))
@settings(max_examples=20)
def test_funk_hecke_derivative_is_the_derivative_of_funk_hecke(d, beta):
    """Central difference with h = 1e-5(1+|β|): the truncation h²|ĥ'''|/6 (≤ 1e-8 relative) and
    the error 1e-12|ĥ|/h of the differenced values (≤ 1e-7 relative) are below the 1e-6 asked."""
    h = 1e-5 * (1 + abs(beta))
    scale = math.exp(-abs(beta))
    fd = (funk_hecke(12, beta + h, d) - funk_hecke(12, beta - h, d)) / (2 * h) * scale
    exact = funk_hecke_derivative(12, beta, d, scaled=True)
    np.testing.assert_allclose(fd, exact, rtol=1e-6, atol=1e-12 * np.abs(exact).max())


@given(d=st.integers(2, 60), l=st.integers(0, 60))
def test_harmonic_dimension(d, l):
    # N(d,l) = (2l+d-2)(l+d-3)!/(l!(d-2)!), N(d,0) = 1.
    if l == 0:
        expected = 1
    else:
        expected = (2 * l + d - 2) * math.factorial(l + d - 3) // (math.factorial(l) * math.factorial(d - 2))
    assert harmonic_dimension(d, l) == expected

# --------------------------------------------------------------------------- zonal harmonics


@pytest.mark.parametrize("d", [2, 3, 4, 7, 16])
def test_zonal_harmonics_are_normalized_gegenbauer_polynomials(d):
    """Y_l = C_l^ν/‖C_l^ν‖ with ν = (d-2)/2 (d = 2: √2 cos lθ), orthonormal under c_d (1-s²)^{(d-3)/2} ds:
    checked against scipy's Gegenbauer polynomials and Gauss–Jacobi rule (exact at degree 2·40)."""
    s, w = roots_jacobi(41, (d - 3) / 2, (d - 3) / 2)
    w = w / w.sum()
    Y = zonal_harmonics(s, 20, d)
    np.testing.assert_allclose((Y * w) @ Y.T, np.eye(21), atol=1e-12)
    for l in range(21):
        C = np.cos(l * np.arccos(s)) if d == 2 else eval_gegenbauer(l, (d - 2) / 2, s)
        C = C / math.sqrt(np.sum(w * C * C))
        np.testing.assert_allclose(Y[l], C, atol=1e-11 * np.abs(C).max())


@given(d=st.integers(2, 4096), l=st.integers(0, 40))
@settings(max_examples=60)
def test_zonal_harmonic_at_the_pole_is_the_root_of_the_dimension(d, l):
    """The addition theorem at x = y: Y_l(1)² = N(d, l), for every d up to 4096 (no overflow)."""
    Y = zonal_harmonics(np.ones(1), l, d)[l, 0]
    assert Y**2 == pytest.approx(harmonic_dimension(d, l), rel=1e-11)


@pytest.mark.parametrize("d", [2, 3, 9, 1024])
def test_zonal_harmonic_derivatives_by_finite_differences(d):
    """Central differences, h = 1e-6: truncation h²|Y‴|/6 and round-off ε|Y|/h, both below 1e-6 relative."""
    s = np.linspace(-0.7, 0.7, 9)
    Y, dY = zonal_harmonics(s, 12, d, derivative=True)
    h = 1e-6
    fd = (zonal_harmonics(s + h, 12, d) - zonal_harmonics(s - h, 12, d)) / (2 * h)
    np.testing.assert_allclose(dY, fd, rtol=1e-6, atol=1e-6 * np.abs(dY).max())


def test_beta_beyond_the_supported_range_is_refused_at_once():
    """|β| > MAX_ABS_BETA: scipy's scaled Bessel functions are NaN from 1e10 on; an InputError, not a hang."""
    with pytest.raises(InputError, match="beta"):
        log_funk_hecke(10, 10 * MAX_ABS_BETA)
    assert np.isfinite(log_funk_hecke(10, MAX_ABS_BETA)[0]).all()
    assert kernel_bandwidth(MAX_ABS_BETA, 3) > 1000
