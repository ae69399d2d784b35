"""The S² discretization beyond the manifold contract (tests/test_manifolds.py): the Gauss grid,
the sign convention of the real harmonics, the frame, rotation, input errors."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde.errors import InputError
from spherepde.manifolds import Sphere
from spherepde.manifolds.sphere import BAND_POINTS, _Band

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


def test_degree_one_harmonics_are_the_coordinates():
    """Y_11 = √3 x, Y_1,-1 = √3 y, Y_10 = √3 z (no Condon–Shortley sign in the real basis)."""
    x = S.points()
    for m, axis in [(1, 0), (-1, 1), (0, 2)]:
        a = S.real_coefficients(S.analysis(np.sqrt(3) * x[..., axis]))
        assert a[S.real_index(1, m)] == pytest.approx(1.0, rel=1e-13)
        assert np.sum(a**2) == pytest.approx(1.0, rel=1e-12)


def test_gradient_of_coordinate_function():
    """∇z = −sin θ e_θ: (∂_θ z, ∂_φ z / sin θ) = (−sin θ, 0)."""
    c = S.analysis(S.points()[..., 2])
    _, (gt, gp) = S.scalar_and_gradient(c, c)
    np.testing.assert_allclose(gt, -np.sin(S.theta)[:, None] * np.ones_like(gt), atol=1e-13)
    np.testing.assert_allclose(gp, 0.0, atol=1e-13)


@given(st.integers(0, 10**6), st.floats(0, 2 * np.pi), st.floats(0, np.pi), st.floats(0, 2 * np.pi))
@settings(max_examples=20)
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
    with pytest.raises(InputError, match="domain.lmax"):
        Sphere(lmax)


def test_tangent_frame_is_e_theta_e_phi():
    """The frame read off the gradients is (e_θ, e_φ) written out from the angles."""
    t, p = np.meshgrid(S.theta, S.phi, indexing="ij")
    e_theta = np.stack([np.cos(t) * np.cos(p), np.cos(t) * np.sin(p), -np.sin(t)], axis=-1)
    e_phi = np.stack([-np.sin(p), np.cos(p), np.zeros_like(p)], axis=-1)
    np.testing.assert_allclose(S.tangent_frame, np.stack([e_theta, e_phi]), atol=1e-12)


def test_bad_mode_names_the_mode():
    with pytest.raises(InputError, match=r"\[3, 4\]"):
        S.real_index(3, 4)


@settings(max_examples=20)
@given(lmax=st.sampled_from([31, 63, 100]), degree=st.integers(2, 30), exact=st.booleans(), seed=st.integers(0, 2**31))
def test_the_band_on_a_larger_grid_equals_shtns_without_its_polar_threshold(lmax, degree, exact, seed):
    """The kernel's band (ducc0's Legendre sums + one inverse FFT per latitude) against SHTns' own transforms at the low
    degree on the same grid, with SHTns' polar threshold off (at its default 1e-10 it drops Legendre values near
    the poles): synthesis and gradient of random coefficients to 1e-13 of their largest value, on the 3/2 grid and
    on a smaller exact one."""
    import shtns

    sphere = Sphere(lmax)
    sphere = sphere.exact_to(2 * lmax + degree) if exact else sphere
    band = _Band(degree, 1, sphere.grid_shape)
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(band.size) + 1j * rng.standard_normal(band.size)
    c[band.orders == 0] = c[band.orders == 0].real
    reference = shtns.sht(degree, norm=shtns.sht_orthonormal, nthreads=1)
    reference.set_grid(*band.grid_shape, flags=shtns.sht_gauss | shtns.SHT_PHI_CONTIGUOUS, polar_opt=0)
    f, gt, gp = (np.empty(band.grid_shape) for _ in range(3))
    reference.SH_to_spat(c, f)
    reference.SHsph_to_spat(c, gt, gp)
    for ours, theirs in [(band.synthesis(c), f), *zip(band.gradient(c), (gt, gp))]:
        assert np.abs(ours - theirs).max() <= 1e-13 * np.abs(theirs).max()


def test_the_band_is_synthesized_by_ducc0_from_band_points_on():
    assert isinstance(Sphere(127).truncated(30), _Band) and 192 * 384 >= BAND_POINTS
    small = Sphere(63).truncated(28)
    assert type(small) is Sphere and small.grid_shape == Sphere(63).grid_shape


def test_a_sphere_on_several_threads_keeps_shtns_band_on_its_threads(monkeypatch):
    """ducc0's band serves one-thread spheres only: on several threads SHTns' truncated transform runs on them.
    threads = 0 means several threads only where the process may use more than one core."""
    band = Sphere(127, nthreads=2).truncated(30)
    assert type(band) is Sphere and band.threads == 2 and band.grid_shape == Sphere(127).grid_shape
    for cores, kind in [({0}, _Band), ({0, 1}, Sphere)]:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, cores=cores: cores, raising=False)
        assert type(Sphere(127, nthreads=0).truncated(30)) is kind
