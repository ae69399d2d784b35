"""Attention sums over weighted point measures: the one computation behind the PDE's quadrature
path, the weighted points that continue a run past its resolution, and the tokens.

For targets x_i and a weighted point measure μ = Σ_j w_j δ_{y_j} on S^{d-1} the stabilized sums

    S_i = Σ_j w_j e^{β⟨x_i,By_j⟩ - m_i} (V y_j, 1),   m_i = max_j β⟨x_i,By_j⟩,

give the velocity of μ at x_i (docs/mathematics.md, "Weighted points"):

    SA:  X[μ](x_i) = P_{x_i} S_i[:d] / S_i[d],     USA:  X[μ](x_i) = P_{x_i} S_i[:d] e^{m_i - s},

s the model's clock shift. Tokens are the case w_j = 1/n; a density ρ on a quadrature grid is the
case y_j = nodes, w_j = quadrature weight × ρ(y_j). Weights may be signed (a density's round-off);
the stabilization uses the largest exponent, not the largest term.

Direct backends (any B, any d; cost O(n_targets · n_sources)): "numpy" (blocked; memory
O(n·d + block·n)) and "numba" (compiled, threads over row blocks; optional dependency). The
n × n matrix of weights is never stored.
"""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .harmonics import kernel_bandwidth
from .model import AttentionModel, scalar_multiple

#: Entries of one block of an attention matrix (512 KiB of doubles): a block stays in cache through
#: the product, max, exponential and product passes over it.
BLOCK_ENTRIES = 2**16

#: Entries of the largest temporary array of a chunked computation (32 MiB of doubles).
CHUNK_ENTRIES = 2**22

DIRECT_BACKENDS = ("numpy", "numba")

# Target rows per block of the compiled kernel (default): the block's logits, weights and
# sums (a few KiB) stay in the first-level cache, and its loops are long enough to vectorize.
_COMPILED_ROWS = 128

# Pairs per evaluation from which the compiled kernel uses NUMBA_NUM_THREADS threads; below
# (≲ 2 ms of work) it runs on the calling thread.
_PARALLEL_PAIRS = 2**20

# 1.5·2⁵²: adding and subtracting it rounds |x| < 2⁵¹ to the nearest integer.
_ROUNDING = 6755399441055744.0

numba = None  # imported by `_compiled_kernel` on first use (the import takes 0.1–0.35 s)


