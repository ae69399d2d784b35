"""S² discretized by spherical harmonics (SHTns) on a dealiased Gauss grid.

A field f is stored by its SHTns coefficients c_lm (orthonormal with respect
to the area measure, m ≥ 0, complex). With respect to the normalized measure σ
the real orthonormal harmonics are (docs/mathematics.md, "Harmonics on S^{d-1}"; the (-1)^m
cancels SHTns' Condon–Shortley phase, so that Y_11 = √3 x, Y_1,-1 = √3 y, Y_10 = √3 z)

    Y_l0 = √(4π) Y_l^0,   Y_lm = (-1)^m √(8π) Re Y_l^m,   Y_l,-m = (-1)^m √(8π) Im Y_l^m   (m > 0),

so f = Σ a_lm Y_lm with a_l0 = c_l0/√(4π), a_lm = (-1)^m √2 Re c_lm/√(4π),
a_l,-m = -(-1)^m √2 Im c_lm/√(4π). The grid has nlat ≥ 3(lmax+1)/2 Gauss latitudes
(3/2 rule), so that products of two band-limited fields are analysed without
aliasing and the quadrature is exact to degree 3·lmax; :meth:`Sphere.exact_to` gives
the smallest grid exact to a lower degree (USA's flux, docs/numerics.md).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys

import numpy as np

import ducc0

from ..errors import InputError
from ..profiles import von_mises_fisher
from . import sampling
from .base import POINT_EPSILON, Manifold

SQRT4PI = np.sqrt(4.0 * np.pi)


@contextlib.contextmanager
def _silenced_stdout():
    """Discard C-level stdout, so that machine-readable output and stderr stay clean."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


with _silenced_stdout():
    import shtns  # prints a build banner when loaded


#: SHTns ends the process (no exception) on an explicit Gauss grid of fewer latitudes
MIN_NLAT = 32


def _fft_size(n: int) -> int:
    """The least even number ≥ n with no prime factor above 7."""
    n += n % 2
    while True:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 2


#: From this many grid points the kernel's band of a one-thread sphere is synthesized by :class:`_Band` (ducc0's
#: Legendre sums and one FFT per latitude); below, SHTns' truncated transform is faster. Measured at degree 28–30, one
#: thread: synthesis 0.024 against SHTns' 0.019 ms on 96 × 192, 0.041 against 0.063 ms on 144 × 288, 0.16 against
#: 0.26 ms on 272 × 560; the gradient likewise (0.039/0.034, 0.076/0.124, 0.32/0.51 ms). A sphere on several threads
#: keeps SHTns' band, which runs on its threads (benchmarks/bench_band.py --threads 0; docs/performance.md).
BAND_POINTS = 2**15


