"""Checked input of the token functions: points on the sphere, β, counts and positive numbers."""
from __future__ import annotations

import numpy as np

from ..errors import InputError

#: Largest distance | |x| − 1 | at which a given point counts as lying on the unit sphere.
#: It admits single-precision data (≈ 1e-7) and rejects unnormalized vectors; accepted
#: points are renormalized to full precision.
ON_SPHERE_TOL = 1e-6


def as_points(points, name: str = "points") -> np.ndarray:
    """(n, d) float array of points on S^{d-1}, renormalized; InputError otherwise."""
    try:
        x = np.array(points, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} is not an array of numbers: expected shape (n, d)") from None
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise InputError(f"{name} has shape {x.shape}: expected (n, d) with n >= 1 and d >= 2")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name} contains non-finite values: all coordinates must be finite")
    radius = np.linalg.norm(x, axis=1)
    worst = int(np.argmax(np.abs(radius - 1.0)))
    if abs(radius[worst] - 1.0) > ON_SPHERE_TOL:
        raise InputError(
            f"{name}[{worst}] has norm {radius[worst]:.9g}: points must lie on the unit sphere "
            f"(| |x| - 1 | <= {ON_SPHERE_TOL:g})"
        )
    x /= radius[:, None]  # x is a copy already: in place
    return x


def as_beta(beta) -> float:
    """β as a finite float; InputError otherwise."""
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise InputError(f"beta = {beta!r} is not allowed: use a finite real number") from None
    if not np.isfinite(beta):
        raise InputError(f"beta = {beta} is not allowed: use a finite real number")
    return beta


def as_integer(value, name: str, minimum: int, meaning: str) -> int:
    """``value`` as an int ≥ minimum; InputError naming ``name`` and its ``meaning`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} = {value!r} is not allowed: {meaning} must be an integer >= {minimum}")
    return int(value)


def as_positive(value, name: str) -> float:
    """``value`` as a positive finite float; InputError naming ``name`` otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r} is not allowed: use a positive number") from None
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"{name} = {value} is not allowed: use a positive finite number")
    return value
