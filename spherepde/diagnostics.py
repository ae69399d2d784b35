"""Diagnostics of a density: mass, energy, spectrum, resolution.

Definitions (σ-normalized real coefficients a_lm, E_l = Σ_m a_lm²):

- mass ∫ρ dσ (quadrature on the grid);
- energy E_β = (1/2β) Σ_l ĥ_l E_l (docs/mathematics.md, "Energy"); at β = 0 its mass-independent
  limit ½ Σ_{l≥1} (ĥ_l/β) E_l = E_1/(2d); ``energy_scaled`` = e^{-|β|} E_β is
  always finite (E_β overflows to inf for |β| > 709);
- energy_rate = ∫ (K∗ρ)^s |X|² ρ dσ (s = 1 for SA, 0 for USA), which equals
  dE_β/dt for the exact flow; inf where it overflows;
- energy, energy_scaled and energy_rate are NaN unless QᵀK = V = I (and β finite): for
  general matrices there is no monotone energy, so none is claimed;
- tail_energy = Σ_{l in the top 10% of degrees} E_l / Σ_l E_l, the resolution
  indicator: a run stops when it exceeds ``[numerics] max_tail_energy``;
- mean_direction |∫ x ρ dσ| = √(E_1/d);
- dominant_degree argmax_{l≥1} E_l.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .harmonics import LOG_MAX_FLOAT, funk_hecke, funk_hecke_over_beta
from .linkage import root_of
from .manifolds import Manifold
from .model import AttentionModel

TOP_FRACTION = 0.1


def tail_energy(spectrum: np.ndarray) -> float:
    """Share of Σ_l E_l carried by the top 10% of degrees (at least one degree)."""
    top = max(1, math.ceil(TOP_FRACTION * len(spectrum)))
    total = float(np.sum(spectrum))
    return float(np.sum(spectrum[-top:])) / total if total > 0 else 0.0


def energy_scaled(model: AttentionModel, spectrum: np.ndarray) -> float:
    """e^{-|β|} E_β = e^{-|β|} (1/2β) Σ_l ĥ_l E_l from the energy per degree; at β = 0 the limit ½ Σ_{l≥1} (ĥ_l/β) E_l."""
    lmax, beta = len(spectrum) - 1, model.beta
    if beta == 0.0:
        return 0.5 * float(np.dot(funk_hecke_over_beta(lmax, 0.0, model.d), spectrum))  # its entry l = 0 is 0
    return float(np.dot(funk_hecke(lmax, beta, model.d, scaled=True), spectrum)) / (2.0 * beta)


def energies(model: AttentionModel, spectrum: np.ndarray, rate_scaled: float) -> dict:
    """The diagnostics energy, energy_scaled and energy_rate from the energy per degree and the scaled
    dissipation e^{-|β|} dE_β/dt; NaN for models without a monotone energy."""
    if not model.has_energy:
        return dict.fromkeys(("energy", "energy_scaled", "energy_rate"), math.nan)
    e_scaled = energy_scaled(model, spectrum)
    return {"energy": _unscaled(e_scaled, model.beta), "energy_scaled": e_scaled,
            "energy_rate": _unscaled(float(rate_scaled), model.beta)}


def _unscaled(value: float, beta: float) -> float:
    """e^{|β|} · value, ±inf where that overflows."""
    return value * math.exp(abs(beta)) if abs(beta) < LOG_MAX_FLOAT else math.copysign(math.inf, value)


def snapshot(equation, c: np.ndarray) -> dict:
    """All diagnostics of the state with coefficients c."""
    M, model = equation.manifold, equation.model
    spectrum = M.degree_energy(c)
    if model.has_energy:
        rho, X, kr = equation.velocity(c)
        dissipation = M.squared_speed(X) * rho  # |X|² ρ
        # e^{-|β|} ∫ (K∗ρ)^s |X|² ρ dσ, K∗ρ = ĥ_0 K̃∗ρ
        rate = (np.sum(M.weights * kr * dissipation) * math.exp(equation.attention.kernel_log_scale - abs(model.beta))
                if kr is not None else np.sum(M.weights * dissipation) * math.exp(-abs(model.beta)))
    else:
        rho, rate = M.synthesis(c), math.nan
    return {
        "mass": float(np.sum(M.weights * rho)),
        **energies(model, spectrum, float(rate)),
        "min_density": float(np.min(rho[M.significant])),
        "max_density": float(np.max(rho[M.significant])),
        "spectrum": spectrum,
        "tail_energy": tail_energy(spectrum),
        "mean_direction": math.sqrt(spectrum[1] / M.d),
        "dominant_degree": int(np.argmax(spectrum[1:]) + 1),
        "clusters": cluster_count(M, rho),
    }


# --------------------------------------------------------------------------- clusters
# A density snapshot ρ on a manifold's grid is split into the basins of attraction of its
# peaks under steepest ascent from grid point to grid point, among the neighbours the manifold
# names (Manifold.neighbourhoods). Equal values are ordered by grid index.
# Basins merge as the level ρ = s descends through the saddles between them; where two
# merge, the one with the lower peak ρ_p ends. It is a cluster when
#   ρ_p ≥ CLUSTER_MIN_PEAK (twice the uniform density: a near-uniform state has none),
#   ρ_p ≥ CLUSTER_MIN_RELATIVE · max ρ (drops the ripples beside sharp peaks), and
#   ρ_p - s ≥ CLUSTER_MIN_PROMINENCE · ρ_p (the density halves between it and any higher
#   peak: bumps on the flank or the top of a cluster are part of it);
# the highest peak is a cluster by the first two rules alone. A cluster owns the basins
# merged into it before it ended; the remaining basins go with the peaks they merged into.
# Its position is the centre of mass of its excess over the level L = (1 - CLUSTER_MIN_PROMINENCE) ρ_p,
# (ρ - L)_+ on its points: the low tails of a basin would pull the whole basin's centre of mass off the
# peak, and a weight vanishing at the level keeps the estimate continuous as the peak moves between grid points.

CLUSTER_MIN_PEAK = 2.0
CLUSTER_MIN_RELATIVE = 0.05
CLUSTER_MIN_PROMINENCE = 0.5


@dataclass(frozen=True)
class Clusters:
    """Clusters of a density snapshot, by decreasing mass.

    ``peaks`` ρ at each peak, ``masses`` ∫ρ dσ over each cluster's basins, ``points`` the
    unit vectors ∫ x (ρ - L)_+ dσ / |…| over each cluster's points, L = (1 - min_prominence) ρ_p (centres of
    mass of the cluster's top, projected on the sphere).
    """

    peaks: np.ndarray
    masses: np.ndarray
    points: np.ndarray

    def __len__(self) -> int:
        return len(self.masses)

    @property
    def angles(self) -> np.ndarray:
        """Positions as angles: θ ∈ [0, 2π) on the circle, (colatitude, longitude) rows on S²."""
        x = self.points
        longitude = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
        if x.shape[1] == 2:
            return longitude
        return np.column_stack([np.arccos(np.clip(x[:, 2], -1.0, 1.0)), longitude])


def _clusters(hood: np.ndarray, rho: np.ndarray, min_peak: float, min_relative: float, min_prominence: float, complete: bool):
    """Flat indices of the cluster peaks and each grid point's cluster (-1: none), by the rules above.

    With ``complete=False`` saddles below (1 - min_prominence) × the peak floor are skipped: no
    cluster decision depends on them, only which cluster the low basins belong to.
    """
    values = rho.ravel()
    floor = max(min_peak, min_relative * float(np.max(values)))
    if np.max(values) < min_peak:
        return np.array([], dtype=np.intp), np.full(values.size, -1)
    rank = np.empty(values.size, dtype=np.intp)
    rank[np.argsort(values, kind="stable")] = np.arange(values.size)
    up = hood[np.arange(values.size), np.argmax(rank[hood], axis=1)]  # the highest neighbour; a peak's is itself
    while True:  # follow every ascent path to its peak by pointer doubling
        further = up[up]
        if np.array_equal(further, up):
            break
        up = further
    peaks, basin = np.unique(up, return_inverse=True)
    height = values[peaks]
    # the highest saddle min(ρ_i, ρ_j) between each pair of touching basins
    i, j = np.repeat(hood[:, 0], hood.shape[1] - 1), hood[:, 1:].ravel()
    a, b = np.minimum(basin[i], basin[j]), np.maximum(basin[i], basin[j])
    saddle = np.minimum(values[i], values[j])
    keep = (a != b) & (saddle >= (-np.inf if complete else (1 - min_prominence) * floor))
    a, b, saddle = a[keep], b[keep], saddle[keep]
    order = np.lexsort((-saddle, b, a))
    first = np.ones(order.size, bool)
    first[1:] = (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])
    links = order[first][np.argsort(-saddle[order[first]], kind="stable")]
    # merge basins by descending saddle (union-find, each component rooted at its highest basin)
    root = list(range(peaks.size))
    members = [[k] for k in range(peaks.size)]
    owner = np.full(peaks.size, -1)
    found: list[int] = []

    def find(k):
        return root_of(root, k)

    def settle(r):
        m = np.array(members[r])
        owner[m[owner[m] < 0]] = len(found)
        found.append(peaks[r])

    for a_k, b_k, s in zip(a[links].tolist(), b[links].tolist(), saddle[links].tolist()):
        high, low = find(a_k), find(b_k)
        if high == low:
            continue
        if height[high] < height[low]:
            high, low = low, high
        if height[low] >= floor and height[low] - s >= min_prominence * height[low]:
            settle(low)
        root[low] = high
        if len(members[low]) > len(members[high]):
            members[high], members[low] = members[low], members[high]
        members[high].extend(members[low])
    for r in sorted({find(k) for k in range(peaks.size)}, key=lambda r: -height[r]):
        if height[r] >= floor:
            settle(r)
    return np.array(found, dtype=np.intp), owner[basin]


def cluster_count(
    manifold: Manifold, rho: np.ndarray, min_peak: float = CLUSTER_MIN_PEAK, min_relative: float = CLUSTER_MIN_RELATIVE,
    min_prominence: float = CLUSTER_MIN_PROMINENCE,
) -> int:
    """Number of clusters of the grid density ρ (see :func:`find_clusters`)."""
    return len(_clusters(manifold.neighbourhoods(), rho, min_peak, min_relative, min_prominence, complete=False)[0])


def find_clusters(
    manifold: Manifold, rho: np.ndarray, min_peak: float = CLUSTER_MIN_PEAK, min_relative: float = CLUSTER_MIN_RELATIVE,
    min_prominence: float = CLUSTER_MIN_PROMINENCE,
) -> Clusters:
    """The clusters of the grid density ρ: peaks with ρ_p ≥ max(min_peak, min_relative · max ρ) from which
    ρ falls to (1 - min_prominence) ρ_p before any higher peak, their masses and centres."""
    peaks, owner = _clusters(manifold.neighbourhoods(), rho, min_peak, min_relative, min_prominence, complete=True)
    values = rho.ravel()
    weighted = (manifold.weights * rho).ravel()
    mine = owner >= 0
    masses = np.bincount(owner[mine], weighted[mine], minlength=peaks.size)
    excess = manifold.weights.ravel()[mine] * np.maximum(values[mine] - (1 - min_prominence) * values[peaks][owner[mine]], 0.0)
    x = manifold.points().reshape(values.size, -1)[mine]
    centres = np.stack([np.bincount(owner[mine], excess * xi, minlength=peaks.size) for xi in x.T], axis=1)
    order = np.argsort(-masses, kind="stable")
    centres = centres[order]
    norms = np.linalg.norm(centres, axis=1, keepdims=True) if peaks.size else 1.0
    return Clusters(values[peaks][order], masses[order], centres / norms)


def predicted_cluster_angles(c: np.ndarray, k: int | None = None) -> np.ndarray:
    """δ_j = (2πj - arg c_k)/k mod 2π ∈ [0, 2π), j = 0..k-1, sorted: the maxima of the mode-k part
    2|c_k| cos(kθ + arg c_k) of a circle density with coefficients c_k = ∫ρ e^{-ikθ} dσ.

    From the linear phase on, clusters form at the maxima of the dominant initial mode
    (arXiv 2410.23228); k defaults to the strongest wavenumber argmax_{k≥1} |c_k|.
    """
    if k is None:
        k = int(np.argmax(np.abs(c[1:]))) + 1
    delta = np.mod((2 * np.pi * np.arange(k) - np.angle(c[k])) / k, 2 * np.pi)
    delta[delta == 2 * np.pi] = 0.0  # mod rounds a tiny negative angle up to 2π
    return np.sort(delta)
