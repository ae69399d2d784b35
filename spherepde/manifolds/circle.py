"""S¹ discretized by Fourier series on an equispaced, dealiased grid (FFTW through pyfftw).

A field f of band K = ``lmax`` is stored by its complex coefficients (rFFT layout)

    c_k = ∫ f e^{-ikθ} dσ,  k = 0..K,     f(θ) = c_0 + 2 Re Σ_{k=1}^{K} c_k e^{ikθ},

σ = dθ/2π. The real harmonics orthonormal in L²(σ) are Y_0 = 1, Y_k,0 = √2 cos kθ,
Y_k,1 = √2 sin kθ, so f = Σ a Y with

    a_0 = c_0,   a_k,0 = √2 Re c_k,   a_k,1 = -√2 Im c_k,

stored as [a_0, a_1,0, a_1,1, a_2,0, …] (the layout of a smaller K is a prefix).
The grid θ_j = 2πj/n has n ≥ 3K+1 points, the smallest 2^a 3^b 5^c: a product of two
fields of band K has band 2K ≤ n-K-1, so its analysis is alias-free up to K, and the
rule Σ_j f(θ_j)/n integrates it exactly (it is exact up to band n-1).

Transforms are FFTW plans made once, on aligned work arrays, and executed without
per-call checks. FFTW_MEASURE rather than FFTW_ESTIMATE: planning takes about 0.1 s at
n = 256 and a few seconds at n = 65 536, once per size and process (FFTW keeps its
wisdom), and buys transforms up to twice as fast (docs/circle.md) for a right-hand side
evaluated 10⁴–10⁶ times per run. Without pyfftw, numpy.fft does the same work.
"""
from __future__ import annotations

import numpy as np

import ducc0

from ..errors import InputError
from ..profiles import von_mises_fisher, wrapped_cauchy
from . import sampling
from .base import POINT_EPSILON, Manifold

try:
    import pyfftw
except ImportError:  # numpy.fft instead (RealFFT)
    pyfftw = None

SQRT2 = np.sqrt(2.0)
MAX_WAVENUMBER = 2**20


def fft_size(minimum: int) -> int:
    """The smallest n = 2^a 3^b 5^c with n ≥ minimum."""
    n = max(1, minimum)
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


