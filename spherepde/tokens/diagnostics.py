"""Diagnostics of a token snapshot (1/n) Σ δ_{x_i}: energy, mean direction, clusters, close pairs
and the empirical harmonic spectrum.

Up to GRAM_TOKENS tokens (and in any d > 3) pair sums are evaluated block by block over one triangle of
the Gram matrix (memory O(n·block), time O(n²)). Beyond, on S¹ and S² every diagnostic scales: the
spectrum and the energy from the tokens' harmonic coefficients (non-uniform transforms, O(n + L² log L)),
close pairs by a k-d tree's dual-tree count, clusters from cubes of the link length and the links between
neighbouring cubes (S²) or from the sorted angles (S¹) — all exact, O(n log n) time and O(n) memory."""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.special import betaincinv, exprel

from scipy.spatial import cKDTree

from ..diagnostics import energies
from ..errors import InputError
from ..harmonics import kernel_bandwidth, zonal_harmonics
from ..kernels import rows_per_block
from ..linkage import FLAT_TREE, linked_components
from ..manifolds import for_points
from ..model import USA_MAX_CONCENTRATION, AttentionModel
from .points import as_beta, as_integer, as_points

#: Up to this many tokens the diagnostics sum over all pairs (exact, O(n²)); beyond, on S¹ and S², the
#: O(n log n) paths of the module docstring (the same quantities: tested against each other).
GRAM_TOKENS = 4000

#: Threshold of `close_pair_fraction`: pairs with ⟨x_i, x_j⟩ > 0.999 (angle < 2.56°).
CLOSE_PAIR_COS = 0.999

# Largest default cluster threshold δ (angle 8.1°), see `cluster_count`.
_MAX_CLUSTER_DELTA = 1e-2

def _gram_strips(x, block):
    """Strips G = X[s:s+b] X[s:]ᵀ of the Gram matrix's upper block triangle, with b.

    A sum over all ordered pairs (i, j) of a symmetric quantity is the strips' sum plus
    their sum without the first b columns (the diagonal block).
    """
    n = len(x)
    block = rows_per_block(n, None if block is None else as_integer(block, "block", 1, "the rows per block"))
    for start in range(0, n, block):
        rows = x[start:start + block]
        yield len(rows), rows @ x[start:].T


def _pair_sum(x, column_sums, block):
    """Σ_{i,j} f(⟨x_i,x_j⟩) over all ordered pairs; column_sums(G) returns (..., columns) sums."""
    total = 0.0
    for b, gram in _gram_strips(x, block):
        partial = column_sums(gram)
        total = total + partial.sum(axis=-1) + partial[..., b:].sum(axis=-1)
    return total


def energy(points, beta, scaled: bool = False, block: Optional[int] = None) -> float:
    """E = (1/2βn²) Σ_ij (e^{β⟨x_i,x_j⟩} − 1), the energy E_β of docs/mathematics.md (Q = K = V = I)
    less its constant 1/(2β); with ``scaled=True`` the value e^{-|β|} E.

    Subtracting 1/(2β) leaves dE/dt unchanged and makes E smooth in β: each pair adds
    t·(e^{βt} − 1)/(βt) with t = ⟨x_i,x_j⟩, so at β = 0, E = |x̄|²/2 with x̄ = (1/n) Σ x_i,
    and small |β| has no cancellation. For |β| > USA_MAX_CONCENTRATION the sum is formed scaled by e^{-|β|};
    E itself is inf where it exceeds the range of doubles (β ≳ 715).
    """
    x = as_points(points)
    beta = as_beta(beta)
    n = len(x)
    scale = np.exp(-abs(beta)) if scaled else 1.0
    if _scalable(x):
        return _spectral_energy(x, beta, scaled)
    if abs(beta) <= USA_MAX_CONCENTRATION:
        total = _pair_sum(x, lambda gram: (gram * exprel(beta * gram)).sum(axis=0), block)
        return float(total / (2 * n * n) * scale)
    total = _pair_sum(x, lambda gram: np.exp(beta * gram - abs(beta)).sum(axis=0), block)
    with np.errstate(over="ignore", divide="ignore"):
        log_sum = np.log(total) - np.log(2 * abs(beta) * n * n) + (0.0 if scaled else abs(beta))
        return float(np.sign(beta) * np.exp(log_sum) - scale / (2 * beta))


