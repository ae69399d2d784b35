"""Points from a density given by grid values on S¹ (θ) or S² (θ, φ): iid samples (rejection from
the (bi)linear interpolant of the grid values) and deterministic quantile placement. Used by the
sphere and the circle for tokens drawn from a PDE snapshot.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from ..errors import InputError
from ..kernels import CHUNK_ENTRIES


def uniform_points(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """n iid uniform points on S^{d-1} (normalized Gaussian vectors)."""
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _density_grid(density, grid) -> tuple[tuple, np.ndarray]:
    """Checked grid values of ρ, sorted and closed, so that ρ is their (bi)linear interpolant:
    on S¹ (grid = (θ,)) nodes θ_0 < … < θ_0 + 2π, the last value repeating the first; on S²
    (grid = (θ, φ)) colatitudes 0 … π (a pole missing from the grid gets the mean of the nearest
    ring) by longitudes φ_0 < … < φ_0 + 2π, periodic likewise. Returns (nodes, values)."""
    try:
        rho = np.array(density, dtype=float)
        grid = grid if isinstance(grid, (tuple, list)) else (grid,)
        axes = tuple(np.array(g, dtype=float).reshape(-1) for g in grid)
    except (TypeError, ValueError):
        raise InputError("density and grid must be arrays of numbers") from None
    if rho.ndim != len(axes) or rho.ndim not in (1, 2) or rho.shape != tuple(a.size for a in axes):
        raise InputError(
            f"density has shape {rho.shape} on a grid of shape {tuple(a.size for a in axes)}: "
            "expected values ρ[θ] on the circle or ρ[θ, φ] on S², "
            "matching grid = (theta,) or (theta, phi)"
        )
    if not (np.all(np.isfinite(rho)) and all(np.all(np.isfinite(a)) for a in axes)):
        raise InputError("density or grid contains non-finite values: all must be finite")
    if rho.max() <= 0 or rho.min() < -1e-6 * rho.max():
        raise InputError(
            f"density has values in [{rho.min():.3g}, {rho.max():.3g}]: a density must be >= 0 "
            "(round-off down to -1e-6·max is set to 0) and not identically 0"
        )
    rho = np.maximum(rho, 0.0)
    for axis, a in enumerate(axes):  # accept either orientation of each axis
        order = np.argsort(a)
        axes = axes[:axis] + (a[order],) + axes[axis + 1:]
        rho = np.take(rho, order, axis=axis)
    periodic = axes[-1]
    if np.any(np.diff(periodic) <= 0) or periodic[-1] - periodic[0] >= 2 * np.pi:
        name = "theta" if rho.ndim == 1 else "phi"
        raise InputError(f"grid {name} must hold distinct angles within one period [0, 2π)")
    periodic = np.r_[periodic, periodic[0] + 2 * np.pi]
    rho = np.concatenate([rho, rho[..., :1]], axis=-1)
    if rho.ndim == 1:
        return (periodic,), rho
    theta = axes[0]
    if np.any(np.diff(theta) <= 0) or theta[0] < 0 or theta[-1] > np.pi:
        raise InputError("grid theta must hold distinct colatitudes in [0, π]")
    if theta[0] > 0:
        theta, rho = np.r_[0.0, theta], np.vstack([np.full(periodic.size, rho[0, :-1].mean()), rho])
    if theta[-1] < np.pi:
        theta, rho = np.r_[theta, np.pi], np.vstack([rho, np.full(periodic.size, rho[-1, :-1].mean())])
    return (theta, periodic), rho


def _angles(x) -> tuple:
    """(θ,) of points on S¹; (colatitude, longitude) of points on S²."""
    longitude = np.arctan2(x[:, 1], x[:, 0])
    return (longitude,) if x.shape[1] == 2 else (np.arccos(np.clip(x[:, 2], -1.0, 1.0)), longitude)


def _from_angles(*angles) -> np.ndarray:
    if len(angles) == 1:
        return np.column_stack([np.cos(angles[0]), np.sin(angles[0])])
    theta, phi = angles
    return np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])


def _density_interpolant(nodes, rho):
    """ρ as a function of points (the (bi)linear interpolant of `_density_grid`)."""
    start = nodes[-1][0]
    interpolant = RegularGridInterpolator(nodes, rho)

    def at(x):
        angles = _angles(x)
        wrapped = np.minimum(np.mod(angles[-1] - start, 2 * np.pi) + start, nodes[-1][-1])
        return interpolant(np.column_stack([*angles[:-1], wrapped]))

    return at


def _rejection_sample(rng, n, d, rho, bound, mean) -> np.ndarray:
    """n iid tokens from ρ dσ: uniform proposals, each kept with probability ρ/bound."""
    samples, count = [], 0
    while count < n:
        batch = min(10**6, int(1.2 * (n - count) * bound / mean) + 64)  # acceptance ≈ mean/bound
        proposals = uniform_points(rng, batch, d)
        kept = proposals[rng.random(batch) * bound < rho(proposals)]
        samples.append(kept)
        count += len(kept)
    return np.concatenate(samples)[:n]


def _linear_quantiles(nodes, values, u) -> np.ndarray:
    """s = F⁻¹(u) for F(s) = ∫_{s_0}^s f / ∫ f, f ≥ 0 piecewise linear with f(nodes) = values
    (rows of ``values``: one per u, or one for all); exact, by the root of a quadratic in the
    cell where F crosses u (generalized inverse: the first s with F(s) ≥ u)."""
    h = np.diff(nodes)
    left, right = values[:, :-1], values[:, 1:]
    cum = np.cumsum(0.5 * h * (left + right), axis=1)
    target = u * cum[:, -1]
    k = np.minimum(np.count_nonzero(cum < target[:, None], axis=1), h.size - 1)
    rows = np.arange(len(u)) if len(values) > 1 else np.zeros(len(u), dtype=int)
    r = target - np.where(k > 0, cum[rows, k - 1], 0.0)
    a, b = left[rows, k], right[rows, k]
    # a s + (b − a) s² / 2h = r; the stable root 2r / (a + √(a² + 2(b − a) r/h))
    root = a + np.sqrt(np.maximum(a * a + 2 * (b - a) * r / h[k], 0.0))
    s = np.divide(2 * r, root, out=np.zeros_like(r), where=root > 0)
    return nodes[k] + np.clip(s, 0.0, h[k])


def _row_chunks(n: int, width: int):
    """Slices of n rows such that a chunk's (rows, width) arrays hold ≤ CHUNK_ENTRIES entries."""
    step = max(1, CHUNK_ENTRIES // width)
    return (slice(start, start + step) for start in range(0, n, step))


def _quantile_tokens(n: int, nodes, rho) -> np.ndarray:
    """n tokens at quantiles of ρ dσ (ρ the interpolant of `_density_grid`), deterministic.

    S¹: θ_j = F⁻¹((j + ½)/n), F the distribution function of ρ dθ/2π from θ_0.
    S²: the colatitude θ_j = G⁻¹((j + ½)/n), G the distribution of the colatitude under ρ dσ
    (density ρ̄(θ) sin θ/2, ρ̄ the mean of ρ over the ring), and the longitude φ_j = F_j⁻¹(u_j),
    F_j the distribution of ρ(θ_j, ·) over its ring, at the golden fractions
    u_j = frac(j (3 − √5)/2): the Fibonacci lattice carried to ρ by the conditional quantile
    (Rosenblatt) map; for ρ ≡ 1 it is the Fibonacci lattice of the tokens.
    """
    levels = (np.arange(n) + 0.5) / n
    if len(nodes) == 1:
        theta = np.concatenate([_linear_quantiles(nodes[0], rho[None], levels[c]) for c in _row_chunks(n, rho.size)])
        return _from_angles(theta)
    theta_nodes, phi_nodes = nodes
    # ring means (exact for the piecewise-linear ρ(θ_k, ·)), linear in θ between rings: a + bθ
    means = (0.5 * np.diff(phi_nodes) * (rho[:, :-1] + rho[:, 1:])).sum(axis=1) / (2 * np.pi)
    b = np.diff(means) / np.diff(theta_nodes)
    a = means[:-1] - b * theta_nodes[:-1]

    def primitive(k, t):  # ∫ (a + bt) sin t dt on ring interval k
        return b[k] * np.sin(t) - (a[k] + b[k] * t) * np.cos(t)

    cells = np.arange(b.size)
    masses = primitive(cells, theta_nodes[1:]) - primitive(cells, theta_nodes[:-1])
    cum = np.r_[0.0, np.cumsum(masses)]
    target = levels * cum[-1]
    k = np.clip(np.searchsorted(cum, target, side="left") - 1, 0, b.size - 1)
    low, high = theta_nodes[k].copy(), theta_nodes[k + 1].copy()
    goal = target - cum[k] + primitive(k, low)
    for _ in range(60):  # bisection: the primitive increases on each interval
        middle = 0.5 * (low + high)
        below = primitive(k, middle) < goal
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    theta = 0.5 * (low + high)
    w = ((theta - theta_nodes[k]) / np.diff(theta_nodes)[k])[:, None]
    golden = np.mod(np.arange(n) * ((3 - np.sqrt(5)) / 2), 1.0)
    phi = np.empty(n)
    for c in _row_chunks(n, phi_nodes.size):
        rings = (1 - w[c]) * rho[k[c]] + w[c] * rho[k[c] + 1]
        phi[c] = _linear_quantiles(phi_nodes, rings, golden[c])
    return _from_angles(theta, phi)


def sample(values: np.ndarray, grid: tuple, n: int, rng: np.random.Generator) -> np.ndarray:
    """n iid points from ρ dσ, ρ the interpolant of the grid values ``values`` on ``grid`` = (θ,) or (θ, φ)."""
    nodes, rho = _density_grid(values, grid)
    mean = np.mean(np.maximum(np.asarray(values, dtype=float), 0.0))
    return _rejection_sample(rng, n, len(nodes) + 1, _density_interpolant(nodes, rho), rho.max(), mean)


def quantile_points(values: np.ndarray, grid: tuple, n: int) -> np.ndarray:
    """n points at the quantiles of ρ dσ (`_quantile_tokens`), ρ as for :func:`sample`."""
    return _quantile_tokens(n, *_density_grid(values, grid))
