"""Initial tokens: iid uniform, lattices, given points, or drawn from a density on a manifold's grid."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from ..manifolds import Manifold
from ..manifolds.sampling import uniform_points
from .points import as_integer, as_points

INITIAL_KINDS = ("uniform", "lattice", "density", "quantile", "points")


def lattice(n: int, d: int) -> np.ndarray:
    """Equally spaced angles 2πk/n on S¹ (d = 2); the Fibonacci lattice on S² (d = 3): equal-area
    latitudes, longitudes advancing by the golden angle."""
    k = np.arange(n)
    if d == 2:
        theta = 2 * np.pi * k / n
        return np.column_stack([np.cos(theta), np.sin(theta)])
    if d == 3:
        z = 1 - (2 * k + 1) / n
        phi = np.pi * (3 - np.sqrt(5)) * k
        s = np.sqrt(1 - z * z)
        return np.column_stack([s * np.cos(phi), s * np.sin(phi), z])
    raise InputError(f"d = {d} is not allowed for kind 'lattice': use d = 2 (equal spacing) or d = 3 (Fibonacci)")


def initial_tokens(kind: str, n: Optional[int] = None, d: Optional[int] = None, *, seed=None,
                   density: Optional[np.ndarray] = None, manifold: Optional[Manifold] = None,
                   points=None) -> np.ndarray:
    """n initial tokens on S^{d-1}, shape (n, d).

    kind = "uniform": iid uniform (normalized Gaussians from ``np.random.default_rng(seed)``);
    "lattice": :func:`lattice`;
    "density": iid from ρ dσ, ρ given by its grid values ``density`` on ``manifold``
    (:meth:`spherepde.manifolds.Manifold.sample`);
    "quantile": deterministic, at the quantiles (j + ½)/n of ρ dσ (:meth:`~spherepde.manifolds.Manifold.quantile_points`);
    "points": the given ``points`` (n, d), each within ON_SPHERE_TOL of the unit sphere, renormalized.
    """
    kind = str(kind).lower()
    if kind not in INITIAL_KINDS:
        raise InputError(f"initial kind {kind!r} is not allowed: use one of {', '.join(INITIAL_KINDS)}")
    if kind == "points":
        x = as_points(points)
        if (n is not None and n != x.shape[0]) or (d is not None and d != x.shape[1]):
            raise InputError(f"points have shape {x.shape}, but n = {n}, d = {d} were asked for")
        return x
    n = as_integer(n, "n", 1, "the number of tokens")
    if kind in ("density", "quantile"):
        if density is None or manifold is None:
            raise InputError(f"kind '{kind}' needs density (grid values) and the manifold of its grid")
        if d is not None and d != manifold.d:
            raise InputError(f"d = {d} does not match a density on the {manifold.kind} in R^{manifold.d}: use d = {manifold.d}")
        if kind == "quantile":
            return manifold.quantile_points(density, n)
        return manifold.sample(density, n, np.random.default_rng(seed))
    d = 3 if d is None else as_integer(d, "d", 2, "the ambient dimension of S^(d-1)")
    if kind == "lattice":
        return lattice(n, d)
    return uniform_points(np.random.default_rng(seed), n, d)