def rows_per_block(n: int, block: int | None) -> int:
    """Target rows per numpy block for n sources: ``block``, or BLOCK_ENTRIES // n."""
    return max(1, BLOCK_ENTRIES // max(n, 1)) if block is None else block


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
    """S for keys k_j = scale·x_j (targets = sources), scale ≥ 0, with m_i = scale (j = i attains it):
    the exponentials e^{scale(⟨x_i,x_j⟩ − 1)} form a symmetric matrix, so each pair's is computed once,
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

    Compiled by numba (`_compiled_kernel`). Arrays are transposed (coordinates × points) so
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
    threads = numba.config.NUMBA_NUM_THREADS if numba is not None else 1
    workers = 1 if n * len(keys) < _PARALLEL_PAIRS else min(threads, blocks)
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


def direct_backend(name: str) -> str:
    """The direct backend to use for ``name`` = "numpy", "numba" or "auto" (numba when installed)."""
    if name == "numba" and not numba_available():
        raise InputError(
            "backend = 'numba' is not allowed: numba is not installed (pip install 'spherepde[numba]'); "
            "use 'auto' or 'numpy'"
        )
    if name == "auto":
        return "numba" if numba_available() else "numpy"
    return name


@dataclass(frozen=True, eq=False)
class DirectSum:
    """S_i and m_i of the module docstring for the model's β, B = QᵀK and V, by a direct backend."""

    model: AttentionModel
    backend: str = "numpy"
    block: int | None = None

    def __call__(self, targets: np.ndarray, sources: np.ndarray, weights: np.ndarray):
        """(S, m) for targets (n_t, d) and sources (n, d) with weights (n,).

        When ``targets is sources`` and B = bI with βb ≥ 0, m_i = βb is known in advance (j = i
        attains it) and the exponentials are symmetric (used by the numpy backend). The weights
        enter S divided by their largest modulus w*, and m carries log w* instead, so that
        S e^m does not overflow before the weights have scaled it down (tokens: w* = 1/n)."""
        model = self.model
        largest = float(np.max(np.abs(weights))) or 1.0
        values = np.hstack([sources @ model.V.T, np.ones((len(sources), 1))]) * (weights / largest)[:, None]
        sums, top = self._sums(targets, sources, values)
        return sums, top + np.log(largest)

    def _sums(self, targets, sources, values):
        model = self.model
        b = scalar_multiple(model.B)
        scale = None if b is None else model.beta * b
        symmetric = targets is sources and scale is not None and scale >= 0
        top = np.full(len(targets), scale) if symmetric else None
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the caller
            if self.backend == "numba":
                keys = scale * sources if scale is not None else model.beta * (sources @ model.B.T)
                return _compiled_sums(targets, keys, values, top, self.block or _COMPILED_ROWS)
            block = rows_per_block(len(sources), self.block)
            if symmetric:
                return _sums_symmetric(sources, scale, values, block), top
            return _sums_blocked(targets, model.beta * (sources @ model.B.T), values, block)


def attention_average(model: AttentionModel, sums: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The attention average (Cartesian, before the projection P_x) from the sums (S, m):
    S[:d]/S[d] (SA) or S[:d] e^{m - s} (USA, s the clock shift)."""
    d = sums.shape[1] - 1
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if model.normalized:
            return sums[:, :d] / sums[:, d:]
        return sums[:, :d] * np.exp(top - model.clock_shift)[:, None]


def project(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """P_x u = u - ⟨x, u⟩ x, row by row."""
    return u - np.einsum("ij,ij->i", x, u)[:, None] * x


@dataclass(frozen=True, eq=False)
class DirectVelocity:
    """X[μ] at the points of μ = Σ_j w_j δ_{x_j} by a direct backend (any B, any d): O(n²)."""

    model: AttentionModel
    backend: str = "numpy"
    block: int | None = None

    def __call__(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        sums, top = DirectSum(self.model, self.backend, self.block)(x, x, w)
        return project(x, attention_average(self.model, sums, top))


@dataclass(frozen=True, eq=False)
class PairwiseVelocity:
    """X[μ] at the points of μ = Σ_j w_j δ_{x_j} with every term projected before it is summed (any B, V):

        X_i = Σ_j w_j e^{a_ij − m_i} P_{x_i} V x_j / Σ_j w_j e^{a_ij − m_i}   (SA),
        X_i = e^{m_i − s} Σ_j w_j e^{a_ij − m_i} P_{x_i} V x_j                  (USA),

    a_ij = β⟨x_i, B x_j⟩, m_i = max_j a_ij, s the clock shift. :class:`DirectVelocity` projects the sum, whose
    self term w_i V x_i is radial: the tangent part then carries a round-off error of 1e-16 w_i, which swamps
    attractions weaker than that — those between metastable clusters a gap Δ apart once β(1 − cos Δ) > 35.
    Here each tangent term keeps its relative accuracy (P_{x_i} x_i = 0 exactly for V = vI). O(n² d) work, n²
    memory: for few points (:func:`spherepde.lagrangian.few_point_velocity`)."""

    model: AttentionModel

    def __call__(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        model = self.model
        a = x @ (model.beta * (x @ model.B.T)).T
        top = a.max(axis=1)
        e = w[None, :] * np.exp(a - top[:, None])
        vx = x @ model.V.T
        c = x @ vx.T  # ⟨x_i, V x_j⟩
        diagonal = np.arange(len(x))
        self_terms_vanish = scalar_multiple(model.V) is not None  # P_{x_i} v x_i = 0
        u = np.empty_like(x)
        for k in range(x.shape[1]):  # one coordinate at a time: n² work, no (n, n, d) array
            term = vx[None, :, k] - c * x[:, k, None]  # the k-th coordinate of P_{x_i} V x_j
            if self_terms_vanish:
                term[diagonal, diagonal] = 0.0
            u[:, k] = np.einsum("ij,ij->i", e, term)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            u = u / e.sum(axis=1)[:, None] if model.normalized else u * np.exp(top - model.clock_shift)[:, None]
        return project(x, u)  # removes the radial round-off of the terms, not their tangent parts


#: Relative size ĥ_l/ĥ_0 below which the spectral sums drop the kernel's degrees (its band limit at this
#: tolerance is about 8√β on S²); with the transforms' 1e-13 it makes the harmonic sums exact to 2e-14 of the
#: kernel's peak (see DIRECT_ROW_FRACTION for what that means for the velocity).
SPECTRAL_TOL = 1e-14


def flush_negligible(multiplier: np.ndarray) -> np.ndarray:
    """The multiplier with its entries below 1e-150 of the largest set to 0.

    The kernel's coefficients decay like (β/2)^l/l!: at lmax = 255, β = 9 they reach 1e-300,
    and their products with the coefficients are subnormal numbers, on which every transform
    runs several times slower. Relative to the leading term they are invisible in double
    precision (≤ 1e-150 · max|c|/|c_0|), so zero is the same field.
    """
    return np.where(np.abs(multiplier) < 1e-150 * np.max(np.abs(multiplier)), 0.0, multiplier)


def kernel_degree(model: AttentionModel) -> int:
    """L: the degree beyond which the kernel's Funk–Hecke coefficients are below SPECTRAL_TOL of ĥ_0, at its
    largest concentration |β|‖B‖₂ (0 at zero temperature, where the velocity does not depend on the measure)."""
    return 0 if model.zero_temperature else kernel_bandwidth(model.concentration, model.d, SPECTRAL_TOL)


#: Rows i whose kernel sum ζ_i = Σ_j w_j e^{β'⟨x_i,x_j⟩ - |β'|} / Σ_j |w_j| (the sum relative to the kernel's
#: peak) is below this fraction take the direct sum in :class:`SpectralVelocity`. The harmonic sums carry an
#: absolute error of at most 2e-14 of the peak (measured over β' from -50 to 200, d = 2, 3, spread, capped and
#: isolated points), which the SA quotient divides by ζ_i: ≤ 2e-11 ‖V‖₂ from this fraction on. Small ζ_i occur
#: for repulsive kernels with the mass away from the antipode (down to e^{-2|β'|}) and for isolated points.
DIRECT_ROW_FRACTION = 1e-3


def spectral_gap(model: AttentionModel) -> str:
    """'' when :class:`SpectralVelocity` serves points of S^{d-1} under ``model``, otherwise why not (one clause)."""
    if model.zero_temperature:
        return "the zero-temperature model"
    if model.kernel_beta is None:
        return "Q^T K is not a multiple of the identity"
    if model.d not in (2, 3):
        return f"d = {model.d} (harmonic sums over points exist for d = 2 and 3)"
    return ""


def spectral_degree(model: AttentionModel) -> int:
    """The truncation degree of :class:`SpectralVelocity` for ``model``: its kernel's band, at least 2."""
    return max(2, kernel_degree(model))


class SpectralVelocity:
    """X[μ] at the points of μ = Σ_j w_j δ_{x_j} for B = bI (any V), by harmonic sums (docs/mathematics.md,
    "Weighted points"): with c the coefficients of μ on ``manifold`` (whose lmax is the kernel's band at
    SPECTRAL_TOL) and k_l, g_l, q_l = (ĥ_l, ĥ_l/β', ∂_β'ĥ_l)/ĥ_0 at β' = βb,

        m̃(x) = ∇(Σ g_l c_l Y_l)(x) + x Σ q_l c_l Y_l(x),   Z̃(x) = Σ k_l c_l Y_l(x),
        SA: X = P_x V m̃ / Z̃,   USA: X = ĥ_0 e^{-s} P_x V m̃,

    three non-uniform transforms (two for V = vI) of cost O(n + L² log L) instead of the O(n²) direct sum.
    ``manifold`` is any object with :meth:`~spherepde.manifolds.Manifold.locate`, ``degrees`` and ``lmax``.

    With ``direct`` (a :class:`DirectSum` of the model), the rows whose kernel sum is below DIRECT_ROW_FRACTION
    of its peak, where the harmonic sums have lost their relative accuracy, take the direct sum instead
    (cost O(n) a row). For SA that is checked everywhere (Z̃ is at hand); for USA, whose speeds are relative
    to the peak, only for repulsive kernels, the one case where every row's sum can be that small.
    """

    def __init__(self, model: AttentionModel, manifold, direct: DirectSum | None = None):
        if model.kernel_beta is None:
            raise ValueError("the spectral sums need B = bI and a finite beta")
        self.model, self.manifold, self.direct = model, manifold, direct
        degrees = manifold.degrees
        k, g, self.prefactor = model.multipliers(manifold.lmax)
        self.kernel = flush_negligible(k)[degrees]
        v = model.value_scale
        self.potential = flush_negligible(g)[degrees] * (1.0 if v is None else v)
        self.normal = None if v is not None else flush_negligible(model.normal_multipliers(manifold.lmax))[degrees]
        self._check_rows = direct is not None and (model.normalized or model.kernel_beta < 0)
        self._peak = math.exp(abs(model.kernel_beta) - model.kernel_log_scale)  # Z̃ at the kernel's peak, unit mass

    def __call__(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.evaluate(x, w)[0]

    def evaluate(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """X at the points, and for SA the scaled normalizer Z̃ = K∗μ/ĥ_0 there (None for USA)."""
        points = self.manifold.locate(x)
        c = points.coefficients(w)
        u = points.gradient(c * self.potential)
        if self.normal is not None:
            u = project(x, (u + x * points.synthesis(c * self.normal)[:, None]) @ self.model.V.T)
        if not (self.model.normalized or self._check_rows):
            return u * self.prefactor, None
        z = points.synthesis(c * self.kernel)
        X = u / z[:, None] if self.model.normalized else u * self.prefactor
        if self._check_rows:
            self._sum_directly(x, w, X, z)
        return X, z if self.model.normalized else None

    def _sum_directly(self, x, w, X, z) -> None:
        """Overwrite X (and Z̃) at the rows with Z̃ < DIRECT_ROW_FRACTION of its peak by the direct sum."""
        assert self.direct is not None
        rows = np.flatnonzero(z < DIRECT_ROW_FRACTION * self._peak * np.sum(np.abs(w)))
        if rows.size:
            targets = x[rows]
            sums, top = self.direct(targets, x, w)
            X[rows] = project(targets, attention_average(self.model, sums, top))
            with np.errstate(over="ignore", under="ignore"):
                z[rows] = sums[:, -1] * np.exp(top - self.model.kernel_log_scale)


@dataclass(frozen=True, eq=False)
class ZeroTemperaturePointVelocity:
    """X^∞(x) = P_x V Bᵀx/|Bᵀx| (SA at β = ∞): independent of the measure."""

    model: AttentionModel

    def __call__(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        u = x @ self.model.B
        return project(x, (u / np.linalg.norm(u, axis=1, keepdims=True)) @ self.model.V.T)
