"""The finite-n token system of self-attention on S^{d-1} (theory.md §2).

For tokens x_1..x_n on the unit sphere of R^d, B = QᵀK and P_x = I − xxᵀ:

    SA:   ẋ_i = P_{x_i} Σ_j A_ij V x_j,   A_ij = e^{β⟨x_i,Bx_j⟩} / Σ_k e^{β⟨x_i,Bx_k⟩},
    USA:  ẋ_i = P_{x_i} (1/n) Σ_j e^{β⟨x_i,Bx_j⟩} V x_j,

sums including j = i, for any real β, any d ≥ 2 and any d×d matrices Q, K, V.

The n×n attention matrix is never stored: target rows are processed in blocks
(memory O(n·d + block·n)), each row stabilized by its largest exponent. Time
stepping is explicit Runge–Kutta in R^d with the tokens renormalized after every
step; `trajectory` yields snapshots one by one, `simulate` collects them.
Diagnostics (energy, clustering, empirical harmonic spectrum) are pair sums
evaluated block by block over one triangle of the Gram matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Callable, Iterator, Optional

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.special import betaincinv, exprel

from .errors import InputError, NumericalFailure
from .model import AttentionModel

#: Largest distance | |x| − 1 | at which a given point counts as lying on the unit sphere.
#: It admits single-precision data (≈ 1e-7) and rejects unnormalized vectors; accepted
#: points are renormalized to full precision.
ON_SPHERE_TOL = 1e-6

#: Threshold of `close_pair_fraction`: pairs with ⟨x_i, x_j⟩ > 0.999 (angle < 2.56°).
CLOSE_PAIR_COS = 0.999

# Entries of one block of the attention matrix (512 KiB of doubles): a block stays in
# cache through the max / subtract / exp / product passes over it.
_BLOCK_ENTRIES = 2**16

# Largest default cluster threshold δ (angle 8.1°), see `cluster_count`.
_MAX_CLUSTER_DELTA = 1e-2


# --------------------------------------------------------------------------- input


def _as_points(points, name: str = "points") -> np.ndarray:
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
    return x / radius[:, None]


def _as_beta(beta) -> float:
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise InputError(f"beta = {beta!r} is not allowed: use a finite real number") from None
    if not np.isfinite(beta):
        raise InputError(f"beta = {beta} is not allowed: use a finite real number")
    return beta


def _as_matrix(matrix, name: str, d: int) -> np.ndarray:
    if matrix is None:
        return np.eye(d)
    try:
        m = np.array(matrix, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} is not a matrix of numbers: expected shape ({d}, {d})") from None
    if m.shape != (d, d):
        raise InputError(f"{name} has shape {m.shape}: expected ({d}, {d}) for tokens in R^{d}")
    if not np.all(np.isfinite(m)):
        raise InputError(f"{name} contains non-finite entries: all entries must be finite")
    return m


def _as_integer(value, name: str, minimum: int, meaning: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} = {value!r} is not allowed: {meaning} must be an integer >= {minimum}")
    return int(value)


def _as_block(block) -> Optional[int]:
    return None if block is None else _as_integer(block, "block", 1, "the rows per block")


def _rows_per_block(n: int, block: Optional[int]) -> int:
    return max(1, _BLOCK_ENTRIES // n) if block is None else block


# --------------------------------------------------------------------------- velocity


def _attend(targets, keys, values, normalized: bool, block: int) -> np.ndarray:
    """Attention averages u_i at targets x_i over sources j = 1..n with keys k_j, values v_j:

        normalized:  u_i = Σ_j e^{⟨x_i,k_j⟩} v_j / Σ_j e^{⟨x_i,k_j⟩}
        otherwise:   u_i = (1/n) Σ_j e^{⟨x_i,k_j⟩} v_j

    Rows are processed ``block`` at a time, each scaled by e^{-m_i}, m_i = max_j ⟨x_i,k_j⟩;
    the unnormalized average gets the factor back as e^{m_i − log n}, finite whenever the
    result is. Plain arrays in and out, so that a compiled kernel can take this place.
    """
    n, d = values.shape
    if normalized:  # a last column of ones yields the row sums Σ_j e^{⟨x_i,k_j⟩}
        values = np.hstack([values, np.ones((n, 1))])
    u = np.empty((len(targets), d))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the caller
        for start in range(0, len(targets), block):
            rows = slice(start, start + block)
            weights = targets[rows] @ keys.T
            top = weights.max(axis=1, keepdims=True)
            weights -= top
            np.exp(weights, out=weights)
            sums = weights @ values
            if normalized:
                u[rows] = sums[:, :d] / sums[:, d:]
            else:
                u[rows] = sums * np.exp(top - np.log(n))
    return u


def _attend_symmetric(x, scale: float, values, normalized: bool, block: int) -> np.ndarray:
    """`_attend` for keys k_j = scale·x_j with scale ≥ 0 (B = bI, βb ≥ 0): the row maximum
    of ⟨x_i,k_j⟩ is scale (at j = i) for every row, so the scaled weights
    e^{scale(⟨x_i,x_j⟩ − 1)} form a symmetric matrix and each pair's exponential is computed
    once, over the upper block triangle (half the work of `_attend`).
    """
    n, d = values.shape
    if normalized:
        values = np.hstack([values, np.ones((n, 1))])
    sums = np.zeros((n, values.shape[1]))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the caller
        for start in range(0, n, block):
            rows = slice(start, start + block)
            weights = x[rows] @ x[start:].T
            b = len(weights)
            weights -= 1.0
            weights *= scale
            np.exp(weights, out=weights)
            sums[rows] += weights @ values[start:]
            sums[start + b:] += weights[:, b:].T @ values[rows]
        if normalized:
            return sums[:, :d] / sums[:, d:]
        return sums * np.exp(scale - np.log(n))


@dataclass(frozen=True)
class _Attention:
    """The velocity field of theory.md §2 for one choice of β, SA/USA, B = QᵀK and V."""

    beta: float
    normalized: bool
    B: np.ndarray
    V: np.ndarray
    block: Optional[int]

    @classmethod
    def build(cls, beta, model, d, Q, K, V, block):
        beta = _as_beta(beta)
        normalized = AttentionModel(model, beta, d).normalized
        Q, K, V = (_as_matrix(m, name, d) for m, name in ((Q, "Q"), (K, "K"), (V, "V")))
        return cls(beta, normalized, Q.T @ K, V, _as_block(block))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """ẋ at tokens x (rows of unit length): P_x u with u the attention average of V x_j."""
        block = _rows_per_block(len(x), self.block)
        b = self.B[0, 0]
        if self.beta * b >= 0 and np.array_equal(self.B, b * np.eye(len(self.B))):
            u = _attend_symmetric(x, self.beta * b, x @ self.V.T, self.normalized, block)
        else:
            keys = self.beta * (x @ self.B.T)  # rows β B x_j
            u = _attend(x, keys, x @ self.V.T, self.normalized, block)
        return u - np.einsum("ij,ij->i", x, u)[:, None] * x


def attention_field(beta, model: str, d: int, Q=None, K=None, V=None, block: Optional[int] = None):
    """The velocity field x ↦ ẋ of `velocity` for tokens in R^d, input checked once: a
    callable on (n, d) arrays of unit rows (not checked again, not renormalized)."""
    d = _as_integer(d, "d", 2, "the ambient dimension of S^(d-1)")
    return _Attention.build(beta, model, d, Q, K, V, block)


def velocity(x, beta, model: str = "SA", Q=None, K=None, V=None, block: Optional[int] = None):
    """The velocities ẋ_i of tokens x (shape (n, d)) under SA or USA self-attention.

    SA:  ẋ_i = P_{x_i} Σ_j A_ij V x_j,  A_ij = e^{β⟨x_i,Bx_j⟩} / Σ_k e^{β⟨x_i,Bx_k⟩};
    USA: ẋ_i = P_{x_i} (1/n) Σ_j e^{β⟨x_i,Bx_j⟩} V x_j;  B = QᵀK, matrices default to I.

    ``block`` is the number of target rows processed at once (default: ⌊2^16/n⌋, at least 1).
    Raises NumericalFailure if a USA velocity exceeds double precision.
    """
    x = _as_points(x, "x")
    v = _Attention.build(beta, model, x.shape[1], Q, K, V, block)(x)
    if not np.all(np.isfinite(v)):
        raise NumericalFailure(f"the velocity overflows double precision at beta = {beta}")
    return v


# --------------------------------------------------------------------------- time stepping


@dataclass(frozen=True)
class _Tableau:
    """An explicit Runge–Kutta method: stages a (lower triangle), weights b, error weights e = b − b̂."""

    a: tuple
    b: tuple
    e: Optional[tuple] = None

    @property
    def fsal(self) -> bool:
        """First stage of the next step = last stage of this one (the last row of a is b)."""
        return self.a[-1] == self.b[: len(self.a[-1])]


_RK4 = _Tableau(a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), b=(1 / 6, 1 / 3, 1 / 3, 1 / 6))

_DOPRI5 = _Tableau(  # Dormand & Prince (1980), order 5 with an embedded order-4 estimate
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    e=(
        71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40,
    ),
)


def _combine(y, h, coefficients, stages):
    out = y.copy()
    for c, k in zip(coefficients, stages):
        if c:
            out += (h * c) * k
    return out


def _rk_step(tableau: _Tableau, f, y, h, k1):
    """One step y → y + h Σ b_i k_i; returns (y_new, error vector or None, f at y_new or None)."""
    stages = [k1]
    for row in tableau.a[1:]:
        stages.append(f(_combine(y, h, row, stages)))
    y_new = _combine(y, h, tableau.b, stages)
    error = None if tableau.e is None else _combine(np.zeros_like(y), h, tableau.e, stages)
    return y_new, error, (stages[-1] if tableau.fsal else None)


def _normalize(y):
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def _check_finite(y, k, t):
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(k))):
        raise NumericalFailure(f"the token state or its velocity is not finite at t = {t:.6g}")


class TokenStepper:
    """One accepted step at a time of the token ODE ẋ = F(x), x on S^{d-1}, landing on t_stop.

    method = "rk4": classical RK4 in equal steps ≤ dt between t and t_stop;
    method = "adaptive": Dormand–Prince 5(4), accepted when every token's embedded error
    estimate (Euclidean length; tokens have radius 1) is ≤ rtol, next step
    h·min(5, max(0.2, 0.9 err^{-1/5})); ``dt`` is the first step (default 0.1 rtol^{1/5}/max|ẋ|).
    Stages are evaluated at y/|y| (the field extended 0-homogeneously) and every accepted
    state is projected back onto the sphere. The velocity at an accepted state x is F(x) of
    the stored x, computed once (the last stage of an adaptive step; right after an RK4 step,
    to check it, and reused as the next step's first stage), so that a run continued from a
    saved (t, x, state()) repeats the uninterrupted one bit for bit.
    """

    def __init__(self, method: str = "adaptive", dt: Optional[float] = None, rtol: float = 1e-8):
        self.method, self.dt, self.rtol = method, dt, rtol
        self._fsal = None  # (x, F(x)) at the last accepted state

    def state(self) -> dict:
        return {"h": 0.0 if self.dt is None or self.method == "rk4" else float(self.dt)}

    def restore(self, state: dict):
        if self.method == "adaptive":
            self.dt = state.get("h") or None

    def step(self, field, t: float, x: np.ndarray, t_stop: float) -> tuple[float, np.ndarray]:
        """(t_new, x_new) after one accepted step from (t, x) towards t_stop (never beyond it)."""
        k = self._fsal[1] if self._fsal is not None and self._fsal[0] is x else field(x)
        _check_finite(x, k, t)
        f = lambda y: field(_normalize(y))  # noqa: E731
        if self.method == "rk4":
            steps = max(1, int(np.ceil((t_stop - t) / self.dt - 1e-9)))
            h = (t_stop - t) / steps
            y, _, _ = _rk_step(_RK4, f, x, h, k)
            t_new, x_new = (t_stop if steps == 1 else t + h), _normalize(y)
            k_new = field(x_new)
        else:
            t_new, x_new, k_new = self._adaptive(f, t, x, k, t_stop)
        _check_finite(x_new, k_new, t_new)
        self._fsal = (x_new, k_new)
        return t_new, x_new

    def _adaptive(self, f, t, x, k, t_stop):
        h = self.dt  # self.dt changes only with an accepted step: an interrupted one leaves no trace
        if h is None:
            speed = float(np.max(np.linalg.norm(k, axis=1)))
            h = 0.1 * self.rtol**0.2 / speed if speed > 0 else max(t_stop - t, 1.0)
        while True:
            h_try = t_stop - t if t_stop - t < 1.01 * h else h  # no sliver of a step before t_stop
            y_new, error, k_new = _rk_step(_DOPRI5, f, x, h_try, k)
            with np.errstate(over="ignore", invalid="ignore"):
                err = float(np.max(np.linalg.norm(error, axis=1))) / self.rtol
            factor = 0.2 if not np.isfinite(err) else min(5.0, max(0.2, 0.9 * max(err, 1e-10) ** -0.2))
            h = max(h, h_try * factor) if (err <= 1.0 and h_try < h) else h_try * factor
            if err <= 1.0:  # F is 0-homogeneous: k_new = F(y_new) = F(y_new/|y_new|)
                self.dt = h
                return (t_stop if h_try == t_stop - t else t + h_try), _normalize(y_new), k_new
            if h < 1e-13 * max(1.0, abs(t)):
                raise NumericalFailure(
                    f"step size {h:.3g} at t = {t:.6g} is at round-off level: the dynamics is too "
                    "stiff for rtol or the velocity is not finite"
                )


def _as_save_times(t_end, save_every, save_times, start: float = 0.0) -> np.ndarray:
    if save_times is not None:
        if t_end is not None or save_every is not None:
            raise InputError("save_times cannot be combined with t_end or save_every: give one of them")
        try:
            times = np.atleast_1d(np.array(save_times, dtype=float))
            shown = np.array2string(times, separator=", ", threshold=6).replace("\n", "")
        except (TypeError, ValueError):
            times, shown = np.array([np.nan]), repr(save_times)
        if (times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times))
                or np.any(np.diff(times) <= 0) or times[0] < start):
            raise InputError(
                f"save_times = {shown} is not allowed: use strictly increasing finite times >= {start:g}"
            )
        return times
    t_end = _as_positive(t_end, "t_end")
    if save_every is None:
        return np.array([0.0, t_end])
    save_every = _as_positive(save_every, "save_every")
    count = int(np.floor(t_end / save_every + 1e-9))
    times = save_every * np.arange(count + 1)
    if t_end - times[-1] > 1e-9 * t_end:
        return np.append(times, t_end)
    times[-1] = t_end
    return times


def _as_positive(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r} is not allowed: use a positive number") from None
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"{name} = {value} is not allowed: use a positive finite number")
    return value


METHODS = ("rk4", "adaptive")


def trajectory(
    x0,
    beta,
    model: str = "SA",
    *,
    save_times,
    t0: float = 0.0,
    method: str = "adaptive",
    dt: Optional[float] = None,
    rtol: float = 1e-8,
    Q=None,
    K=None,
    V=None,
    block: Optional[int] = None,
    progress: Optional[Callable[[float], None]] = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (t, x(t)) for each save time ≥ t0, x(t0) = x0, solving the token ODE of `velocity`.

    method = "rk4": classical RK4, fixed steps ≤ dt (dt required);
    method = "adaptive": Dormand–Prince 5(4), local error per token ≤ rtol (dt = first step).
    Both step in R^d with the field extended 0-homogeneously, F(y) = ẋ(y/|y|), and
    project onto the sphere after every step. Steps are shortened to land exactly on the
    save times. ``progress(t)`` is called after every step. All input is checked here;
    NumericalFailure is raised lazily, after the snapshots already yielded.
    """
    x = _as_points(x0, "x0")
    field = _Attention.build(beta, model, x.shape[1], Q, K, V, block)
    try:
        t0 = float(t0)
    except (TypeError, ValueError):
        t0 = float("nan")
    if not np.isfinite(t0):
        raise InputError(f"t0 = {t0} is not allowed: use a finite start time")
    times = _as_save_times(None, None, save_times, start=t0)
    method = str(method).lower()
    if method not in METHODS:
        raise InputError(f"method = {method!r} is not allowed: use 'rk4' or 'adaptive'")
    if method == "rk4":
        if dt is None:
            raise InputError("method 'rk4' needs a time step: give dt > 0")
        dt = _as_positive(dt, "dt")
    else:
        rtol = _as_positive(rtol, "rtol")
        dt = None if dt is None else _as_positive(dt, "dt")
    return _march(field, TokenStepper(method, dt, rtol), x, t0, times, progress)


def _march(field, stepper, x, t, times, progress):
    for t_save in times:
        while t < t_save:
            t, x = stepper.step(field, t, x, t_save)
            if progress is not None:
                progress(t)
        yield float(t), x.copy()


def simulate(
    x0,
    beta,
    model: str = "SA",
    *,
    t_end: Optional[float] = None,
    save_every: Optional[float] = None,
    save_times=None,
    method: str = "adaptive",
    dt: Optional[float] = None,
    rtol: float = 1e-8,
    Q=None,
    K=None,
    V=None,
    block: Optional[int] = None,
    progress: Optional[Callable[[float], None]] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve the token ODE from x0 at t = 0; return times (n_t,) and tokens (n_t, n, d).

    Snapshots at 0, save_every, 2·save_every, …, t_end (t_end always included), or at
    0 and t_end without save_every, or exactly at ``save_times`` (≥ 0). Scheme as in
    `trajectory`, which yields the same snapshots one at a time (for output as the run goes).
    """
    times = _as_save_times(t_end, save_every, save_times)
    snapshots = list(
        trajectory(
            x0, beta, model, save_times=times, method=method, dt=dt, rtol=rtol,
            Q=Q, K=K, V=V, block=block, progress=progress,
        )
    )
    return np.array([t for t, _ in snapshots]), np.stack([x for _, x in snapshots])


# --------------------------------------------------------------------------- initial tokens


def _uniform(rng, n: int, d: int) -> np.ndarray:
    return _normalize(rng.standard_normal((n, d)))


def _lattice(n: int, d: int) -> np.ndarray:
    k = np.arange(n)
    if d == 2:
        theta = 2 * np.pi * k / n
        return np.column_stack([np.cos(theta), np.sin(theta)])
    if d == 3:  # Fibonacci lattice: equal-area latitudes, longitudes advancing by the golden angle
        z = 1 - (2 * k + 1) / n
        phi = np.pi * (3 - np.sqrt(5)) * k
        s = np.sqrt(1 - z * z)
        return np.column_stack([s * np.cos(phi), s * np.sin(phi), z])
    raise InputError(
        f"d = {d} is not allowed for kind 'lattice': use d = 2 (equal spacing) or d = 3 (Fibonacci)"
    )


def _density_interpolant(density, grid):
    """ρ on the circle (grid = (θ,)) or on S² (grid = (θ, φ)) as a function of points
    (linear / bilinear interpolation), its maximum and its mean over the grid nodes."""
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
    mean = rho.mean()
    for axis, a in enumerate(axes):  # accept either orientation of each axis
        order = np.argsort(a)
        axes = axes[:axis] + (a[order],) + axes[axis + 1:]
        rho = np.take(rho, order, axis=axis)
    theta = axes[0]
    if rho.ndim == 1:
        if np.any(np.diff(theta) <= 0) or theta[-1] - theta[0] >= 2 * np.pi:
            raise InputError("grid theta must hold distinct angles within one period [0, 2π)")

        def on_circle(x):
            return np.interp(np.arctan2(x[:, 1], x[:, 0]), theta, rho, period=2 * np.pi)

        return on_circle, rho.max(), mean
    phi = axes[1]
    if np.any(np.diff(theta) <= 0) or theta[0] < 0 or theta[-1] > np.pi:
        raise InputError("grid theta must hold distinct colatitudes in [0, π]")
    if np.any(np.diff(phi) <= 0) or phi[-1] - phi[0] >= 2 * np.pi:
        raise InputError("grid phi must hold distinct longitudes within one period [0, 2π)")
    # Close the grid: the poles carry the mean of the nearest ring, φ wraps around.
    if theta[0] > 0:
        theta, rho = np.r_[0.0, theta], np.vstack([np.full(phi.size, rho[0].mean()), rho])
    if theta[-1] < np.pi:
        theta, rho = np.r_[theta, np.pi], np.vstack([rho, np.full(phi.size, rho[-1].mean())])
    phi = np.r_[phi[-1] - 2 * np.pi, phi, phi[0] + 2 * np.pi]
    rho = np.hstack([rho[:, -1:], rho, rho[:, :1]])
    interpolant = RegularGridInterpolator((theta, phi), rho)

    def on_sphere(x):
        colatitude = np.arccos(np.clip(x[:, 2], -1.0, 1.0))
        longitude = np.mod(np.arctan2(x[:, 1], x[:, 0]) - phi[1], 2 * np.pi) + phi[1]
        return interpolant(np.column_stack([colatitude, longitude]))

    return on_sphere, rho.max(), mean


def _rejection_sample(rng, n, d, rho, bound, mean) -> np.ndarray:
    """n iid tokens from ρ dσ: uniform proposals, each kept with probability ρ/bound."""
    samples, count = [], 0
    while count < n:
        batch = min(10**6, int(1.2 * (n - count) * bound / mean) + 64)  # acceptance ≈ mean/bound
        proposals = _uniform(rng, batch, d)
        kept = proposals[rng.random(batch) * bound < rho(proposals)]
        samples.append(kept)
        count += len(kept)
    return np.concatenate(samples)[:n]


INITIAL_KINDS = ("uniform", "lattice", "density", "points")


def initial_tokens(
    kind: str,
    n: Optional[int] = None,
    d: Optional[int] = None,
    *,
    seed=None,
    density=None,
    grid=None,
    points=None,
) -> np.ndarray:
    """n initial tokens on S^{d-1}, shape (n, d).

    kind = "uniform": iid uniform (normalized Gaussians from ``np.random.default_rng(seed)``);
    "lattice": equally spaced angles 2πk/n on S¹, the Fibonacci lattice on S²;
    "density": iid from ρ dσ, ρ given by grid values ``density`` on ``grid`` = (theta,) on
    S¹ or (theta, phi) on S² (bilinear interpolation, rejection sampling);
    "points": the given ``points`` (n, d), each within ON_SPHERE_TOL of the unit sphere,
    renormalized.
    """
    kind = str(kind).lower()
    if kind not in INITIAL_KINDS:
        raise InputError(f"initial kind {kind!r} is not allowed: use one of {', '.join(INITIAL_KINDS)}")
    if kind == "points":
        x = _as_points(points)
        if (n is not None and n != x.shape[0]) or (d is not None and d != x.shape[1]):
            raise InputError(f"points have shape {x.shape}, but n = {n}, d = {d} were asked for")
        return x
    n = _as_integer(n, "n", 1, "the number of tokens")
    if kind == "density":
        if density is None or grid is None:
            raise InputError("kind 'density' needs density (grid values) and grid = (theta,) or (theta, phi)")
        rho, bound, mean = _density_interpolant(density, grid)
        d_grid = np.ndim(density) + 1
        if d is not None and d != d_grid:
            raise InputError(
                f"d = {d} does not match a density on a {d_grid - 1}-dimensional grid: use d = {d_grid}"
            )
        return _rejection_sample(np.random.default_rng(seed), n, d_grid, rho, bound, mean)
    d = 3 if d is None else _as_integer(d, "d", 2, "the ambient dimension of S^(d-1)")
    if kind == "lattice":
        return _lattice(n, d)
    return _uniform(np.random.default_rng(seed), n, d)


# --------------------------------------------------------------------------- diagnostics


def _gram_strips(x, block):
    """Strips G = X[s:s+b] X[s:]ᵀ of the Gram matrix's upper block triangle, with b.

    A sum over all ordered pairs (i, j) of a symmetric quantity is the strips' sum plus
    their sum without the first b columns (the diagonal block).
    """
    n = len(x)
    block = _rows_per_block(n, _as_block(block))
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
    """E = (1/2βn²) Σ_ij (e^{β⟨x_i,x_j⟩} − 1), the energy of theory.md §4 (Q = K = V = I)
    less its constant 1/(2β); with ``scaled=True`` the value e^{-|β|} E.

    Subtracting 1/(2β) leaves dE/dt unchanged and makes E smooth in β: each pair adds
    t·(e^{βt} − 1)/(βt) with t = ⟨x_i,x_j⟩, so at β = 0, E = |x̄|²/2 with x̄ = (1/n) Σ x_i,
    and small |β| has no cancellation. For |β| > 700 the sum is formed scaled by e^{-|β|};
    E itself is inf where it exceeds the range of doubles (β ≳ 715).
    """
    x = _as_points(points)
    beta = _as_beta(beta)
    n = len(x)
    scale = np.exp(-abs(beta)) if scaled else 1.0
    if abs(beta) <= 700:
        total = _pair_sum(x, lambda gram: (gram * exprel(beta * gram)).sum(axis=0), block)
        return float(total / (2 * n * n) * scale)
    total = _pair_sum(x, lambda gram: np.exp(beta * gram - abs(beta)).sum(axis=0), block)
    with np.errstate(over="ignore", divide="ignore"):
        log_sum = np.log(total) - np.log(2 * abs(beta) * n * n) + (0.0 if scaled else abs(beta))
        return float(np.sign(beta) * np.exp(log_sum) - scale / (2 * beta))


def mean_direction(points) -> float:
    """|x̄| = |(1/n) Σ x_i|: 0 for a balanced configuration, 1 for a single cluster."""
    return float(np.linalg.norm(_as_points(points).mean(axis=0)))


def close_pair_fraction(points, block: Optional[int] = None) -> float:
    """Fraction of pairs i ≠ j with ⟨x_i,x_j⟩ > CLOSE_PAIR_COS = 0.999 (NaN for n = 1)."""
    x = _as_points(points)
    n = len(x)
    if n == 1:
        return float("nan")
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
    x = _as_points(points)
    n, d = x.shape
    delta = cluster_threshold(n, d) if delta is None else _as_delta(delta)
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


def harmonic_dimension(d: int, l: int) -> int:
    """N(d, l): the dimension of the spherical harmonics of degree l on S^{d-1}."""
    return comb(l + d - 1, d - 1) - (comb(l + d - 3, d - 1) if l >= 2 else 0)


def _gegenbauer_column_sums(gram, lmax: int, d: int) -> np.ndarray:
    """Column sums of P_l(G) for l = 0..lmax, P_l the Gegenbauer polynomials with P_l(1) = 1:

        (l + d − 2) P_{l+1}(t) = (2l + d − 2) t P_l(t) − l P_{l−1}(t),   P_0 = 1, P_1 = t.
    """
    sums = np.empty((lmax + 1, gram.shape[1]))
    sums[0] = gram.shape[0]
    if lmax == 0:
        return sums
    previous, current = np.ones_like(gram), gram.copy()
    sums[1] = current.sum(axis=0)
    for l in range(1, lmax):
        previous *= -l / (l + d - 2)
        previous += ((2 * l + d - 2) / (l + d - 2)) * gram * current
        previous, current = current, previous
        sums[l + 1] = current.sum(axis=0)
    return sums


def empirical_spectrum(points, lmax: int, block: Optional[int] = None) -> np.ndarray:
    """Σ_m ρ_lm² for l = 0..lmax of the empirical measure (1/n) Σ δ_{x_i} (∫ Y² dσ = 1).

    By the addition theorem Σ_m Y_lm(x) Y_lm(y) = N(d,l) P_l(⟨x,y⟩):
    Σ_m ρ_lm² = (N(d,l)/n²) Σ_ij P_l(⟨x_i,x_j⟩). Uniform iid tokens give N(d,l)/n on average.
    """
    x = _as_points(points)
    n, d = x.shape
    lmax = _as_integer(lmax, "lmax", 0, "the maximal degree")
    sums = _pair_sum(x, lambda gram: _gegenbauer_column_sums(gram, lmax, d), block)
    dims = np.array([harmonic_dimension(d, l) for l in range(lmax + 1)], dtype=float)
    return dims * sums / (n * n)


def diagnostics(points, beta, lmax: Optional[int] = None, delta: Optional[float] = None,
                block: Optional[int] = None) -> dict:
    """Scalar diagnostics of one snapshot (see the functions of the same names):

    energy (identity matrices), mean_direction |x̄|, clusters (with threshold cluster_delta),
    close_pairs (fraction of pairs with ⟨x_i,x_j⟩ > 0.999), and spectrum (l = 0..lmax) if lmax is given.
    """
    x = _as_points(points)
    if delta is None:
        delta = cluster_threshold(*x.shape)
    out = {
        "energy": energy(x, beta, block=block),
        "mean_direction": mean_direction(x),
        "clusters": cluster_count(x, delta, block),
        "cluster_delta": float(delta),
        "close_pairs": close_pair_fraction(x, block),
    }
    if lmax is not None:
        out["spectrum"] = empirical_spectrum(x, lmax, block)
    return out