class RealFFT:
    """Unnormalized real FFTs along the last axis of the work arrays ``grid`` ``(*rows, n)``
    and ``spectrum`` ``(*rows, n//2+1)``::

        forward():  spectrum_k = Σ_j grid_j e^{-2πijk/n},
        backward(): grid_j = Σ_k spectrum_k e^{2πijk/n}, summed over all k mod n with
                    spectrum_{n-k} = conj(spectrum_k) (the imaginary part of spectrum_0 is ignored).

    ``backward`` may overwrite ``spectrum`` (FFTW's c2r destroys its input). With
    ``forward=False`` only the backward transform is planned.
    """

    def __init__(self, n: int, rows: tuple[int, ...] = (), forward: bool = True):
        self.n = n
        shape, half = (*rows, n), (*rows, n // 2 + 1)
        if pyfftw is None:
            self.grid, self.spectrum = np.zeros(shape), np.zeros(half, complex)
            self.forward, self.backward = self._numpy_forward, self._numpy_backward
            return
        self.grid = pyfftw.empty_aligned(shape, dtype="float64")
        self.spectrum = pyfftw.empty_aligned(half, dtype="complex128")
        plan = dict(axes=(-1,), flags=("FFTW_MEASURE",))
        if forward:
            self.forward = pyfftw.FFTW(self.grid, self.spectrum, direction="FFTW_FORWARD", **plan).execute
        self.backward = pyfftw.FFTW(self.spectrum, self.grid, direction="FFTW_BACKWARD", **plan).execute

    def _numpy_forward(self):
        self.spectrum[...] = np.fft.rfft(self.grid, axis=-1)

    def _numpy_backward(self):
        self.grid[...] = np.fft.irfft(self.spectrum, self.n, axis=-1, norm="forward")


class Circle(Manifold):
    """Spectral discretization of S¹ ⊂ R² with maximal wavenumber ``lmax``."""

    kind = "circle"
    profiles = ("von_mises", "wrapped_cauchy")
    max_lmax = MAX_WAVENUMBER
    d = 2

    def __init__(self, lmax: int):
        self.lmax = K = self.check_lmax(lmax)
        self.n = n = fft_size(3 * K + 1)
        self.grid_shape = (n,)
        self.theta = 2.0 * np.pi * np.arange(n) / n
        self.weights = np.full(n, 1.0 / n)
        self.degrees = np.arange(K + 1)
        # |a|² per coefficient: Σ_m a_km² = |c_0|² (k = 0), 2|c_k|² (k ≥ 1)
        self._energy_weight = np.where(self.degrees == 0, 1.0, 2.0)
        self._ik = 1j * self.degrees
        self._ik_over_n = self._ik / n
        band = K + 1
        self._fft = RealFFT(n)  # analysis, synthesis, divergence
        self._pair = RealFFT(n, (2,), forward=False)  # f and ∂_θ u in one backward transform
        # views into the work arrays, made once: slicing costs as much as the copies at small n
        self._band, self._tail = self._fft.spectrum[:band], self._fft.spectrum[band:]
        self._pair_band, self._pair_tail = self._pair.spectrum[:, :band], self._pair.spectrum[:, band:]

    @classmethod
    def from_domain(cls, domain, threads: int = 1) -> "Circle":
        return cls(domain.lmax)

    @property
    def size(self) -> int:
        """Number of (complex) spectral coefficients, K+1."""
        return self.lmax + 1

    @property
    def grid(self) -> dict[str, np.ndarray]:
        """Grid coordinates as written to run files: the angle θ."""
        return {"theta": self.theta}

    def points(self) -> np.ndarray:
        """Cartesian coordinates (cos θ, sin θ) of the grid points, shape (n, 2)."""
        return np.column_stack([np.cos(self.theta), np.sin(self.theta)])

    # transforms -------------------------------------------------------------
    def analysis(self, f: np.ndarray) -> np.ndarray:
        """c_k = (1/n) Σ_j f(θ_j) e^{-ikθ_j}, k = 0..K: the band-K projection of the grid function f."""
        self._fft.grid[...] = f
        self._fft.forward()
        return self._band * (1.0 / self.n)

    def synthesis(self, c: np.ndarray) -> np.ndarray:
        """Grid values of c_0 + 2 Re Σ c_k e^{ikθ} (a new array)."""
        self._band[...] = c
        self._tail[...] = 0.0
        self._fft.backward()
        return self._fft.grid.copy()

    def scalar_and_gradient(self, c: np.ndarray, p: np.ndarray):
        """Grid values of f = Σ c and of (∂_θ u,) for u = Σ p (coefficients ik p_k), in one transform.

        The returned arrays are work buffers, overwritten by the next call.
        """
        band = self._pair_band
        band[0] = c
        np.multiply(p, self._ik, out=band[1])
        self._pair_tail[...] = 0.0
        self._pair.backward()
        grid = self._pair.grid
        return grid[0], (grid[1],)

    def divergence(self, v) -> np.ndarray:
        """Coefficients ik v_k, k = 0..K, of ∂_θ v for a tangent field v = (v_θ,) on the grid."""
        self._fft.grid[...] = v[0]
        self._fft.forward()
        return self._band * self._ik_over_n

    # quadratic functionals (σ-normalized real coefficients) -------------------
    def degree_energy(self, c: np.ndarray) -> np.ndarray:
        """Σ_m a_km² for k = 0..K: |c_0|², 2|c_k|²."""
        return self._energy_weight * (c.real**2 + c.imag**2)

    def inner(self, a: np.ndarray, b: np.ndarray) -> float:
        """∫ f g dσ for f = Σ a, g = Σ b (coefficients)."""
        return float(np.sum(self._energy_weight * (a * np.conj(b)).real))

    def mean(self, c: np.ndarray) -> float:
        """∫ f dσ = c_0."""
        return float(c[0].real)

    # real harmonics: [a_0, a_1,0, a_1,1, a_2,0, …] ------------------------------
    @property
    def real_size(self) -> int:
        """Number of real coefficients, 2K+1."""
        return 2 * self.lmax + 1

    def real_coefficients(self, c: np.ndarray) -> np.ndarray:
        """The σ-normalized real coefficients a = ∫ f Y dσ, ordered [a_0, a_1,0, a_1,1, …]."""
        a = np.empty(self.real_size)
        a[0] = c[0].real
        a[1::2] = SQRT2 * c[1:].real
        a[2::2] = -SQRT2 * c[1:].imag
        return a

    def from_real_coefficients(self, a: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`real_coefficients`."""
        c = np.empty(self.size, complex)
        c[0] = a[0]
        c[1:] = (a[1::2] - 1j * a[2::2]) / SQRT2
        return c

    def real_index(self, k: int, m: int) -> int:
        """Position of a_km in the real layout: m = 0 the cos kθ harmonic, m = 1 the sin kθ one."""
        integers = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in (k, m))
        if not integers or not ((k, m) == (0, 0) or (1 <= k <= self.lmax and m in (0, 1))):
            raise InputError(
                f"mode [{k}, {m}] is not allowed on the circle: use [0, 0] or [k, m] with integers "
                f"1 <= k <= lmax = {self.lmax} and m = 0 (cos k theta) or m = 1 (sin k theta)"
            )
        return 0 if k == 0 else int(2 * k - 1 + m)

    @property
    def real_degrees(self) -> np.ndarray:
        """The wavenumber k of each real coefficient, in the real layout."""
        return real_degrees(self.lmax)

    def multiplicity(self, l: int) -> int:
        return 2 if l else 1

    def harmonics(self, x: np.ndarray) -> np.ndarray:
        """Y(x) at points x (n, 2) of S¹, wavenumbers ≤ lmax, in the real layout: shape (n, 2 lmax + 1)."""
        return real_harmonics(x, self.lmax)

    def neighbourhoods(self) -> np.ndarray:
        """Each grid point and its two periodic neighbours."""
        index = np.arange(self.n)
        return np.stack([index, np.roll(index, 1), np.roll(index, -1)], axis=1)

    def initial_profile(self, ini) -> np.ndarray:
        """von_mises: e^{κ cos(θ-ψ)}/I_0(κ); wrapped_cauchy: (1 - R0²)/(1 - 2R0 cos(θ-ψ) + R0²)."""
        if ini.kind == "wrapped_cauchy":
            return wrapped_cauchy(self.theta, ini.R0, ini.psi)
        return von_mises_fisher(self.points(), np.array([np.cos(ini.psi), np.sin(ini.psi)]), ini.kappa)

    def locate(self, x: np.ndarray) -> "_CirclePoints":
        return _CirclePoints(self.lmax, x)

    def quadrature(self, degree: int) -> tuple[np.ndarray, np.ndarray]:
        """degree+1 equispaced points (exact up to wavenumber degree)."""
        theta = 2.0 * np.pi * np.arange(degree + 1) / (degree + 1)
        return np.column_stack([np.cos(theta), np.sin(theta)]), np.full(degree + 1, 1.0 / (degree + 1))

    def sample(self, values, n, rng):
        return sampling.sample(values, (self.theta,), n, rng)

    def quantile_points(self, values, n):
        return sampling.quantile_points(values, (self.theta,), n)

    def rotate(self, c: np.ndarray, angle: float) -> np.ndarray:
        """Coefficients of f(θ - angle): c_k e^{-ik·angle}."""
        return c * np.exp(-1j * angle * self.degrees)


class _CirclePoints:
    """Fourier sums at arbitrary angles by ducc0's non-uniform FFTs (type 1 for the coefficients
    c_k = Σ_j w_j e^{-ikθ_j}, type 2 for the values), accurate to POINT_EPSILON; cost O(n + K log K)."""

    def __init__(self, K: int, x: np.ndarray):
        x = np.asarray(x, dtype=float)
        self.K = K
        self.theta = np.arctan2(x[:, 1], x[:, 0])[:, None]
        self.tangent = np.column_stack([-x[:, 1], x[:, 0]])
        self.k = np.arange(-K, K + 1)

    def _two_sided(self, c):
        return np.concatenate([np.conj(c[:0:-1]), c])  # c_{-k} = conj c_k: [c_{-K}, …, c_K]

    def _values(self, spectra):
        out = np.empty((len(spectra), len(self.theta)), complex)
        return ducc0.nufft.u2nu(grid=np.asarray(spectra, complex), coord=self.theta, forward=False,
                                epsilon=POINT_EPSILON, out=out).real

    def coefficients(self, w):
        out = np.empty(2 * self.K + 1, complex)
        full = ducc0.nufft.nu2u(points=np.asarray(w, complex), coord=self.theta, forward=True, epsilon=POINT_EPSILON, out=out)
        return full[self.K:].copy()

    def synthesis(self, c):
        return self._values([self._two_sided(c)])[0]

    def gradient(self, c):
        return self._values([1j * self.k * self._two_sided(c)])[0][:, None] * self.tangent


def real_degrees(lmax: int) -> np.ndarray:
    """The wavenumber of each entry of the real layout [a_0, a_1,0, a_1,1, a_2,0, …], k ≤ lmax."""
    return (np.arange(2 * lmax + 1) + 1) // 2


def real_harmonics(x: np.ndarray, lmax: int) -> np.ndarray:
    """[1, √2 cos θ, √2 sin θ, √2 cos 2θ, …] at points x = (cos θ, sin θ) (n, 2), k ≤ lmax."""
    x = np.asarray(x, dtype=float)
    theta = np.arctan2(x[:, 1], x[:, 0])
    k = np.arange(1, lmax + 1)
    Y = np.empty((len(x), 2 * lmax + 1))
    Y[:, 0] = 1.0
    Y[:, 1::2] = SQRT2 * np.cos(np.outer(theta, k))
    Y[:, 2::2] = SQRT2 * np.sin(np.outer(theta, k))
    return Y
