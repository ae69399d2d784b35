"""Zonal densities on S^{d-1} for any 3 ≤ d ≤ 4096: ρ(x) = f(s), s = ⟨x, e⟩, in Gegenbauer polynomials.

The flow of identity matrices (or B = bI, V = vI) commutes with the rotations about the axis e,
so zonal densities stay zonal and the PDE is one-dimensional for every d (docs/mathematics.md,
"Zonal densities"). With σ pushed to s, c_d (1 - s²)^{(d-3)/2} ds, the zonal harmonics
Y_l = C_l^{(d-2)/2}/‖·‖ (:func:`spherepde.harmonics.zonal_harmonics`) are orthonormal and
K∗Y_l = ĥ_l Y_l, so f = Σ_l a_l Y_l with real coefficients a_l (the spectral layout is the real one).

Grid: the n = ⌈3(lmax+1)/2⌉ Gauss–Gegenbauer nodes s_j (Gauss–Jacobi with α = β = (d-3)/2), by
Golub–Welsch (the eigenvalues of the recurrence's Jacobi matrix) polished by a Newton step, and the
Christoffel weights w_j = 1/Σ_{l<n} Y_l(s_j)², which sum to 1 and integrate polynomials of degree
≤ 2n - 1 exactly (so Σ w s² = 1/d). That covers ρ·X for USA, of degree 3·lmax.

Tangent fields are given by their component F along e_θ = ∂x/∂θ, θ = arccos s the polar angle
(for d = 3 the colatitude of the sphere with e the north pole). A zonal gradient is
∇u = ∂_θu e_θ with ∂_θ u = -√(1 - s²) u'(s), and the divergence in weak form,

    ∫ div(F e_θ) Y_l dσ = -∫ F ∂_θ Y_l dσ = Σ_j w_j F(s_j) √(1 - s_j²) Y_l'(s_j),

conserves mass exactly (Y_0' = 0).

Points in R^d: the grid point of polar angle θ is x = sin θ e_1 + cos θ e_d (e = e_d), one
representative of its ring.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import eigh_tridiagonal

from ..errors import InputError
from ..harmonics import check_dimension, zonal_harmonics, zonal_recurrence
from ..profiles import von_mises_fisher_of_cosine
from . import sampling
from .base import Manifold

# Points of the θ grid on which a zonal density is tabulated for sampling from it.
_SAMPLING_NODES = 8193


def gauss_gegenbauer(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes s_j (increasing) and weights w_j (summing to 1) of the n-point Gauss rule of the
    weight c_d (1 - s²)^{(d-3)/2} on [-1, 1]: exact for polynomials of degree ≤ 2n - 1."""
    b = zonal_recurrence(n, d)
    nodes = eigh_tridiagonal(np.zeros(n), b[1:n], eigvals_only=True)
    Y, dY = zonal_harmonics(nodes, n, d, derivative=True)
    nodes = nodes - Y[n] / dY[n]  # one Newton step on the orthonormal polynomial of degree n
    Y = zonal_harmonics(nodes, n - 1, d)
    weights = 1.0 / np.sum(Y * Y, axis=0)
    return nodes, weights / weights.sum()