def _parallel(nthreads: int) -> bool:
    """Whether SHTns' ``nthreads`` (0: all cores) means more than one thread on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return nthreads > 1 or (nthreads == 0 and cores > 1)


class Sphere(Manifold):
    """Spectral discretization of S² ⊂ R³ with truncation degree ``lmax``."""

    kind = "sphere"
    profiles = ("von_mises_fisher",)
    coordinate_label = "colatitude θ (rad)"
    max_lmax = 2047
    d = 3

    def __init__(self, lmax: int, nthreads: int = 1, grid_shape: tuple[int, int] | None = None):
        self.lmax = self.check_lmax(lmax)
        self.threads = nthreads
        self._sh = sh = shtns.sht(self.lmax, norm=shtns.sht_orthonormal, nthreads=nthreads)
        if grid_shape is None:  # the dealiased Gauss grid of the 3/2 rule
            nlat, nphi = sh.set_grid(nl_order=2, flags=shtns.sht_gauss)
        else:  # a given Gauss grid (a truncated transform on another sphere's grid)
            nlat, nphi = sh.set_grid(*grid_shape, flags=shtns.sht_gauss)
        self.grid_shape = (nlat, nphi)
        self.theta = np.arccos(sh.cos_theta)
        self.phi = 2.0 * np.pi * np.arange(nphi) / nphi
        half = sh.gauss_wts()
        column = np.concatenate([half, half[::-1]]) if 2 * half.size == nlat else half
        self.weights = np.outer(column, np.ones(nphi)) / column.sum() / nphi
        self.degrees = np.asarray(sh.l, dtype=int)
        self.orders = np.asarray(sh.m, dtype=int)
        # |a|² per coefficient: Σ_m a_lm² = (|c_l0|² + 2 Σ_{m>0} |c_lm|²)/(4π)
        self._energy_weight = np.where(self.orders == 0, 1.0, 2.0) / (4.0 * np.pi)
        self._laplacian = -self.degrees * (self.degrees + 1.0)  # Δ Y_l^m = −l(l+1) Y_l^m
        base = self.degrees**2 + self.degrees
        self._positive = self.orders > 0
        self._cos = base + self.orders
        self._sin = (base - self.orders)[self._positive]
        sign = np.where(self.orders % 2, -1.0, 1.0)
        self._real_scale = np.where(self._positive, np.sqrt(2.0) * sign, 1.0) / SQRT4PI
        self._zero_spec = np.zeros(sh.nlm, complex)
        self._spat = [np.empty(self.grid_shape) for _ in range(3)]
        self._spec = [np.empty(sh.nlm, complex) for _ in range(2)]

    @classmethod
    def from_domain(cls, domain, threads: int = 1) -> "Sphere":
        return cls(domain.lmax, nthreads=threads)

    def exact_to(self, degree: int) -> "Sphere":
        """This sphere on the smallest Gauss grid exact to ``degree``, when smaller than the 3/2 grid: the n Gauss
        latitudes integrate degree 2n − 1 in cos θ and N equally spaced longitudes degree N − 1 in φ, so
        n = ⌈(degree + 1)/2⌉ (even, for SHTns' equatorial symmetry) and N the least even 7-smooth number
        ≥ degree + 1 (a fast FFT size: at lmax 255 a transform pair on 272 × 542 costs 2.8 times 272 × 560)."""
        nlat = -(-(degree + 1) // 2)
        shape = (nlat + nlat % 2, _fft_size(degree + 1))
        smaller = shape[0] * shape[1] < self.grid_shape[0] * self.grid_shape[1] and shape[0] >= MIN_NLAT
        return Sphere(self.lmax, self.threads, shape) if smaller else self

    def on_grid(self, grid) -> "Sphere":
        shape = (len(grid["theta"]), len(grid["phi"]))
        if shape == self.grid_shape:
            return self
        if shape[0] < max(MIN_NLAT, self.lmax + 1) or shape[1] <= 2 * self.lmax:
            raise InputError(f"a {shape[0]}×{shape[1]} grid does not carry the sphere at lmax = {self.lmax}: it needs at "
                             f"least {max(MIN_NLAT, self.lmax + 1)} latitudes and {2 * self.lmax + 1} longitudes")
        return Sphere(self.lmax, self.threads, shape)

    @property
    def size(self) -> int:
        """Number of (complex) spectral coefficients."""
        return self._sh.nlm

    @property
    def grid(self) -> dict[str, np.ndarray]:
        """Grid coordinates as written to run files: colatitude θ and longitude φ."""
        return {"theta": self.theta, "phi": self.phi}

    def points(self) -> np.ndarray:
        """Cartesian coordinates of the grid points, shape grid_shape + (3,)."""
        t, p = np.meshgrid(self.theta, self.phi, indexing="ij")
        return np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)

    # transforms -------------------------------------------------------------
    def analysis(self, f: np.ndarray) -> np.ndarray:
        """Coefficients of the degree ≤ lmax projection of the grid function f."""
        return self._sh.analys(np.ascontiguousarray(f, dtype=float))

    def synthesis(self, c: np.ndarray) -> np.ndarray:
        """Grid values of Σ c_lm Y_l^m."""
        return self._sh.synth(np.ascontiguousarray(c, dtype=complex))

    def scalar_and_gradient(self, c: np.ndarray, p: np.ndarray):
        """Grid values of f = Σ c Y and of ∇u = (∂_θ u, ∂_φ u / sin θ) for u = Σ p Y, in one transform.

        The returned arrays are work buffers, overwritten by the next call.
        """
        f, gt, gp = self._spat
        self._sh.SHqst_to_spat(c, p, self._zero_spec, f, gt, gp)
        return f, (gt, gp)

    def gradient(self, p: np.ndarray):
        """(∂_θ u, ∂_φ u / sin θ) on the grid for u = Σ p Y, one spheroidal synthesis (work buffers)."""
        _, gt, gp = self._spat
        self._sh.SHsph_to_spat(np.ascontiguousarray(p, dtype=complex), gt, gp)
        return gt, gp

    def truncated(self, degree: int) -> "Sphere | None":
        """The sphere of lmax = ``degree`` on this Gauss grid (:class:`_Band` from BAND_POINTS grid points on, when
        this sphere's transforms run on one thread): its Legendre sums cost about (degree/lmax) of these (the
        longitudinal FFTs stay), so the kernel's band (≈ 8√β) is cheap at large lmax."""
        if not 2 <= degree < self.lmax:
            return None
        nlat, nphi = self.grid_shape
        band = _Band if nlat * nphi >= BAND_POINTS and not _parallel(self.threads) else Sphere
        return band(degree, self.threads, (nlat, nphi))

    def coefficient_indices(self, other: "Manifold") -> np.ndarray:
        """Positions of ``other``'s (l, m) in this layout: c[indices] are the coefficients of degree ≤ other.lmax."""
        if not isinstance(other, Sphere):
            raise TypeError(f"the coefficients of a {other.kind} have no place on the sphere")
        return np.array([self._sh.idx(int(l), int(m)) for l, m in zip(other.degrees, other.orders)])

    def divergence(self, v) -> np.ndarray:
        """Coefficients of div v for a tangent field v = (v_θ, v_φ) on the grid: div ∇S = -l(l+1) S."""
        s, t = self._spec
        self._sh.spat_to_SHsphtor(np.ascontiguousarray(v[0]), np.ascontiguousarray(v[1]), s, t)
        return self._laplacian * s

    # quadratic functionals (σ-normalized real coefficients) -------------------
    def degree_energy(self, c: np.ndarray) -> np.ndarray:
        """Σ_m a_lm² for l = 0..lmax."""
        return np.bincount(self.degrees, weights=self._energy_weight * np.abs(c) ** 2, minlength=self.lmax + 1)

    def inner(self, a: np.ndarray, b: np.ndarray) -> float:
        """∫ f g dσ for f = Σ a Y, g = Σ b Y."""
        return float(np.sum(self._energy_weight * (a * np.conj(b)).real))

    def mean(self, c: np.ndarray) -> float:
        """∫ f dσ."""
        return float(c[0].real) / SQRT4PI

    # real harmonics: a[l² + l + m] = a_lm, ordered by degree ---------------------
    @property
    def real_size(self) -> int:
        """Number of real coefficients a_lm, (lmax+1)²."""
        return (self.lmax + 1) ** 2

    def real_coefficients(self, c: np.ndarray) -> np.ndarray:
        """The σ-normalized real coefficients a_lm = ∫ f Y_lm dσ, ordered (l, m = -l..l)."""
        a = np.zeros(self.real_size)
        a[self._cos] = self._real_scale * c.real
        a[self._sin] = -self._real_scale[self._positive] * c[self._positive].imag
        return a

    def from_real_coefficients(self, a: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`real_coefficients`."""
        c = a[self._cos] / self._real_scale + 0j
        c[self._positive] -= 1j * a[self._sin] / self._real_scale[self._positive]
        return c

    def real_index(self, l: int, m: int) -> int:
        """Position of a_lm in the real layout (m < 0: the sin |m|φ harmonic)."""
        if not (isinstance(l, (int, np.integer)) and isinstance(m, (int, np.integer))) or not (
            0 <= l <= self.lmax and -l <= m <= l
        ):
            raise InputError(
                f"mode [{l}, {m}] is not allowed on the sphere: use integers 0 <= l <= lmax = {self.lmax}, -l <= m <= l"
            )
        return int(l * l + l + m)

    @property
    def real_degrees(self) -> np.ndarray:
        """The degree l of each real coefficient, in the real layout."""
        return real_degrees(self.lmax)

    def multiplicity(self, l: int) -> int:
        return 2 * l + 1

    def harmonics(self, x: np.ndarray) -> np.ndarray:
        """Y_lm(x) at points x (n, 3) of S², l ≤ lmax, in the real layout: shape (n, (lmax+1)²)."""
        return real_harmonics(x, self.lmax)

    def neighbourhoods(self) -> np.ndarray:
        """The 3×3 block in (θ, φ), periodic in φ, continued across each pole (the row beyond the
        first ring is that ring turned by π: (-θ, φ) = (θ, φ + π))."""
        return _neighbourhoods(self.grid_shape)

    def initial_profile(self, ini) -> np.ndarray:
        """von_mises_fisher: e^{κ⟨x,μ⟩}/ĥ_0(κ) about the unit vector μ ∝ ``mean``."""
        mean = np.asarray(ini.mean, dtype=float)
        return von_mises_fisher(self.points(), mean / np.linalg.norm(mean), ini.kappa)

    def locate(self, x: np.ndarray) -> "_SpherePoints":
        return _SpherePoints(self, x)

    def quadrature(self, degree: int) -> tuple[np.ndarray, np.ndarray]:
        """Gauss–Legendre in cos θ (⌈(degree+1)/2⌉ latitudes) × degree+1 equispaced longitudes, rounded up to an
        even count so that the nodes are symmetric under x → −x (an odd count would seed odd degrees into
        antipodally symmetric data at round-off level)."""
        z, w = np.polynomial.legendre.leggauss((degree + 2) // 2)
        nphi = degree + 1 + (degree + 1) % 2
        phi = 2.0 * np.pi * np.arange(nphi) / nphi
        s = np.sqrt(1.0 - z * z)
        points = np.stack(np.broadcast_arrays(np.outer(s, np.cos(phi)), np.outer(s, np.sin(phi)), z[:, None]), axis=-1)
        return points.reshape(-1, 3), np.repeat(w / 2.0 / nphi, nphi)

    def sample(self, values, n, rng):
        return sampling.sample(values, (self.theta, self.phi), n, rng)

    def quantile_points(self, values, n):
        return sampling.quantile_points(values, (self.theta, self.phi), n)

    def rotate(self, c: np.ndarray, alpha: float, beta: float, gamma: float) -> np.ndarray:
        """Coefficients of f∘R⁻¹ for the rotation R with ZYZ Euler angles (α, β, γ)."""
        sh = self._sh
        return sh.Zrotate(sh.Yrotate(sh.Zrotate(np.ascontiguousarray(c, complex), gamma), beta), alpha)


class _SpherePoints:
    """Harmonic sums at arbitrary points of S² by ducc0's non-uniform spherical harmonic transforms
    (adjoint synthesis, synthesis, and the gradient by the spin-1 'DERIV1' synthesis), accurate to
    POINT_EPSILON relative to the coefficients' norm; cost O(n + lmax² log lmax).

    SHTns' layout (m ≥ 0, m-major, orthonormal over the area 4π with the Condon–Shortley phase) is ducc0's;
    the coefficients of Σ_j w_j δ_{x_j} relative to σ are 4π times the adjoint synthesis of the weights."""

    def __init__(self, sphere: Sphere, x: np.ndarray):
        self.lmax, self.threads = sphere.lmax, sphere.threads
        x = np.asarray(x, dtype=float)
        # arctan2, not arccos(z): near a pole arccos loses ε/θ of absolute accuracy (1e-10 at θ = 1e-6)
        theta, phi = np.arctan2(np.hypot(x[:, 0], x[:, 1]), x[:, 2]), np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
        self.loc = np.column_stack([theta, phi])

    def _options(self):
        return dict(lmax=self.lmax, loc=self.loc, epsilon=POINT_EPSILON, nthreads=self.threads)

    def coefficients(self, w):
        """On one thread: with several, ducc0 spreads the points onto its grid in an order that depends on the
        thread schedule, and the sums (so a resumed run) would differ from call to call at round-off."""
        weights = np.ascontiguousarray(w, dtype=float)[None]
        options = {**self._options(), "nthreads": 1}
        return 4.0 * np.pi * ducc0.sht.adjoint_synthesis_general(map=weights, spin=0, **options)[0]

    def synthesis(self, c):
        return ducc0.sht.synthesis_general(alm=np.ascontiguousarray(c, complex)[None], spin=0, **self._options())[0]

    def gradient(self, c):
        """g_θ e_θ + g_φ e_φ with e_θ = (cos θ cos φ, cos θ sin φ, −sin θ), e_φ = (−sin φ, cos φ, 0), formed column by
        column (the frame is not kept: at 10⁶ points each n × 3 array is 24 MB)."""
        g_theta, g_phi = ducc0.sht.synthesis_general(alm=np.ascontiguousarray(c, complex)[None], spin=1, mode="DERIV1",
                                                     **self._options())
        theta, phi = self.loc[:, 0], self.loc[:, 1]
        out = np.empty((len(theta), 3))
        radial = g_theta * np.cos(theta)  # the part of g_θ e_θ in the plane z = 0
        cp, sp = np.cos(phi), np.sin(phi)
        out[:, 0] = radial * cp - g_phi * sp
        out[:, 1] = radial * sp + g_phi * cp
        out[:, 2] = -g_theta * np.sin(theta)
        return out


class _Band(Sphere):
    """A sphere of low degree on a larger sphere's Gauss grid, for band-limited fields (the kernel's): synthesis as
    ducc0's Legendre sums for m ≤ lmax at the grid's latitudes, then one inverse real FFT of length n_φ per latitude
    whose spectrum above lmax stays zero. SHTns' own synthesis at lmax 30 on 272 × 560 costs 1.5 times as much
    (measured: docs/performance.md); the values agree to its polar threshold (10⁻¹⁰ relative). On one thread: it
    serves one-thread spheres (:meth:`Sphere.truncated`); on two threads SHTns' band, which runs on them, was faster,
    and ducc0's threads would compete with SHTns' OpenMP threads, which keep spinning after each transform."""

    def __init__(self, lmax: int, nthreads: int, grid_shape: tuple[int, int]):
        super().__init__(lmax, nthreads, grid_shape)
        orders = np.arange(lmax + 1)
        self._orders = orders.astype(np.uintp)
        self._starts = np.array([self._sh.idx(int(m), int(m)) - int(m) for m in orders], dtype=np.uintp)
        nlat, nphi = grid_shape
        self._spectra = {spin: np.zeros((1 + spin, nlat, nphi // 2 + 1), complex) for spin in (0, 1)}  # 0 above lmax
        self._gradient = np.empty((2, nlat, nphi))

    def _spectrum(self, c: np.ndarray, spin: int) -> np.ndarray:
        """Σ_l c_lm Λ_lm(θ_j) (spin 0) or its gradient's components (spin 1) for m ≤ lmax, in the latitude's
        Fourier spectrum."""
        spectrum = self._spectra[spin]
        ducc0.sht.alm2leg(alm=np.ascontiguousarray(c, dtype=complex)[None], lmax=self.lmax, theta=self.theta, spin=spin,
                          mval=self._orders, mstart=self._starts, mode="DERIV1" if spin else "STANDARD",
                          nthreads=1, leg=spectrum[..., : self.lmax + 1])
        return spectrum

    def synthesis(self, c: np.ndarray) -> np.ndarray:
        """Grid values of Σ c_lm Y_l^m (a new array)."""
        nphi = self.grid_shape[1]
        return ducc0.fft.c2r(self._spectrum(c, 0), axes=(2,), lastsize=nphi, forward=False)[0]

    def gradient(self, p: np.ndarray):
        """(∂_θ u, ∂_φ u / sin θ) on the grid for u = Σ p Y (work buffers)."""
        nphi = self.grid_shape[1]
        ducc0.fft.c2r(self._spectrum(p, 1), axes=(2,), lastsize=nphi, forward=False,
                      out=self._gradient)
        return self._gradient[0], self._gradient[1]


@functools.lru_cache(maxsize=16)
def _neighbourhoods(shape: tuple[int, int]) -> np.ndarray:
    index = np.arange(shape[0] * shape[1]).reshape(shape)
    rows, cols = np.indices(shape)
    offsets = [(0, 0)] + [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
    hood = []
    for i, j in offsets:
        across = (rows + i < 0) | (rows + i >= shape[0])  # over a pole: same ring, longitude + π
        hood.append(index[np.clip(rows + i, 0, shape[0] - 1), (cols + j + across * (shape[1] // 2)) % shape[1]].ravel())
    return np.stack(hood, axis=1)


def real_degrees(lmax: int) -> np.ndarray:
    """The degree of each entry of the real layout a[l² + l + m], l ≤ lmax."""
    return np.repeat(np.arange(lmax + 1), 2 * np.arange(lmax + 1) + 1)


def real_harmonics(x: np.ndarray, lmax: int) -> np.ndarray:
    """The σ-orthonormal real harmonics Y_lm(x), l ≤ lmax, at points x (n, 3) of S², in the
    real layout [l² + l + m] (Y_11 = √3 x, Y_1,-1 = √3 y, Y_10 = √3 z):

        Y_l0 = q_l0(z),  Y_l,±m = √2 q_lm(z) · (Re, Im) (x + iy)^m,   q_lm = Q_lm / sin^m θ,

    Q_lm = √((2l+1)(l−m)!/(l+m)!) P_l^m (no Condon–Shortley phase), so that the powers
    (x + iy)^m carry the factor sin^m θ e^{imφ} (no division at the poles). Recurrences:
    q_mm = q_{m−1,m−1} √((2m+1)/(2m)), q_00 = 1; q_{m+1,m} = √(2m+3) z q_mm;
    q_lm = a_lm z q_{l−1,m} − b_lm q_{l−2,m}, a_lm = √((4l²−1)/(l²−m²)),
    b_lm = √((2l+1)(l+m−1)(l−m−1)/((l−m)(l+m)(2l−3))).
    """
    x = np.asarray(x, dtype=float)
    z, w = x[:, 2], x[:, 0] + 1j * x[:, 1]
    Y = np.empty((len(x), (lmax + 1) ** 2))
    power = np.ones(len(x), complex)  # (x + iy)^m
    q_mm = 1.0
    for m in range(lmax + 1):
        if m > 0:
            power = power * w
            q_mm *= np.sqrt((2 * m + 1) / (2 * m))
        parts = (1.0, 0.0) if m == 0 else (np.sqrt(2.0) * power.real, np.sqrt(2.0) * power.imag)
        previous, current = np.zeros_like(z), np.full_like(z, q_mm)
        for l in range(m, lmax + 1):
            if l == m + 1:
                previous, current = current, np.sqrt(2 * m + 3) * z * current
            elif l > m + 1:
                a = np.sqrt((4 * l * l - 1) / (l * l - m * m))
                b = np.sqrt((2 * l + 1) * (l + m - 1) * (l - m - 1) / ((l - m) * (l + m) * (2 * l - 3)))
                previous, current = current, a * z * current - b * previous
            Y[:, l * l + l + m] = current * parts[0]
            if m > 0:
                Y[:, l * l + l - m] = current * parts[1]
    return Y
