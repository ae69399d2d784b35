"""Tokens against the mean field: the empirical measure μ_n = (1/n) Σ δ_{x_i} against ν = ρσ through
their real harmonic coefficients (`empirical_coefficients`, `sobolev_distance`) and by exact optimal
transport with the geodesic cost (`wasserstein_distance`: POT on S², the circular quantile formula on
S¹), for one snapshot (`tokens_vs_density`) or two run files (`compare_token_run`).
"""
from __future__ import annotations

import numpy as np

from . import io
from .config import loads
from .errors import InputError, NumericalFailure
from .initial import snapshot_manifold
from .kernels import CHUNK_ENTRIES
from .manifolds import manifold_class, with_degree
from .tokens.points import as_points

#: Default order s of `sobolev_distance`. The H^{-s} norm of a Dirac mass on S^{d-1} is finite
#: iff s > (d-1)/2 (Σ_l N(d,l) l^{-2s} < ∞); s = 2 makes it finite on S¹ and S² alike, and an
#: empirical measure (E Σ_m a_lm² = N(d,l)/n) then has a share ~ 1/L² of D_s² beyond degree L
#: (S²), so that truncating at L = 16 leaves D_s of tokens vs density within 0.5% (docs/particles.md).
SOBOLEV_ORDER = 2.0

#: Largest number of cost-matrix entries n·m handed to the exact OT solver (800 MB of doubles).
MAX_TRANSPORT_ENTRIES = 10**8