def _scalable(x: np.ndarray) -> bool:
    """Whether the O(n log n) paths serve ``x``: more than GRAM_TOKENS tokens on S¹ or S²."""
    return len(x) > GRAM_TOKENS and x.shape[1] in (2, 3)


def _coefficients(x: np.ndarray, lmax: int):
    """The manifold of degree lmax for the tokens x and their coefficients c_lm = (1/n) Σ_i Y_lm(x_i)."""
    M = for_points(x.shape[1], lmax)
    return M, M.locate(x).coefficients(np.full(len(x), 1.0 / len(x)))


def _spectral_energy(x: np.ndarray, beta: float, scaled: bool) -> float:
    """E = (1/2β)(Σ_l ĥ_l(β) Σ_m c_lm² − 1) (Funk–Hecke, at the kernel's band where ĥ_l < 1e-16 ĥ_0): the
    pair sum Σ_ij e^{β⟨x_i,x_j⟩}/n² by the addition theorem; at β = 0 its limit |x̄|²/2."""
    d = x.shape[1]
    model = AttentionModel("SA", beta, d)
    M, c = _coefficients(x, max(2, kernel_bandwidth(abs(beta), d, 1e-16)))
    values = energies(model, M.degree_energy(c), float("nan"))
    if beta == 0:
        return float(values["energy"])
    if scaled:
        return float(values["energy_scaled"] - np.exp(-abs(beta)) / (2 * beta))
    return float(values["energy"] - 1 / (2 * beta))


def mean_direction(points) -> float:
    """|x̄| = |(1/n) Σ x_i|: 0 for a balanced configuration, 1 for a single cluster."""
    return float(np.linalg.norm(as_points(points).mean(axis=0)))


def close_pair_fraction(points, block: Optional[int] = None) -> float:
    """Fraction of pairs i ≠ j with ⟨x_i,x_j⟩ > CLOSE_PAIR_COS = 0.999 (NaN for n = 1)."""
    x = as_points(points)
    n = len(x)
    if n == 1:
        return float("nan")
    if _scalable(x):  # ⟨x,y⟩ > c ⇔ |x − y| < √(2(1 − c)); the dual-tree count includes the n pairs i = j
        tree = cKDTree(x, **FLAT_TREE)
        count = int(tree.count_neighbors(tree, np.nextafter(np.sqrt(2 * (1 - CLOSE_PAIR_COS)), 0)))
        return float((count - n) / (n * (n - 1)))
    count = _pair_sum(x, lambda gram: np.count_nonzero(gram > CLOSE_PAIR_COS, axis=0), block)
    return float((count - n) / (n * (n - 1)))  # the n diagonal pairs i = j always count


def _as_delta(delta) -> float:
    try:
        delta = float(delta)
    except (TypeError, ValueError):
        delta = float("nan")
    if not 0 < delta < 2:
        raise InputError(
            f"delta = {delta} is not allowed: use 0 < delta < 2 (linked when <x_i,x_j> > 1 - delta)"
        )
    return delta


def cluster_threshold(n: int, d: int) -> float:
    """The default δ of `cluster_count`: min(10⁻², δ_n), (n−1) σ{⟨x,y⟩ > 1−δ_n} = ½."""
    if n < 2:
        return _MAX_CLUSTER_DELTA
    # σ{y: ⟨x,y⟩ > 1−δ} = ½ I_{2δ−δ²}((d−1)/2, ½), I the regularized incomplete beta function
    q = betaincinv((d - 1) / 2, 0.5, 1.0 / (n - 1))
    return float(min(_MAX_CLUSTER_DELTA, q / (1 + np.sqrt(1 - q))))  # δ = 1 − √(1−q)


