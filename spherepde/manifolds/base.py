"""The interface every discretized manifold implements, and what they share.

A manifold M is S^{d-1} ⊂ R^d (or a reduction of it, such as zonal densities) discretized by a
spectral basis and a quadrature grid. A density is held by its spectral coefficients ``c`` (an
array of the manifold's own layout; ``degrees[k]`` is the degree of entry k) and evaluated on the
grid (shape ``grid_shape``). Tangent fields on the grid are tuples of components in the
manifold's unit tangent frame (``tangent_frame``). What the equation, the diagnostics, the
initial densities, the plots and the tokens need of a manifold is exactly this class; the
spherepde code above it never asks which manifold it has.

Adding a manifold: subclass :class:`Manifold` in a new module of this package, implement the
abstract members, and register the class in :data:`spherepde.manifolds.MANIFOLDS`
(docs/adding-a-manifold.md). The contract suite (tests/test_manifolds.py) then runs on it.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Protocol

import numpy as np

from ..errors import InputError

Tangent = tuple  # components (v_1, ..., v_k) of a tangent field, each of shape grid_shape

#: Accuracy asked of the non-uniform transforms (ducc0: at least 2e-13 in double precision).
POINT_EPSILON = 1e-13


class PointSet(Protocol):
    """Harmonic sums at given points x_1..x_n of the manifold (unit vectors in R^d), in the manifold's
    spectral layout (:meth:`Manifold.locate`)."""

    def coefficients(self, w: np.ndarray) -> np.ndarray:
        """The coefficients of the weighted point measure Σ_j w_j δ_{x_j} (its density w.r.t. σ, band-limited
        to lmax): the real coefficients are a_lm = Σ_j w_j Y_lm(x_j)."""

    def synthesis(self, c: np.ndarray) -> np.ndarray:
        """Σ c Y at the points, shape (n,)."""

    def gradient(self, c: np.ndarray) -> np.ndarray:
        """∇(Σ c Y) at the points, as Cartesian tangent vectors (n, d)."""


class Manifold(ABC):
    """A spectral discretization of (a reduction of) S^{d-1} with truncation degree ``lmax``."""

    #: name in configurations (``[domain] kind``), run files (root attribute ``manifold``) and the registry
    kind: ClassVar[str]
    #: initial kinds besides the generic ones (perturbed_uniform, from_file) that :meth:`initial_profile` draws
    profiles: ClassVar[tuple[str, ...]] = ()
    #: whether the initial kind "particles" (a kernel estimate of points in R^d) is a density of this manifold
    takes_points: ClassVar[bool] = True
    #: label of the grid coordinate ``grid["theta"]`` in figures
    coordinate_label: ClassVar[str] = "θ (rad)"
    #: the largest lmax accepted
    max_lmax: ClassVar[int]

    d: int
    lmax: int
    grid_shape: tuple[int, ...]
    weights: np.ndarray  # quadrature weights on the grid, summing to 1
    degrees: np.ndarray  # degree of each spectral coefficient

    # --------------------------------------------------------------- construction
    @classmethod
    def dimension(cls, domain: Any) -> int:
        """The ambient dimension d of the manifold a ``[domain]`` section describes."""
        return cls.d

    @classmethod
    def check_lmax(cls, lmax) -> int:
        """lmax as an int if 2 ≤ lmax ≤ max_lmax, else InputError naming ``domain.lmax``."""
        if isinstance(lmax, bool) or not isinstance(lmax, (int, np.integer)) or not 2 <= lmax <= cls.max_lmax:
            raise InputError(f"domain.lmax = {lmax!r} is not allowed on the {cls.kind}: use an integer from 2 to {cls.max_lmax}",
                             "domain.lmax")
        return int(lmax)

    @classmethod
    @abstractmethod
    def from_domain(cls, domain: Any, threads: int = 1) -> "Manifold":
        """The manifold of a checked ``[domain]`` section (and the SHTns thread count where it matters)."""

    def exact_to(self, degree: int) -> "Manifold":
        """This manifold on the smallest grid whose quadrature integrates every polynomial of degree ≤ ``degree``
        exactly, where that is cheaper than its own grid (the 3/2 rule: degree 3·lmax); itself otherwise (the
        default: a manifold with one grid per lmax). An equation whose products have a known degree (USA with
        a band-limited kernel: 2·lmax + L, docs/mathematics.md) runs on it."""
        return self

    def on_grid(self, grid: Mapping[str, np.ndarray]) -> "Manifold":
        """This manifold on the grid of a run file (``/grid``: coordinate name → values, as :attr:`grid`
        writes them), so that its saved densities can be analysed; InputError if no such grid exists here."""
        own = {name: len(values) for name, values in self.grid.items()}
        given = {name: len(values) for name, values in grid.items() if name in own}
        if given != own:
            raise InputError(f"a {self.kind} at lmax = {self.lmax} has the grid {own}, not {given}")
        return self

    # --------------------------------------------------------------- grid
    @property
    @abstractmethod
    def size(self) -> int:
        """Number of spectral coefficients."""

    @property
    @abstractmethod
    def grid(self) -> dict[str, np.ndarray]:
        """Grid coordinates as written to run files (``/grid/<name>``)."""

    @abstractmethod
    def points(self) -> np.ndarray:
        """Unit vectors in R^d of the grid points, shape grid_shape + (d,)."""

    # --------------------------------------------------------------- transforms
    @abstractmethod
    def analysis(self, f: np.ndarray) -> np.ndarray:
        """Coefficients of the degree ≤ lmax projection of the grid function f (exact for band-limited f)."""

    @abstractmethod
    def synthesis(self, c: np.ndarray) -> np.ndarray:
        """Grid values of the field with coefficients c."""

    @abstractmethod
    def scalar_and_gradient(self, c: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, Tangent]:
        """Grid values of f = Σ c Y and the tangent components of ∇u for u = Σ p Y (work buffers,
        overwritten by the next call)."""

    def gradient(self, p: np.ndarray) -> Tangent:
        """The tangent components of ∇u for u = Σ p Y on the grid (work buffers)."""
        return self.scalar_and_gradient(np.zeros_like(p), p)[1]

    def truncated(self, degree: int) -> "Manifold | None":
        """The same manifold at the lower truncation ``degree`` on this very grid (same points), when its
        transforms are cheaper than this one's (fields with no degree above it, such as a band-limited
        kernel's K∗ρ, are then transformed at their own degree); None otherwise (the default)."""
        return None

    def coefficient_indices(self, other: "Manifold") -> np.ndarray:
        """Where the coefficients of ``other`` (a :meth:`truncated` one) sit in this manifold's layout."""
        raise NotImplementedError(f"the {self.kind} has no truncated transforms")

    @abstractmethod
    def divergence(self, v: Tangent) -> np.ndarray:
        """Coefficients of div v for the tangent field v on the grid (weak form: exact mass conservation)."""

    def squared_speed(self, v: Tangent) -> np.ndarray:
        """|v|² = Σ_a v_a² on the grid (the components are in a unit frame)."""
        return sum(component * component for component in v)

    # --------------------------------------------------------------- quadratic functionals
    @abstractmethod
    def degree_energy(self, c: np.ndarray) -> np.ndarray:
        """E_l = Σ_m a_lm², l = 0..lmax, in σ-orthonormal real harmonics."""

    @abstractmethod
    def inner(self, a: np.ndarray, b: np.ndarray) -> float:
        """∫ f g dσ for f = Σ a Y, g = Σ b Y."""

    @abstractmethod
    def mean(self, c: np.ndarray) -> float:
        """∫ f dσ."""

    # --------------------------------------------------------------- real harmonics
    @property
    @abstractmethod
    def real_size(self) -> int:
        """Number of real coefficients a_lm."""

    @abstractmethod
    def real_coefficients(self, c: np.ndarray) -> np.ndarray:
        """The σ-normalized real coefficients a_lm = ∫ f Y_lm dσ, in the real layout (ordered by degree,
        so that the layout of a smaller lmax is a prefix)."""

    @abstractmethod
    def from_real_coefficients(self, a: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`real_coefficients`."""

    @abstractmethod
    def real_index(self, l: int, m: int) -> int:
        """Position of a_lm in the real layout; InputError naming the mode when there is no such harmonic."""

    @property
    @abstractmethod
    def real_degrees(self) -> np.ndarray:
        """The degree of each real coefficient, in the real layout."""

    @abstractmethod
    def multiplicity(self, l: int) -> int:
        """How many real harmonics of degree l the manifold holds (S²: 2l + 1, S¹: 2, zonal: 1; 1 at l = 0)."""

    @abstractmethod
    def harmonics(self, x: np.ndarray) -> np.ndarray:
        """The real harmonics at points x (n, d) of S^{d-1}, degrees ≤ lmax: shape (n, real_size)."""

    # --------------------------------------------------------------- geometry used above
    @functools.cached_property
    def tangent_frame(self) -> np.ndarray:
        """Cartesian components of the unit tangent vectors e_a in which the manifold gives tangent
        fields, shape ``(k, *grid_shape, d)``.

        Read off the gradients of the coordinate functions, ∇x_i = P_x e_i, so that
        (∇x_i)_a = ⟨e_a, e_i⟩: exact for the degree-1 fields x_i, and consistent with the
        manifold's own convention for tangent fields by construction.
        """
        x = self.points()
        zero = np.zeros(self.size, self.analysis(x[..., 0]).dtype)
        gradients = [tuple(g.copy() for g in self.scalar_and_gradient(zero, self.analysis(x[..., i]))[1])  # work buffers
                     for i in range(self.d)]
        frame = np.empty((len(gradients[0]), *self.grid_shape, self.d))
        for i, gradient in enumerate(gradients):
            for a, component in enumerate(gradient):
                frame[a, ..., i] = component
        return frame

    @functools.cached_property
    def significant(self) -> np.ndarray:
        """The grid points whose quadrature weight is at least 1e-14 of the largest (boolean, grid shape).

        Pointwise checks and extrema of a density look only there: on the zonal grid in high d the
        outermost nodes carry weights down to 1e-70, where a band-limited field's values are round-off
        amplified by the huge zonal harmonics, and that round-off has no weight in any integral.
        (All points of S² and S¹ are significant.)"""
        return self.weights >= 1e-14 * np.max(self.weights)

    @functools.cached_property
    def significant_points(self):
        """An index of the :attr:`significant` points: the mask, or ``...`` when every point is significant
        (then ``f[M.significant_points]`` is a view, not a copy, which counts at lmax ≥ 255)."""
        mask = self.significant
        return ... if mask.all() else mask

    def tangent(self, w: np.ndarray) -> Tangent:
        """Tangent components ⟨e_a, w⟩ of the Cartesian grid field w (shape grid_shape + (d,)): P_x w."""
        return tuple(np.einsum("...i,...i->...", e, w) for e in self.tangent_frame)

    @abstractmethod
    def neighbourhoods(self) -> np.ndarray:
        """Flat grid indices of each grid point's neighbourhood, the point itself first: (N, k).
        Used to follow steepest ascent for cluster detection."""

    def initial_profile(self, ini: Any) -> np.ndarray:
        """Grid values of the closed-form initial density ``ini`` (one of :attr:`profiles`)."""
        raise InputError(f"initial.kind = {ini.kind!r} is not allowed on the {self.kind}")

    # --------------------------------------------------------------- harmonic sums at points
    @abstractmethod
    def locate(self, x: np.ndarray) -> PointSet:
        """Harmonic sums of degree ≤ lmax at the points x (n, d) (:class:`PointSet`): the velocity of weighted
        points by Funk–Hecke multipliers, and a point measure's coefficients."""

    @abstractmethod
    def quadrature(self, degree: int) -> tuple[np.ndarray, np.ndarray]:
        """Points (n, d) and weights (n,), summing to 1, of a quadrature rule on the manifold exact for
        band-limited functions of degree ≤ ``degree`` (the fewest points of the manifold's own kind of grid)."""

    # --------------------------------------------------------------- points from a density
    def sample(self, values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """n iid points (n, d) from ρ dσ, ρ given by its grid values."""
        raise InputError(f"sampling tokens from a density is not available on the {self.kind}")

    def quantile_points(self, values: np.ndarray, n: int) -> np.ndarray:
        """n deterministic points (n, d) at quantiles of ρ dσ, ρ given by its grid values."""
        raise InputError(f"quantile placement of tokens is not available on the {self.kind}: use init = 'density'")

