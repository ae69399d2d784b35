"""The finite-n token system of self-attention on S^{d-1} (theory.md §2).

For tokens x_1..x_n on the unit sphere of R^d, B = QᵀK and P_x = I − xxᵀ:

    SA:   ẋ_i = P_{x_i} Σ_j A_ij V x_j,   A_ij = e^{β⟨x_i,Bx_j⟩} / Σ_k e^{β⟨x_i,Bx_k⟩},
    USA:  ẋ_i = P_{x_i} (1/n) Σ_j e^{β⟨x_i,Bx_j⟩} V x_j,

sums including j = i, for any real β, any d ≥ 2 and any d×d matrices Q, K, V.

The n×n attention matrix is never stored: target rows are processed in blocks, each
row stabilized by its largest exponent, by blocked numpy (memory O(n·d + block·n)) or a
numba-compiled kernel (optional dependency, memory O(n·d), threads over row blocks).
Time stepping is explicit Runge–Kutta in R^d with the tokens renormalized after every
step; `trajectory` yields snapshots one by one, `simulate` collects them. Initial
tokens are iid (uniform or from a grid density), lattices, quantiles of a grid density
or given points. Diagnostics (energy, clustering, empirical harmonic spectrum) are pair
sums evaluated block by block over one triangle of the Gram matrix.
"""
from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import comb
from typing import Callable, Iterator, Optional

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.special import betaincinv, exprel

from .errors import InputError, NumericalFailure
from .model import AttentionModel, square_matrix

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


def _as_integer(value, name: str, minimum: int, meaning: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} = {value!r} is not allowed: {meaning} must be an integer >= {minimum}")
    return int(value)


def _as_block(block) -> Optional[int]:
    return None if block is None else _as_integer(block, "block", 1, "the rows per block")