def cluster_count(points, delta: Optional[float] = None, block: Optional[int] = None) -> int:
    """Number of single-linkage clusters: components of the graph linking ⟨x_i,x_j⟩ > 1 − δ.

    Default δ = `cluster_threshold(n, d)`: the δ at which a uniform cloud of n tokens has on
    average ½ linked neighbour per token (far below percolation, so that an unclustered
    state counts as nearly n clusters rather than one), capped at 10⁻² (angle 8.1°).
    Components are found by min-label propagation with pointer jumping, O(n²) per sweep.
    """
    x = as_points(points)
    n, d = x.shape
    delta = cluster_threshold(n, d) if delta is None else _as_delta(delta)
    if _scalable(x):  # ⟨x,y⟩ > 1 − δ ⇔ |x − y| < √(2δ)
        return linked_components(x, np.sqrt(2 * delta))[0]
    labels = np.arange(n)
    while True:
        new = labels.copy()
        start = 0
        for b, gram in _gram_strips(x, block):
            linked = gram > 1 - delta
            rows, cols = slice(start, start + b), slice(start, n)
            new[rows] = np.minimum(new[rows], np.where(linked, labels[cols], n).min(axis=1))
            new[cols] = np.minimum(new[cols], np.where(linked, labels[rows, None], n).min(axis=0))
            start += b
        # hook each old label onto the smallest label it reached (cuts sweeps on chains ~50×)
        np.minimum.at(new, labels, new.copy())
        while not np.array_equal(new[new], new):
            new = new[new]
        if np.array_equal(new, labels):
            return int(np.unique(labels).size)
        labels = new


def _zonal_column_sums(gram, lmax: int, d: int) -> np.ndarray:
    """Column sums of Y_l(G) for l = 0..lmax, Y_l the zonal harmonics (:func:`spherepde.harmonics.zonal_harmonics`)."""
    return zonal_harmonics(gram, lmax, d).sum(axis=1)


def empirical_spectrum(points, lmax: int, block: Optional[int] = None) -> np.ndarray:
    """Σ_m ρ_lm² for l = 0..lmax of the empirical measure (1/n) Σ δ_{x_i} (∫ Y² dσ = 1).

    By the addition theorem Σ_m Y_lm(x) Y_lm(y) = Y_l(1) Y_l(⟨x,y⟩) (Y_l the zonal harmonic):
    Σ_m ρ_lm² = (Y_l(1)/n²) Σ_ij Y_l(⟨x_i,x_j⟩). Uniform iid tokens give N(d,l)/n on average.
    """
    x = as_points(points)
    n, d = x.shape
    lmax = as_integer(lmax, "lmax", 0, "the maximal degree")
    if _scalable(x) and lmax >= 2:
        M, c = _coefficients(x, lmax)
        return M.degree_energy(c)
    sums = _pair_sum(x, lambda gram: _zonal_column_sums(gram, lmax, d), block)
    return zonal_harmonics(np.ones(1), lmax, d)[:, 0] * sums / (n * n)


def diagnostics(points, beta, lmax: Optional[int] = None, delta: Optional[float] = None,
                block: Optional[int] = None, *, Q=None, K=None, V=None) -> dict:
    """Scalar diagnostics of one snapshot (see the functions of the same names):

    energy (NaN unless QᵀK = V = I, as `model.AttentionModel.has_energy`: for other matrices
    the flow ascends no energy), mean_direction |x̄|, clusters (with threshold cluster_delta,
    default `cluster_threshold`), close_pairs (fraction of pairs with ⟨x_i,x_j⟩ > 0.999), and
    spectrum (l = 0..lmax) if lmax is given.
    """
    x = as_points(points)
    beta = as_beta(beta)
    n, d = x.shape
    delta = cluster_threshold(n, d) if delta is None else _as_delta(delta)
    has_energy = AttentionModel("SA", beta, d, Q, K, V).has_energy  # the name does not matter
    out: dict[str, object] = {
        "energy": energy(x, beta, block=block) if has_energy else float("nan"),
        "mean_direction": mean_direction(x),
        "clusters": cluster_count(x, delta, block),
        "cluster_delta": float(delta),
        "close_pairs": close_pair_fraction(x, block),
    }
    if lmax is not None:
        out["spectrum"] = empirical_spectrum(x, lmax, block)
    return out