class Zonal(Manifold):
    """Zonal densities on S^{d-1} (ambient dimension ``d``), degrees up to ``lmax``."""

    kind = "zonal"
    profiles = ("von_mises_fisher",)
    takes_points = False
    coordinate_label = "polar angle θ = arccos⟨x, e⟩ (rad)"
    max_lmax = 2047

    def __init__(self, lmax: int, d: int):
        self.lmax = L = self.check_lmax(lmax)
        self.d = check_dimension(d, "domain.dim")
        if self.d < 3:
            raise InputError(f"domain.dim = {d} is not allowed for zonal densities: use 3 <= dim <= 4096 "
                             "(d = 2 is the circle: kind = 'circle')", "domain.dim")
        n = math.ceil(3 * (L + 1) / 2)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            self.s, self.weights = gauss_gegenbauer(n, self.d)
            Y, dY = zonal_harmonics(self.s, L, self.d, derivative=True)
        if not (np.all(np.isfinite(Y)) and np.all(np.isfinite(dY)) and np.all(self.weights > 0)):
            raise InputError(f"domain.lmax = {L} is not allowed for zonal densities in d = {self.d}: the "
                             "quadrature underflows double precision; use a smaller lmax", "domain.lmax")
        self.theta = np.arccos(self.s)
        self.grid_shape = (n,)
        self.degrees = np.arange(L + 1)
        sine = np.sin(self.theta)
        self._Y = Y  # (L+1, n)
        self._analysis = Y * self.weights  # a_l = Σ_j w_j f_j Y_l(s_j)
        self._gradient = -sine * dY  # ∂_θ Y_l at the nodes
        self._divergence = -self._gradient * self.weights  # Σ_j w_j F_j sin θ_j Y_l'(s_j)
        self._f, self._g = np.empty(n), np.empty(n)

    @classmethod
    def dimension(cls, domain) -> int:
        return domain.dim

    @classmethod
    def from_domain(cls, domain, threads: int = 1) -> "Zonal":
        return cls(domain.lmax, domain.dim)

    @property
    def size(self) -> int:
        return self.lmax + 1

    @property
    def grid(self) -> dict[str, np.ndarray]:
        """The polar angles θ_j = arccos s_j of the nodes."""
        return {"theta": self.theta}

    def points(self) -> np.ndarray:
        """sin θ_j e_1 + cos θ_j e_d, shape (n, d)."""
        x = np.zeros((*self.grid_shape, self.d))
        x[:, 0], x[:, -1] = np.sin(self.theta), self.s
        return x

    # transforms -------------------------------------------------------------
    def analysis(self, f: np.ndarray) -> np.ndarray:
        return self._analysis @ f

    def synthesis(self, c: np.ndarray) -> np.ndarray:
        return c @ self._Y

    def scalar_and_gradient(self, c: np.ndarray, p: np.ndarray):
        """f = Σ c_l Y_l and ∂_θ u for u = Σ p_l Y_l at the nodes (work buffers)."""
        np.matmul(c, self._Y, out=self._f)
        np.matmul(p, self._gradient, out=self._g)
        return self._f, (self._g,)

    def divergence(self, v) -> np.ndarray:
        return self._divergence @ v[0]

    @property
    def tangent_frame(self) -> np.ndarray:
        """e_θ = cos θ e_1 - sin θ e_d at the nodes, shape (1, n, d)."""
        frame = np.zeros((1, *self.grid_shape, self.d))
        frame[0, :, 0], frame[0, :, -1] = self.s, -np.sin(self.theta)
        return frame

    # quadratic functionals ----------------------------------------------------
    def degree_energy(self, c: np.ndarray) -> np.ndarray:
        return c * c

    def inner(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.dot(a, b))

    def mean(self, c: np.ndarray) -> float:
        return float(c[0])

    # real harmonics: the spectral layout itself ----------------------------------
    @property
    def real_size(self) -> int:
        return self.lmax + 1

    def real_coefficients(self, c: np.ndarray) -> np.ndarray:
        return np.array(c, dtype=float)

    def from_real_coefficients(self, a: np.ndarray) -> np.ndarray:
        return np.array(a, dtype=float)

    def real_index(self, l: int, m: int) -> int:
        integers = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in (l, m))
        if not integers or m != 0 or not 0 <= l <= self.lmax:
            raise InputError(f"mode [{l}, {m}] is not allowed for zonal densities: use [l, 0] with an integer "
                             f"0 <= l <= lmax = {self.lmax} (one zonal harmonic per degree)", "initial.modes")
        return int(l)

    @property
    def real_degrees(self) -> np.ndarray:
        return np.arange(self.lmax + 1)

    def multiplicity(self, l: int) -> int:
        return 1

    def harmonics(self, x: np.ndarray) -> np.ndarray:
        """Y_l(⟨x, e⟩) at points x (n, d), shape (n, lmax + 1)."""
        return zonal_harmonics(np.asarray(x, dtype=float)[:, -1], self.lmax, self.d).T

    def neighbourhoods(self) -> np.ndarray:
        """Each node and its neighbours in s (itself at the ends)."""
        index = np.arange(self.grid_shape[0])
        return np.stack([index, np.maximum(index - 1, 0), np.minimum(index + 1, index[-1])], axis=1)

    def initial_profile(self, ini) -> np.ndarray:
        """von_mises_fisher about the axis e: e^{κs}/ĥ_0(κ)."""
        return von_mises_fisher_of_cosine(self.s, ini.kappa, self.d)

    def distribution(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distribution function of s = ⟨x, e⟩ under ρ dσ, ρ given by its grid values: (s, F(s)) on a fine
        grid, F(s) = ∫_{-1}^{s} ρ(u) c_d (1 - u²)^{(d-3)/2} du, tabulated in θ from the coefficients of ρ (exact
        there, negative round-off clipped) and normalized to F(1) = 1."""
        theta = np.linspace(np.pi, 0.0, _SAMPLING_NODES)  # s increasing
        rho = np.maximum(self.real_coefficients(self.analysis(values)) @ zonal_harmonics(np.cos(theta), self.lmax, self.d), 0.0)
        with np.errstate(divide="ignore"):
            log_density = np.log(rho) + (self.d - 2) * np.log(np.sin(theta))
        density = np.exp(log_density - np.max(log_density))  # per unit θ
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
        return np.cos(theta), cumulative / cumulative[-1]

    def locate(self, x: np.ndarray) -> "_ZonalPoints":
        return _ZonalPoints(self, x)

    def quadrature(self, degree: int) -> tuple[np.ndarray, np.ndarray]:
        """The Gauss–Gegenbauer rule of ⌈(degree+1)/2⌉ nodes, as points sin θ e_1 + cos θ e_d (rings)."""
        s, w = gauss_gegenbauer((degree + 2) // 2, self.d)
        points = np.zeros((len(s), self.d))
        points[:, 0], points[:, -1] = np.sqrt(1.0 - s * s), s
        return points, w

    def sample(self, values, n, rng):
        """s by inversion of :meth:`distribution`, and the rest of x uniform on the sphere S^{d-2} orthogonal
        to e: iid points of the zonal density."""
        s, F = self.distribution(values)
        x = np.empty((n, self.d))
        x[:, -1] = np.interp(rng.random(n), F, s)
        x[:, :-1] = np.sqrt(1.0 - x[:, -1:] ** 2) * sampling.uniform_points(rng, n, self.d - 1)
        return x


class _ZonalPoints:
    """Zonal harmonic sums at points x (the rings through them): Y_l(s_j), s_j = ⟨x_j, e⟩, by the recurrence;
    the gradient of u(s) is u′(s) (e − s x). Cost O(n · lmax)."""

    def __init__(self, zonal: Zonal, x: np.ndarray):
        x = np.asarray(x, dtype=float)
        s = x[:, -1]
        self.Y, dY = zonal_harmonics(s, zonal.lmax, zonal.d, derivative=True)
        self.dY = dY
        self.direction = -s[:, None] * x
        self.direction[:, -1] += 1.0  # P_x e

    def coefficients(self, w):
        return self.Y @ w

    def synthesis(self, c):
        return c @ self.Y

    def gradient(self, c):
        return (c @ self.dY)[:, None] * self.direction