def _rows_per_block(n: int, block: Optional[int]) -> int:
    return max(1, _BLOCK_ENTRIES // n) if block is None else block


# --------------------------------------------------------------------------- velocity
#
# Every backend computes, for targets x_i, keys k_j and values v_j, the stabilized sums
#
#     S_i = Σ_j e^{⟨x_i,k_j⟩ − m_i} (v_j, 1),   m_i = max_j ⟨x_i,k_j⟩,
#
# from which `_Attention` forms the attention average: S_i[:d]/S_i[d] (SA) or
# S_i[:d] e^{m_i − log n} (USA).

BACKENDS = ("auto", "numpy", "numba")

# Target rows per block of the compiled kernel (default): the block's logits, weights and
# sums (a few KiB) stay in the first-level cache, and its loops are long enough to vectorize.
_COMPILED_ROWS = 128

# Pairs per velocity evaluation from which the compiled kernel uses NUMBA_NUM_THREADS
# threads; below (≲ 2 ms of work) it runs on the calling thread.
_PARALLEL_PAIRS = 2**20

# 1.5·2⁵²: adding and subtracting it rounds |x| < 2⁵¹ to the nearest integer.
_ROUNDING = 6755399441055744.0

numba = None  # imported by `_compiled_kernel` on first use (the import takes 0.1–0.35 s)


def _sums_blocked(targets, keys, values, block: int):
    """(S, m) with m_i = max_j ⟨x_i,k_j⟩, ``block`` rows at a time (numpy; memory O(block·n))."""
    sums = np.empty((len(targets), values.shape[1]))
    top = np.empty(len(targets))
    for start in range(0, len(targets), block):
        rows = slice(start, start + block)
        weights = targets[rows] @ keys.T
        top[rows] = weights.max(axis=1)
        weights -= top[rows, None]
        np.exp(weights, out=weights)
        sums[rows] = weights @ values
    return sums, top


def _sums_symmetric(x, scale: float, values, block: int):
    """S for keys k_j = scale·x_j, scale ≥ 0, with m_i = scale (j = i attains it): the weights
    e^{scale(⟨x_i,x_j⟩ − 1)} form a symmetric matrix, so each pair's exponential is computed once,
    over the upper block triangle, and serves its row and its column (numpy)."""
    n = len(x)
    sums = np.zeros((n, values.shape[1]))
    for start in range(0, n, block):
        rows = slice(start, start + block)
        weights = x[rows] @ x[start:].T
        b = len(weights)
        weights -= 1.0
        weights *= scale
        np.exp(weights, out=weights)
        sums[rows] += weights @ values[start:]
        sums[start + b:] += weights[:, b:].T @ values[rows]
    return sums


def _target_sums(targetsT, keysT, valuesT, top, find_max, block):
    """Sᵀ (shape (d+1, targets)) over all n sources, with m_i = top_i, or, with ``find_max``,
    the row maxima first written into top. Target rows are taken ``block`` at a time, each
    row's sum accumulated over j = 0..n−1 in order.

    Compiled by numba (`_compiled_kernel`). Arrays are transposed (coordinates × tokens) so
    that the loops over the rows of a block vectorize; LLVM's vectorizer is sensitive to their
    form (an index offset in the last loop cost a factor 1.5–1.8, measured). The exponential is
    inline, 2^r·p(z) with r = round(x/ln 2), z = x − r ln 2 (ln 2 in two parts, Cody–Waite), p
    the degree-13 Taylor polynomial of e^z on |z| ≤ ln2/2 (truncation < 5·10⁻¹⁸), 2^r assembled
    from its exponent bits: within 1 ulp of np.exp for −708 ≤ x ≤ 0 (measured), the range of the
    stabilized logits; x < −708 counts as −708 (a weight e^{−708} ≈ 3·10⁻³⁰⁸ beside the row
    maximum's 1); NaN propagates.
    """
    dk, n = keysT.shape
    m = valuesT.shape[0]
    targets = targetsT.shape[1]
    sums = np.zeros((m, targets))
    for a in range((targets + block - 1) // block):
        i0 = a * block
        rows = min(block, targets - i0)
        s = np.empty(block)
        bits = np.empty(block, dtype=np.int64)
        power = bits.view(np.float64)
        t = top[i0:i0 + rows]
        for sweep in range(2 if find_max else 1):
            for j in range(n):
                for i in range(rows):
                    s[i] = 0.0 if find_max and sweep == 0 else -t[i]
                for k in range(dk):
                    c = keysT[k, j]
                    for i in range(rows):
                        s[i] += c * targetsT[k, i0 + i]
                if find_max and sweep == 0:
                    for i in range(rows):
                        top[i0 + i] = max(top[i0 + i], s[i])
                    continue
                for i in range(rows):
                    x = -708.0 if s[i] < -708.0 else s[i]  # NaN propagates
                    y = x * 1.4426950408889634 + _ROUNDING
                    r = y - _ROUNDING
                    z = (x - r * 0.693147180369123816490) - r * 1.90821492927058770002e-10
                    p = 1.0 / 6227020800.0
                    p = p * z + 1.0 / 479001600.0
                    p = p * z + 1.0 / 39916800.0
                    p = p * z + 1.0 / 3628800.0
                    p = p * z + 1.0 / 362880.0
                    p = p * z + 1.0 / 40320.0
                    p = p * z + 1.0 / 5040.0
                    p = p * z + 1.0 / 720.0
                    p = p * z + 1.0 / 120.0
                    p = p * z + 1.0 / 24.0
                    p = p * z + 1.0 / 6.0
                    p = p * z + 0.5
                    p = p * z + 1.0
                    p = p * z + 1.0
                    s[i] = p
                    bits[i] = (np.int64(r) + 1023) << 52
                for i in range(rows):
                    s[i] *= power[i]
                for k in range(m):
                    c = valuesT[k, j]
                    for i in range(rows):
                        sums[k, i0 + i] += c * s[i]
    return sums


@functools.lru_cache(maxsize=None)
def _compiled_kernel():
    """`_target_sums` compiled by numba (machine code cached on disk; releases the GIL),
    or None when numba is not installed."""
    global numba
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(nogil=True, cache=True, fastmath={"contract"})(_target_sums)


@functools.lru_cache(maxsize=None)
def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """The threads of `_compiled_sums`, created once per thread count."""
    return ThreadPoolExecutor(workers, thread_name_prefix="spherepde-attention")


os.register_at_fork(after_in_child=_thread_pool.cache_clear)  # a forked child has none of the threads


def _compiled_sums(targets, keys, values, top, block: int):
    """(S, m) by the compiled kernel; m = ``top`` if given, else the row maxima.

    From _PARALLEL_PAIRS pairs on, the rows are split at block boundaries among
    NUMBA_NUM_THREADS threads (a thread pool: the kernel releases the GIL). Each row's sum
    is the same whatever the split, so results do not depend on the number of threads.
    """
    n = len(targets)
    find_max = top is None
    top = np.full(n, -np.inf) if find_max else np.array(top, dtype=float)
    arrays = tuple(np.ascontiguousarray(a.T) for a in (targets, keys, values))
    kernel = _compiled_kernel()
    blocks = -(-n // block)
    workers = 1 if n * n < _PARALLEL_PAIRS else min(numba.config.NUMBA_NUM_THREADS, blocks)
    if workers == 1:
        return kernel(*arrays, top, find_max, block).T, top
    bounds = np.minimum(block * (blocks * np.arange(workers + 1) // workers), n)
    parts = _thread_pool(workers).map(
        lambda a, b: kernel(np.ascontiguousarray(arrays[0][:, a:b]), *arrays[1:], top[a:b], find_max, block),
        bounds[:-1], bounds[1:],
    )
    return np.hstack(list(parts)).T, top


def numba_available() -> bool:
    """Whether the compiled (numba) backend can be used."""
    return _compiled_kernel() is not None


def _as_backend(backend) -> str:
    """"numpy" or "numba" for backend = "auto" (numba when installed), "numpy" or "numba"."""
    name = str(backend).lower()
    if name not in BACKENDS:
        raise InputError(f"backend = {backend!r} is not allowed: use one of {', '.join(map(repr, BACKENDS))}")
    if name == "numpy":
        return name
    if not numba_available():
        if name == "numba":
            raise InputError(
                "backend = 'numba' is not allowed: numba is not installed "
                "(pip install 'spherepde[numba]'); use 'auto' or 'numpy'"
            )
        return "numpy"
    return "numba"


@dataclass(frozen=True)
class _Attention:
    """The velocity field of theory.md §2 for one choice of β, SA/USA, B = QᵀK and V."""

    beta: float
    normalized: bool
    B: np.ndarray
    V: np.ndarray
    block: Optional[int]
    backend: str

    @classmethod
    def build(cls, beta, model, d, Q, K, V, block, backend="auto"):
        beta = _as_beta(beta)
        normalized = AttentionModel(model, beta, d).normalized
        Q, K, V = (square_matrix(m, name, d) for m, name in ((Q, "Q"), (K, "K"), (V, "V")))
        return cls(beta, normalized, Q.T @ K, V, _as_block(block), _as_backend(backend))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """ẋ at tokens x (rows of unit length): P_x u with u the attention average of V x_j.

        When B = bI with βb ≥ 0 the row maximum of ⟨x_i, βBx_j⟩ is βb for every row (j = i):
        it is known in advance, and the weight matrix is symmetric (used by the numpy path)."""
        n, d = x.shape
        values = np.hstack([x @ self.V.T, np.ones((n, 1))])  # the last column sums the weights
        b = self.B[0, 0]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the caller
            scale = self.beta * b
            symmetric = scale >= 0 and np.array_equal(self.B, b * np.eye(d))
            top = np.full(n, scale) if symmetric else None
            if self.backend == "numba":
                keys = scale * x if symmetric else self.beta * (x @ self.B.T)
                sums, top = _compiled_sums(x, keys, values, top, self.block or _COMPILED_ROWS)
            elif symmetric:
                sums = _sums_symmetric(x, scale, values, _rows_per_block(n, self.block))
            else:
                sums, top = _sums_blocked(x, self.beta * (x @ self.B.T), values, _rows_per_block(n, self.block))
            u = sums[:, :d] / sums[:, d:] if self.normalized else sums[:, :d] * np.exp(top - np.log(n))[:, None]
        return u - np.einsum("ij,ij->i", x, u)[:, None] * x


def attention_field(beta, model: str, d: int, Q=None, K=None, V=None, block: Optional[int] = None,
                    backend: str = "auto"):
    """The velocity field x ↦ ẋ of `velocity` for tokens in R^d, input checked once: a
    callable on (n, d) arrays of unit rows (not checked again, not renormalized); its
    ``backend`` attribute names the backend in use."""
    d = _as_integer(d, "d", 2, "the ambient dimension of S^(d-1)")
    return _Attention.build(beta, model, d, Q, K, V, block, backend)


def velocity(x, beta, model: str = "SA", Q=None, K=None, V=None, block: Optional[int] = None,
             backend: str = "auto"):
    """The velocities ẋ_i of tokens x (shape (n, d)) under SA or USA self-attention.

    SA:  ẋ_i = P_{x_i} Σ_j A_ij V x_j,  A_ij = e^{β⟨x_i,Bx_j⟩} / Σ_k e^{β⟨x_i,Bx_k⟩};
    USA: ẋ_i = P_{x_i} (1/n) Σ_j e^{β⟨x_i,Bx_j⟩} V x_j;  B = QᵀK, matrices default to I.

    ``backend``: "numpy" (blocked, ``block`` target rows at a time, default ⌊2^16/n⌋), "numba"
    (compiled and parallel over blocks of ``block`` rows, default 128), or "auto": numba when
    it is installed. Raises NumericalFailure if a USA velocity exceeds double precision.
    """
    x = _as_points(x, "x")
    v = _Attention.build(beta, model, x.shape[1], Q, K, V, block, backend)(x)
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
    backend: str = "auto",
    progress: Optional[Callable[[float], None]] = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (t, x(t)) for each save time ≥ t0, x(t0) = x0, solving the token ODE of `velocity`.

    method = "rk4": classical RK4, fixed steps ≤ dt (dt required);
    method = "adaptive": Dormand–Prince 5(4), local error per token ≤ rtol (dt = first step).
    Both step in R^d with the field extended 0-homogeneously, F(y) = ẋ(y/|y|), and
    project onto the sphere after every step. Steps are shortened to land exactly on the
    save times. ``block`` and ``backend`` as in `velocity`. ``progress(t)`` is called after
    every step. All input is checked here; NumericalFailure is raised lazily, after the
    snapshots already yielded.
    """
    x = _as_points(x0, "x0")
    field = _Attention.build(beta, model, x.shape[1], Q, K, V, block, backend)
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
    backend: str = "auto",
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
            Q=Q, K=K, V=V, block=block, backend=backend, progress=progress,
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
        proposals = _uniform(rng, batch, d)
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
    """Slices of n rows such that a chunk's (rows, width) arrays hold ≤ 2²² entries."""
    step = max(1, 2**22 // width)
    return (slice(start, start + step) for start in range(0, n, step))


def _quantile_tokens(n: int, nodes, rho) -> np.ndarray:
    """n tokens at quantiles of ρ dσ (ρ the interpolant of `_density_grid`), deterministic.

    S¹: θ_j = F⁻¹((j + ½)/n), F the distribution function of ρ dθ/2π from θ_0.
    S²: the colatitude θ_j = G⁻¹((j + ½)/n), G the distribution of the colatitude under ρ dσ
    (density ρ̄(θ) sin θ/2, ρ̄ the mean of ρ over the ring), and the longitude φ_j = F_j⁻¹(u_j),
    F_j the distribution of ρ(θ_j, ·) over its ring, at the golden fractions
    u_j = frac(j (3 − √5)/2): the Fibonacci lattice carried to ρ by the conditional quantile
    (Rosenblatt) map; for ρ ≡ 1 it is `_lattice`.
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


INITIAL_KINDS = ("uniform", "lattice", "density", "quantile", "points")


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
    "quantile": deterministic, at the quantiles (j + ½)/n of ρ dσ (`_quantile_tokens`), ρ as
    for "density";
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
    if kind in ("density", "quantile"):
        if density is None or grid is None:
            raise InputError(f"kind '{kind}' needs density (grid values) and grid = (theta,) or (theta, phi)")
        nodes, rho = _density_grid(density, grid)
        d_grid = len(nodes) + 1
        if d is not None and d != d_grid:
            raise InputError(
                f"d = {d} does not match a density on a {d_grid - 1}-dimensional grid: use d = {d_grid}"
            )
        if kind == "quantile":
            return _quantile_tokens(n, nodes, rho)
        mean = np.mean(np.maximum(np.asarray(density, dtype=float), 0.0))
        return _rejection_sample(np.random.default_rng(seed), n, d_grid, _density_interpolant(nodes, rho), rho.max(), mean)
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
                block: Optional[int] = None, *, Q=None, K=None, V=None) -> dict:
    """Scalar diagnostics of one snapshot (see the functions of the same names):

    energy (NaN unless QᵀK = V = I, as `model.AttentionModel.has_energy`: for other matrices
    the flow ascends no energy), mean_direction |x̄|, clusters (with threshold cluster_delta,
    default `cluster_threshold`), close_pairs (fraction of pairs with ⟨x_i,x_j⟩ > 0.999), and
    spectrum (l = 0..lmax) if lmax is given.
    """
    x = _as_points(points)
    beta = _as_beta(beta)
    n, d = x.shape
    delta = cluster_threshold(n, d) if delta is None else _as_delta(delta)
    matrices = (square_matrix(m, name, d) for m, name in ((Q, "Q"), (K, "K"), (V, "V")))
    has_energy = AttentionModel("SA", beta, d, *matrices).has_energy  # the name does not matter
    out = {
        "energy": energy(x, beta, block=block) if has_energy else float("nan"),
        "mean_direction": mean_direction(x),
        "clusters": cluster_count(x, delta, block),
        "cluster_delta": float(delta),
        "close_pairs": close_pair_fraction(x, block),
    }
    if lmax is not None:
        out["spectrum"] = empirical_spectrum(x, lmax, block)
    return out