def empirical_coefficients(points, manifold, block: int = 4096) -> np.ndarray:
    """a_lm = (1/n) Σ_i Y_lm(x_i): the real harmonic coefficients of the empirical measure
    (1/n) Σ_i δ_{x_i}, degrees ≤ manifold.lmax, in the manifold's real layout (the same
    numbers as ``manifold.real_coefficients(manifold.analysis(ρ))`` for a density ρ)."""
    x = as_points(points)
    if x.shape[1] != manifold.d:
        raise InputError(f"points in R^{x.shape[1]} do not lie on the {manifold.kind} (R^{manifold.d})")
    total = np.zeros(manifold.real_size)
    block = max(1, min(block, CHUNK_ENTRIES // manifold.real_size))
    for start in range(0, len(x), block):
        total += manifold.harmonics(x[start:start + block]).sum(axis=0)
    return total / len(x)


def sobolev_distance(a, b, manifold, s: float = SOBOLEV_ORDER) -> float:
    """‖μ − ν‖_{H^{-s}} = (Σ_{l ≤ L} (1 + l(l+d−2))^{−s} Σ_m (a_lm − b_lm)²)^{1/2}.

    a, b: real coefficients of μ and ν in the manifold's layout (L = manifold.lmax). The
    weight is the symbol of (1 − Δ)^{−s}; s > (d−1)/2 makes the full sum finite for measures,
    where it metrizes weak convergence (a kernel mean discrepancy).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != (manifold.real_size,) or b.shape != a.shape:
        raise InputError(f"coefficients of shapes {a.shape}, {b.shape} do not fit the layout of size {manifold.real_size}")
    l = manifold.real_degrees
    weight = (1.0 + l * (l + manifold.d - 2.0)) ** (-float(s))
    return float(np.sqrt(np.sum(weight * (a - b) ** 2)))


def _weights(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise InputError(f"{name} must be {n} finite non-negative weights with a positive sum")
    return w / w.sum()


def geodesic_distance(x, y) -> np.ndarray:
    """Great-circle distances arccos⟨x_i, y_j⟩ (n, m) between unit vectors."""
    return np.arccos(np.clip(x @ y.T, -1.0, 1.0))


def wasserstein_distance(x, y, a=None, b=None) -> float:
    """W₂(Σ a_i δ_{x_i}, Σ b_j δ_{y_j}) on S^{d-1} with the geodesic cost d(x, y)², exactly.

    Weights default to uniform and are normalized. S¹ (d = 2): the circular formula of
    `circle_wasserstein_distance`, O((n+m) log(n+m)). Otherwise the network simplex of POT
    (``ot.emd2``) on the n×m cost matrix, refused beyond MAX_TRANSPORT_ENTRIES entries.
    """
    x, y = as_points(x, "x"), as_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"points in R^{x.shape[1]} and R^{y.shape[1]} cannot be compared")
    a, b = _weights(a, len(x), "a"), _weights(b, len(y), "b")
    if x.shape[1] == 2:
        return circle_wasserstein_distance(np.arctan2(x[:, 1], x[:, 0]), np.arctan2(y[:, 1], y[:, 0]), a, b)
    if len(x) * len(y) > MAX_TRANSPORT_ENTRIES:
        raise InputError(
            f"exact transport between {len(x)} and {len(y)} points needs a {len(x)}x{len(y)} cost matrix: "
            f"at most {MAX_TRANSPORT_ENTRIES:.0e} entries (use fewer tokens or a coarser grid)"
        )
    import ot

    cost, log = ot.emd2(a, b, geodesic_distance(x, y) ** 2, numItermax=max(10**6, 50 * len(x) * len(y)), log=True)
    if log["result_code"] != 1:
        raise NumericalFailure(f"exact optimal transport did not converge: {log['warning']}")
    return float(np.sqrt(max(cost, 0.0)))


def _circle_profile(theta, w):
    """Angles mapped to [0, 1) (fractions of a turn), sorted, with their weights' cumulative sums."""
    u = np.mod(np.asarray(theta, dtype=float) / (2 * np.pi), 1.0)
    u[u == 1.0] = 0.0  # a tiny negative angle rounds to a full turn
    order = np.argsort(u, kind="stable")
    u, cum = u[order], np.cumsum(w[order])
    cum /= cum[-1]
    return u, cum


def circle_wasserstein_distance(theta, phi, a=None, b=None) -> float:
    """W₂ on S¹ with the arc-length cost between Σ a_i δ_{θ_i} and Σ b_j δ_{φ_j}, exactly:

        W₂² = (2π)² min_α ∫₀¹ |F⁻¹(t) − G⁻¹(t + α)|² dt

    (Delon, Salomon & Sobolevski 2010), F⁻¹, G⁻¹ the quantile functions of the two measures
    on [0, 1) (angles in turns) extended by G⁻¹(s + 1) = G⁻¹(s) + 1. The objective is convex
    and piecewise linear in the shift α of the cut point; α* is found by bisection on its
    exact slope (each evaluation O((n+m) log(n+m))) and the objective is evaluated there.
    W₂ is the root of W₂², so near 0 its absolute accuracy is √(round-off) ≈ 1e-8.
    """
    theta, phi = np.asarray(theta, dtype=float).ravel(), np.asarray(phi, dtype=float).ravel()
    a, b = _weights(a, theta.size, "a"), _weights(b, phi.size, "b")
    u, P = _circle_profile(theta, a)
    v, Q = _circle_profile(phi, b)
    v_next = np.append(v[1:], v[0] + 1.0)  # G⁻¹ just after each of its jumps at Q_j

    def quantile_mu(t, side):
        return u[np.minimum(np.searchsorted(P, t, side=side), u.size - 1)]

    def objective(alpha):
        cuts = np.unique(np.concatenate([[0.0], P, np.mod(Q - alpha, 1.0), [1.0]]))
        mid, length = 0.5 * (cuts[1:] + cuts[:-1]), np.diff(cuts)
        s = mid + alpha
        k = np.floor(s)
        g = v[np.minimum(np.searchsorted(Q, s - k, side="left"), v.size - 1)] + k
        return float(np.sum(length * (quantile_mu(mid, "left") - g) ** 2))

    def slope(alpha):
        # as α grows, each jump of G⁻¹(t + α), at t_j = Q_j − α (mod 1), moves left: the
        # right-hand value v_{j+1} takes over from v_j at t_j, against F⁻¹(t_j+)
        t = np.mod(Q - alpha, 1.0)
        k = np.round(t + alpha - Q)
        f = quantile_mu(t, "right")
        return float(np.sum((f - v_next - k) ** 2 - (f - v - k) ** 2))

    lo, hi = -1.0, 1.0  # slope < 0 at α = −1 (G⁻¹ < F⁻¹ everywhere), > 0 at α = 1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if slope(mid) > 0:
            hi = mid
        else:
            lo = mid
    return 2 * np.pi * float(np.sqrt(max(min(objective(lo), objective(hi)), 0.0)))


def density_support(manifold, c, grid_lmax: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """The density ν = ρσ with coefficients c on ``manifold`` as weighted grid points:
    (points, weights, clipped), ν_h = Σ_k w_k ρ(x_k)₊ δ_{x_k} / Σ_k w_k ρ(x_k)₊.

    The grid is the quadrature grid of the discretization of degree ``grid_lmax`` (default
    the manifold's own): Gauss–Legendre × equispaced on S², equispaced on S¹; ρ is evaluated
    exactly at its nodes from its coefficients. A coarser grid coarse-grains ν (fewer
    points, larger cells); grid_lmax ≥ lmax/3 keeps the mass exact, the quadrature being exact
    to degree 3·grid_lmax. ``clipped`` is the share of mass removed with the negative values
    (round-off of a spectral solution).
    """
    lmax = manifold.lmax
    grid_lmax = lmax if grid_lmax is None else grid_lmax
    if isinstance(grid_lmax, bool) or not isinstance(grid_lmax, (int, np.integer)) or 3 * grid_lmax < lmax:
        raise InputError(f"grid_lmax = {grid_lmax!r} is not allowed: use an integer >= lmax/3 = {lmax / 3:g}")
    grid = with_degree(manifold, grid_lmax)
    x = grid.points().reshape(-1, manifold.d)
    a = manifold.real_coefficients(c)
    rows = max(1, CHUNK_ENTRIES // manifold.real_size)  # 32 MB of harmonics at a time
    rho = np.concatenate([manifold.harmonics(x[i:i + rows]) @ a for i in range(0, len(x), rows)])
    mass = grid.weights.ravel() * rho
    positive = np.maximum(mass, 0.0)
    clipped = float(-np.sum(np.minimum(mass, 0.0)) / np.sum(positive))
    keep = positive > 0
    return x[keep], positive[keep] / positive.sum(), clipped


def tokens_vs_density(points, manifold, c, lmax: int = 16, s: float = SOBOLEV_ORDER,
                      grid_lmax: int | None = None, wasserstein: bool = True) -> dict:
    """Distances between the tokens' empirical measure μ_n and the density ρ (coefficients c).

    ``sobolev``: `sobolev_distance` of order s over the degrees ≤ lmax (the empirical
    coefficients by evaluating the manifold's real harmonics at the tokens);
    ``wasserstein``: exact W₂ between μ_n (weights 1/n) and ρ as the weighted points of
    `density_support` (its ``grid_lmax``); ``support`` is their number.
    """
    if isinstance(lmax, bool) or not isinstance(lmax, (int, np.integer)) or not 2 <= lmax <= manifold.lmax:
        raise InputError(f"lmax = {lmax!r} is not allowed: use a degree from 2 to the density's lmax {manifold.lmax}")
    low = with_degree(manifold, lmax)
    tokens = empirical_coefficients(points, low)
    density = manifold.real_coefficients(c)[:low.real_size]  # the layout of a lower degree is a prefix
    result = {"lmax": int(lmax), "s": float(s), "particle_coefficients": tokens, "density_coefficients": density,
              "sobolev": sobolev_distance(tokens, density, low, s)}
    if wasserstein:
        y, b, clipped = density_support(manifold, c, grid_lmax)
        result.update(wasserstein=wasserstein_distance(points, y, None, b), support=len(y), clipped_mass=clipped)
    return result


def compare_token_run(tokens_path, pde_path, lmax: int = 16, s: float = SOBOLEV_ORDER,
                      grid_lmax: int | None = None, wasserstein: bool = True) -> dict:
    """A token run (`spherepde particles`) against a PDE run of the same model, at their
    common saved times: `tokens_vs_density` at each. Returns t, sobolev, wasserstein (lists),
    lmax, s, support."""
    tokens, pde = io.read_run(tokens_path), io.read_run(pde_path)
    if "points" not in tokens["fields"] or "density" not in pde["fields"]:
        raise InputError(f"compare a token run with a PDE run: {str(tokens_path)!r} holds {tokens['manifold'] or 'no'} "
                         f"tokens, {str(pde_path)!r} a {pde['manifold'] or 'non-PDE'} run")
    token_cfg, pde_cfg = loads(tokens["config_text"]), loads(pde["config_text"])
    manifold = snapshot_manifold(pde)
    d = token_cfg.particles.d
    if manifold.d != d or manifold_class(manifold.kind).takes_points is False:
        raise InputError(f"tokens in R^{d} cannot be compared with a run on the {manifold.kind} in R^{manifold.d}")
    a, b = token_cfg.attention(), pde_cfg.attention()
    same = a.name == b.name and a.beta == b.beta and all(np.array_equal(getattr(a, k), getattr(b, k)) for k in "QKV")
    if not same:
        raise InputError(f"the runs have different models: {a.name} beta = {a.beta} vs {b.name} beta = {b.beta} "
                         "(or other Q, K, V)")
    result: dict = {"t": [], "sobolev": [], "wasserstein": [], "lmax": int(lmax), "s": float(s), "support": None}
    for i, t in enumerate(tokens["t"]):
        hits = np.nonzero(np.isclose(pde["t"], t, rtol=0, atol=1e-9 * max(1.0, abs(t))))[0]
        if not hits.size:
            continue
        c = manifold.analysis(io.read_density(pde_path, int(hits[0])))
        r = tokens_vs_density(io.read_points(tokens_path, i), manifold, c, lmax, s, grid_lmax, wasserstein)
        result["t"].append(float(t))
        result["sobolev"].append(r["sobolev"])
        result["wasserstein"].append(r.get("wasserstein"))
        result["support"] = r.get("support")
    if not result["t"]:
        raise InputError(f"{str(tokens_path)!r} and {str(pde_path)!r} have no saved time in common")
    return result
