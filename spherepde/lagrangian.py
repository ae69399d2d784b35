"""Weighted points that follow the flow: the continuity equation along its characteristics.

The solution of ∂ₜρ + div(ρX[ρ]) = 0 is the push-forward of the initial measure along the flow of
X[μ_t]; for μ = Σ_j w_j δ_{x_j} (weights constant in time) that is the ODE system ẋ_i = X[μ](x_i)
(docs/mathematics.md, "Weighted points"). It holds clusters of any width, Dirac masses included, and
continues a run past the resolution of any spectral grid (docs/numerics.md, "Past the resolution").

- :func:`from_density`: the points of a quadrature rule exact to degree lmax + L + 1 (L the kernel's band),
  weighted by w_j ρ(x_j), so that their velocity equals X[ρ] at the switch; the weights of nodes where ρ ≤ 0
  (round-off "dust") are set to 0 and the rest rescaled to total mass 1 (the clipped mass is recorded).
- :func:`point_velocity`: X[μ] by harmonic sums (B = bI), by the direct O(n²) sum (any other B), or the
  zero-temperature field.
- :func:`merge`: points closer than a distance δ merge (weights add, the position is the normalized
  weighted mean), which moves μ by at most √(Σ_j w_j d(x_j, m)²) in W₂ (accumulated in ``merged_w2``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from .kernels import (DirectSum, DirectVelocity, PairwiseVelocity, SpectralVelocity, ZeroTemperaturePointVelocity,
                      direct_backend, kernel_degree, spectral_degree)
from .linkage import any_link, linked_components
from .manifolds import Manifold, with_degree
from .model import AttentionModel


@dataclass(frozen=True)
class Points:
    """The weighted point measure Σ_i w_i δ_{x_i} of a run, with the bookkeeping of its file rows.

    ``x`` (n, d) and ``w`` (n,) are the active points; ``owner[k]`` is the active point that the file's
    row k (one per quadrature node at the switch) has become, -1 for a node dropped at the switch;
    ``merged_w2`` bounds the W₂ distance all merges have moved the measure; ``clipped`` is the mass
    of the nodes with ρ ≤ 0 at the switch."""

    x: np.ndarray
    w: np.ndarray
    owner: np.ndarray
    merged_w2: float = 0.0
    clipped: float = 0.0

    def rows(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and weights of the file's rows: a merged row sits at the point it merged into with weight
        0 (its weight is the representative's), a dropped row at its node with weight 0."""
        kept = self.owner >= 0
        positions = nodes.copy()
        positions[kept] = self.x[self.owner[kept]]
        weights = np.zeros(len(self.owner))
        first = np.full(len(self.w), -1)
        rows = np.flatnonzero(kept)
        first[self.owner[rows[::-1]]] = rows[::-1]  # the first row of each point represents it
        weights[first] = self.w
        return positions, weights

    @classmethod
    def from_rows(cls, positions: np.ndarray, weights: np.ndarray, owner: np.ndarray, merged_w2: float,
                  clipped: float) -> "Points":
        """Inverse of :meth:`rows` (a checkpoint): the active points in the order of their representatives."""
        owner = owner.astype(int)
        count = int(owner.max()) + 1 if np.any(owner >= 0) else 0
        first = np.full(count, -1)
        rows = np.flatnonzero(owner >= 0)
        first[owner[rows[::-1]]] = rows[::-1]
        return cls(positions[first].copy(), weights[first].copy(), owner, merged_w2, clipped)


def switch_degree(manifold: Manifold, model: AttentionModel, oversampling: float = 1.0) -> int:
    """The degree of the switch's quadrature: ``oversampling`` × (lmax + L + 1). The rule must be exact to
    lmax + L + 1 (ρ(y) e^{β⟨x,By⟩} y has that degree in y up to the kernel's negligible tail), so that the
    points' velocity is X[ρ] at the switch; later the points carry the push-forward of ρ, whose moments
    the rule integrates only approximately, and more nodes keep that error small (docs/numerics.md)."""
    return math.ceil(oversampling * (manifold.lmax + kernel_degree(model) + 1))


