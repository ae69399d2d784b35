"""The S² discretization: grid, quadrature, real harmonics, calculus, rotation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde.errors import InputError
from spherepde.sphere import Sphere

LMAX = 12
S = Sphere(LMAX)


def random_field(seed, lmax=LMAX):
    a = np.random.default_rng(seed).standard_normal(S.real_size)
    a[(lmax + 1) ** 2 :] = 0
    return a


def test_weights_integrate_polynomials_exactly():
    """Σ w f = ∫ f dσ for monomials up to degree 3·lmax (Gauss grid of the 3/2 rule)."""
    x = S.points()
    assert S.weights.sum() == pytest.approx(1.0, abs=1e-14)
    # ∫ z^{2k} dσ = 1/(2k+1), ∫ x² y² dσ = 1/15 on S²
    for k in range(0, (3 * LMAX) // 2 + 1):
        assert np.sum(S.weights * x[..., 2] ** (2 * k)) == pytest.approx(1 / (2 * k + 1), rel=1e-13)
    assert np.sum(S.weights * x[..., 0] ** 2 * x[..., 1] ** 2) == pytest.approx(1 / 15, rel=1e-13)


def test_grid_is_dealiased():
    nlat, nphi = S.grid_shape
    assert nlat >= 3 * (LMAX + 1) / 2 and nphi > 3 * LMAX


@given(st.integers(0, LMAX), st.data())
@settings(max_examples=40, deadline=None)
def test_real_harmonics_are_orthonormal_under_sigma(l, data):
    m = data.draw(st.integers(-l, l))
    y = S.synthesis(S.from_real_coefficients(np.eye(S.real_size)[S.real_index(l, m)]))
    assert np.sum(S.weights * y * y) == pytest.approx(1.0, rel=1e-12)
    # orthogonal to a different harmonic
    other = S.real_index(l, -m) if m != 0 else S.real_index(min(l + 1, LMAX), 0)
    if other != S.real_index(l, m):
        z = S.synthesis(S.from_real_coefficients(np.eye(S.real_size)[other]))
        assert abs(np.sum(S.weights * y * z)) < 1e-13


def test_degree_one_harmonics_are_the_coordinates():
    """Y_11 = √3 x, Y_1,-1 = √3 y, Y_10 = √3 z (no Condon–Shortley sign in the real basis)."""
    x = S.points()
    for m, axis in [(1, 0), (-1, 1), (0, 2)]:
        a = S.real_coefficients(S.analysis(np.sqrt(3) * x[..., axis]))
        assert a[S.real_index(1, m)] == pytest.approx(1.0, rel=1e-13)
        assert np.sum(a**2) == pytest.approx(1.0, rel=1e-12)


@given(st.integers(0, 10**6))
@settings(max_examples=20, deadline=None)
def test_parseval_and_round_trip(seed):
    a = random_field(seed)
    c = S.from_real_coefficients(a)
    np.testing.assert_allclose(S.real_coefficients(c), a, atol=1e-14)
    f = S.synthesis(c)
    assert np.sum(S.weights * f * f) == pytest.approx(np.sum(a * a), rel=1e-12)
    assert np.sum(S.degree_energy(c)) == pytest.approx(np.sum(a * a), rel=1e-12)
    np.testing.assert_allclose(S.analysis(f), c, atol=1e-12)


@given(st.integers(0, 10**6))
@settings(max_examples=20, deadline=None)
def test_divergence_of_gradient_is_laplacian(seed):
    """div ∇u = Δu = −l(l+1) u for band-limited u."""
    c = S.from_real_coefficients(random_field(seed))
    _, grad = S.scalar_and_gradient(c, c)
    lap = S.divergence(tuple(g.copy() for g in grad))
    np.testing.assert_allclose(lap, -S.degrees * (S.degrees + 1.0) * c, atol=1e-10 * np.abs(c).max() * LMAX**2)


def test_gradient_of_coordinate_function():
    """∇z = −sin θ e_θ: (∂_θ z, ∂_φ z / sin θ) = (−sin θ, 0)."""
    c = S.analysis(S.points()[..., 2])
    _, (gt, gp) = S.scalar_and_gradient(c, c)
    np.testing.assert_allclose(gt, -np.sin(S.theta)[:, None] * np.ones_like(gt), atol=1e-13)
    np.testing.assert_allclose(gp, 0.0, atol=1e-13)


def test_divergence_integrates_to_zero():
    rng = np.random.default_rng(3)
    v = (rng.standard_normal(S.grid_shape), rng.standard_normal(S.grid_shape))
    assert abs(S.mean(S.divergence(v))) < 1e-14


@given(st.integers(0, 10**6), st.floats(0, 2 * np.pi), st.floats(0, np.pi), st.floats(0, 2 * np.pi))
@settings(max_examples=20, deadline=None)
def test_rotation_is_an_isometry_of_each_degree(seed, a, b, g):
    c = S.from_real_coefficients(random_field(seed))
    r = S.rotate(c, a, b, g)
    np.testing.assert_allclose(S.degree_energy(r), S.degree_energy(c), rtol=1e-11, atol=1e-14)


def test_rotation_moves_points():
    """Rotating a degree-1 field z by β about y gives cos β z + sin β x (up to the sense of rotation)."""
    x = S.points()
    c = S.analysis(x[..., 2])
    r = S.synthesis(S.rotate(c, 0.0, 0.4, 0.0))
    candidates = [np.cos(0.4) * x[..., 2] + s * np.sin(0.4) * x[..., 0] for s in (1, -1)]
    assert min(np.abs(r - f).max() for f in candidates) < 1e-12


@pytest.mark.parametrize("lmax", [1, 0, 2.5, True, 5000])
def test_bad_lmax_is_an_input_error(lmax):
    with pytest.raises(InputError, match="lmax"):
        Sphere(lmax)


def test_bad_mode_names_the_mode():
    with pytest.raises(InputError, match=r"\[3, 4\]"):
        S.real_index(3, 4)