def point_velocity(model: AttentionModel, manifold: Manifold, threads: int = 1):
    """The velocity (x, w) ↦ X[Σ w_j δ_{x_j}](x) of weighted points on ``manifold``: zero temperature, harmonic
    sums at the kernel's band (B = bI; the direct sum at the points whose kernel sum they cannot resolve, except
    for zonal rings, which have no direct sum), or the direct sum (any other B)."""
    if model.zero_temperature:
        return ZeroTemperaturePointVelocity(model)
    if model.kernel_beta is not None:
        direct = None if manifold.kind == "zonal" else DirectSum(model, direct_backend("auto"))
        return SpectralVelocity(model, with_degree(manifold, spectral_degree(model), threads), direct)
    return DirectVelocity(model, direct_backend("auto"))


#: Up to this many points their velocity is the direct sum (:func:`few_point_velocity`).
FEW_POINTS = 1024


def few_point_velocity(model: AttentionModel, manifold: Manifold) -> PairwiseVelocity | None:
    """The pairwise sum of projected terms for few points, where no summed velocity is exact enough: harmonic
    sums and the direct sum both carry an error of about 1e-16 of the largest term, which swamps the attraction
    e^{β(cos Δ - 1)} between clusters a gap Δ apart once β(1 - cos Δ) > 35, so the drift of metastable clusters
    would be round-off (:class:`spherepde.kernels.PairwiseVelocity`). It is cheap once the points have merged
    into clusters. None at zero temperature and for zonal rings."""
    if model.zero_temperature or manifold.kind == "zonal":
        return None
    return PairwiseVelocity(model)


#: Above this many points their nearest pair is not searched: they are taken to be crowded.
CROWD_SEARCH = 4096


def contraction_rate(model: AttentionModel) -> float:
    """The rate c at which two nearby points of the measure approach each other (the linearized rate at a cluster,
    docs/mathematics.md): ‖V‖₂ for SA, ‖V‖₂ e^{|β|‖B‖₂ - s} for USA (s the clock shift)."""
    scale = float(np.linalg.norm(model.V, 2))
    return scale if model.normalized or model.zero_temperature else scale * float(np.exp(model.concentration - model.clock_shift))


def crowded(points: Points, model: AttentionModel) -> bool:
    """Whether two points are within 3/√|β|‖B‖₂ of each other (the core of the kernel, where they contract at the
    rate c of :func:`contraction_rate`; always at β = 0): then an explicit step must stay below 2/c, or the pair sits
    at the edge of the scheme's stability region instead of approaching until it merges."""
    if model.zero_temperature or len(points.w) < 2:
        return False
    if len(points.w) > CROWD_SEARCH or model.concentration == 0:
        return True
    distance, _ = cKDTree(points.x).query(points.x, k=2)
    return bool(np.min(distance[:, 1]) < 3.0 / np.sqrt(model.concentration))


def from_density(manifold: Manifold, c: np.ndarray, degree: int) -> tuple[Points, np.ndarray]:
    """The weighted points of the density with coefficients c (:mod:`module docstring <spherepde.lagrangian>`),
    and the quadrature nodes (the file's rows)."""
    nodes, q = manifold.quadrature(degree)
    mass = q * manifold.locate(nodes).synthesis(c)
    clipped = float(np.sum(np.maximum(-mass, 0.0)))
    keep = mass > 0
    w = mass[keep] / np.sum(mass[keep])
    owner = np.full(len(nodes), -1)
    owner[keep] = np.arange(keep.sum())
    return Points(nodes[keep].copy(), w, owner, 0.0, clipped), nodes


def merge(points: Points, distance: float) -> Points:
    """The points with those closer than ``distance`` (radians) merged, by single linkage (exact, O(n) memory:
    :func:`spherepde.linkage.linked_components`); unchanged (the same object) when no two are that close."""
    chord = 2.0 * np.sin(0.5 * distance)
    if not any_link(points.x, chord):  # the common case: merging is rare once clusters are points
        return points
    count, label = linked_components(points.x, chord)
    w = np.bincount(label, points.w, minlength=count)
    centre = np.stack([np.bincount(label, points.w * xi, minlength=count) for xi in points.x.T], axis=1)
    centre = centre / np.linalg.norm(centre, axis=1, keepdims=True)
    moved = 2.0 * np.arcsin(np.minimum(1.0, 0.5 * np.linalg.norm(points.x - centre[label], axis=1)))  # geodesic, accurate when tiny
    cost = float(np.sqrt(np.sum(points.w * moved**2)))
    owner = np.where(points.owner >= 0, label[np.maximum(points.owner, 0)], -1)
    return replace(points, x=centre, w=w, owner=owner, merged_w2=points.merged_w2 + cost)

