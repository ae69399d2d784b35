"""The continuity equation ∂ₜρ + div(ρ X[ρ]) = 0, pseudospectrally.

With B = QᵀK the velocity is X = P_x V m/Z (SA) or P_x V m (USA), where
m(x) = ∫ e^{β⟨x,By⟩} y ρ(y) dσ(y) and Z(x) = ∫ e^{β⟨x,By⟩} ρ(y) dσ(y). It is
evaluated at the points of the dealiased grid by one of three exact methods,
chosen from the model by :func:`velocity_field`:

- :class:`ZonalVelocity`, B = bI: the kernel e^{β'⟨x,y⟩}, β' = βb, is diagonal in
  harmonics (Funk–Hecke) and m = (1/β')∇(K∗ρ) + x ∂_β'(K∗ρ) (theory.md §3). For
  V = I this is X = (1/β')∇(K∗ρ) (USA) or (1/β')∇ log(K∗ρ) (SA);
- :class:`QuadratureVelocity`, any B: m and Z by the grid quadrature, O(N²) for N
  grid points;
- :class:`ZeroTemperatureVelocity`, β = ∞ (SA): X^∞ = P_x V Bᵀx/|Bᵀx|.

The product ρX is formed on the grid and its divergence taken spectrally, so that
∫ρ dσ is conserved to round-off whichever method gives X. Only the manifold's small
interface is used (``points``, ``weights``, ``analysis``, ``synthesis``,
``scalar_and_gradient``, ``divergence``, ``speed``).
"""
from __future__ import annotations

import numpy as np

from .errors import NumericalFailure
from .model import AttentionModel

# Entries of one block of the N×N quadrature matrix (512 KiB of doubles): a block stays in
# cache through the product, exponential and product passes over it.
_BLOCK_ENTRIES = 2**16


def tangent_frame(manifold) -> np.ndarray:
    """Cartesian components of the unit tangent vectors e_a in which the manifold gives
    tangent fields (S²: e_θ, e_φ; S¹: e_θ), shape ``(k, *grid_shape, d)``.

    Read off the gradients of the coordinate functions, ∇x_i = P_x e_i, so that
    (∇x_i)_a = ⟨e_a, e_i⟩: exact for the degree-1 fields x_i, and consistent with the
    manifold's own convention for tangent fields by construction.
    """
    x = manifold.points()
    zero = np.zeros(manifold.size, complex)
    frame = np.empty((manifold.d - 1, *manifold.grid_shape, manifold.d))
    for i in range(manifold.d):
        _, gradient = manifold.scalar_and_gradient(zero, manifold.analysis(x[..., i]))
        for a, component in enumerate(gradient):
            frame[a, ..., i] = component
    return frame


def _tangent(frame: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Tangent components ⟨e_a, w⟩ of the grid field w (Cartesian, shape (*grid_shape, d)): P_x w."""
    return tuple(np.einsum("...i,...i->...", e, w) for e in frame)


def _flush_negligible(multiplier: np.ndarray) -> np.ndarray:
    """The multiplier with its entries below 1e-150 of the largest set to 0.

    The kernel's coefficients decay like (β/2)^l/l!: at lmax = 255, β = 9 they reach 1e-300,
    and their products with the coefficients are subnormal numbers, on which every transform
    runs several times slower. Relative to the leading term they are invisible in double
    precision (≤ 1e-150 · max|c|/|c_0|), so zero is the same field.
    """
    return np.where(np.abs(multiplier) < 1e-150 * np.max(np.abs(multiplier)), 0.0, multiplier)


class ZonalVelocity:
    """X[ρ] for B = bI by Funk–Hecke multipliers at β' = βb (theory.md §3).

    With k_l, g_l, q_l = e^{-|β'|} (ĥ_l, ĥ_l/β', ∂_β'ĥ_l) and m̃ = e^{-|β'|} m,

        m̃ = ∇(G̃∗ρ) + x (Q̃∗ρ),   X = P_x V m̃ / (K̃∗ρ) (SA),   X = e^{|β'|} P_x V m̃ (USA).

    In the tangent frame (e_a) at x: (P_x V m̃)_a = ⟨e_a, V e_b⟩ ∂_b(G̃∗ρ) + ⟨e_a, V x⟩ (Q̃∗ρ).
    For V = vI this is v ∇(G̃∗ρ) and the normal part Q̃∗ρ is not needed. Exact for band-limited ρ.
    """

    def __init__(self, manifold, model: AttentionModel):
        self.manifold = manifold
        self.normalized = model.normalized
        degrees = manifold.degrees
        k, g, self.prefactor = model.multipliers(manifold.lmax)
        k, g = _flush_negligible(k), _flush_negligible(g)
        self.kernel_by_degree, self.potential_by_degree = k, g
        self.kernel = k[degrees]
        v = model.value_scale
        if v is not None:
            self.potential = v * g[degrees]
            self.mixing = None
            return
        self.potential = g[degrees]
        self.normal = _flush_negligible(model.normal_multipliers(manifold.lmax))[degrees]
        frame = tangent_frame(manifold)
        Vx = manifold.points() @ model.V.T
        # (⟨e_a, V e_b⟩, ⟨e_a, V x⟩) on the grid
        self.mixing = (np.einsum("a...i,ij,b...j->ab...", frame, model.V, frame), _tangent(frame, Vx))

    def __call__(self, c: np.ndarray):
        """ρ, X (tangent components) and, for SA, K̃∗ρ on the grid (None for USA).

        ρ and X are the manifold's work buffers: valid until the next evaluation."""
        M = self.manifold
        rho, grad = M.scalar_and_gradient(c, c * self.potential)
        if self.mixing is not None:
            A, s = self.mixing
            normal = M.synthesis(c * self.normal)
            grad = tuple(sum(A[a, b] * grad[b] for b in range(len(grad))) + s[a] * normal for a in range(len(grad)))
        if not self.normalized:
            scale, kr = self.prefactor, None
        else:
            kr = M.synthesis(c * self.kernel)
            if np.min(kr) <= 0:  # NaN passes on: the stepper rejects or reports it
                raise NumericalFailure(
                    "K*rho is no longer positive on the grid: the density has lost resolution "
                    f"(min rho = {np.min(rho):.3g}); rerun with a larger lmax"
                )
            scale = np.reciprocal(kr)
        for g in grad:  # in place: work buffers of this evaluation, no allocation per call
            g *= scale
        return rho, grad, kr


class QuadratureVelocity:
    """X[ρ] for any B by the quadrature of the grid (nodes y_j, weights w_j, N of them):

        m(x_i) = e^{s_i} Σ_j w_j ρ(y_j) e^{β⟨x_i,By_j⟩ - s_i} y_j,   Z(x_i) likewise without y_j,

    with s_i = |β||Bᵀx_i| ≥ β⟨x_i,By_j⟩ for every y_j, so that every exponential is ≤ 1
    (log-sum-exp with the known maximum): no overflow at any β. SA takes the quotient, in
    which e^{s_i} cancels; USA applies it (finite for |β|‖B‖ ≤ 700). The grid integrates
    degree 3·lmax exactly and the integrand has degree lmax + 1 times the kernel's, so the
    error is the kernel's Funk–Hecke tail beyond degree 2·lmax (negligible once lmax
    resolves the kernel at concentration |β|‖B‖). Targets are processed in blocks: one
    matrix product gives the exponents β⟨Bᵀx_i, y_j⟩ - s_i, one in-place exp, one product
    with the weighted values (V y_j, 1). Cost O(N²(d + 1)) per evaluation, dominated by the
    N² exponentials.
    """

    def __init__(self, manifold, model: AttentionModel, block_entries: int = _BLOCK_ENTRIES):
        self.manifold = manifold
        self.normalized = model.normalized
        d = manifold.d
        y = manifold.points().reshape(-1, d)
        n = len(y)
        ones = np.ones((n, 1))
        u = model.beta * (y @ model.B)  # rows βBᵀx_i
        self.shift = np.abs(model.beta) * np.linalg.norm(y @ model.B, axis=1)
        self.exponents = np.hstack([u, -self.shift[:, None]])  # rows (βBᵀx_i, -s_i)
        self.sources = np.hstack([y, ones]).T  # columns (y_j, 1)
        self.values = np.hstack([y @ model.V.T, ones])  # rows (V y_j, 1)
        self.weights = manifold.weights.ravel()
        self.frame = tangent_frame(manifold)
        self._block = np.empty((max(1, block_entries // n), n))
        self._sums = np.empty((n, d + 1))

    def grid_velocity(self, rho: np.ndarray) -> tuple[np.ndarray, ...]:
        """X (tangent components) at the grid points for the grid values ρ(y_j) of the density.

        This is the n-token velocity of the measure Σ_j w_j ρ(y_j) δ_{y_j} at the grid points.
        """
        weighted = self.values * (self.weights * rho.ravel())[:, None]
        sums, block = self._sums, self._block
        for start in range(0, len(sums), len(block)):
            rows = slice(start, start + len(block))
            e = block[: len(sums[rows])]
            np.matmul(self.exponents[rows], self.sources, out=e)
            np.exp(e, out=e)
            np.matmul(e, weighted, out=sums[rows])
        Vm, Z = sums[:, :-1], sums[:, -1:]  # e^{-s_i} (V m(x_i), Z(x_i))
        if self.normalized:
            if np.min(Z) <= 0:  # NaN passes on: the stepper rejects or reports it
                raise NumericalFailure(
                    "the attention normalizer Z = ∫ e^{β<x,By>} ρ(y) dσ(y) is no longer positive on the grid: "
                    f"the density has lost resolution (min rho = {np.min(rho):.3g}); rerun with a larger lmax"
                )
            Vm = Vm / Z
        else:
            Vm = Vm * np.exp(self.shift)[:, None]
        return _tangent(self.frame, Vm.reshape(*self.manifold.grid_shape, self.manifold.d))

    def __call__(self, c: np.ndarray):
        """ρ and X (tangent components) on the grid, and None."""
        rho = self.manifold.synthesis(c)
        return rho, self.grid_velocity(rho), None


class ZeroTemperatureVelocity:
    """X^∞(x) = P_x V Bᵀx/|Bᵀx| (SA at β = ∞, theory.md §6): independent of ρ, computed once."""

    def __init__(self, manifold, model: AttentionModel):
        self.manifold = manifold
        u = manifold.points() @ model.B  # Bᵀx
        self.X = _tangent(tangent_frame(manifold), (u / np.linalg.norm(u, axis=-1, keepdims=True)) @ model.V.T)

    def __call__(self, c: np.ndarray):
        """ρ and X^∞ on the grid, and None."""
        return self.manifold.synthesis(c), self.X, None


def velocity_field(manifold, model: AttentionModel):
    """The evaluator of X[ρ] for the model: zero temperature, zonal (B = bI) or quadrature."""
    if model.zero_temperature:
        return ZeroTemperatureVelocity(manifold, model)
    if model.kernel_beta is not None:
        return ZonalVelocity(manifold, model)
    return QuadratureVelocity(manifold, model)


class ContinuityEquation:
    """Right-hand side dc/dt = -div(ρX[ρ]) in the manifold's spectral coefficients.

    ``velocity`` evaluates X[ρ] on the grid (default: :func:`velocity_field` of the model).
    """

    def __init__(self, manifold, model: AttentionModel, velocity=None):
        if model.d != manifold.d:
            raise ValueError(f"model dimension {model.d} does not match the manifold's {manifold.d}")
        self.manifold = manifold
        self.model = model
        self.attention = velocity if velocity is not None else velocity_field(manifold, model)
        self._last = None
        self._flux = tuple(np.empty(manifold.grid_shape) for _ in range(manifold.d - 1))

    def velocity(self, c: np.ndarray):
        """ρ, X[ρ] and, for SA with a zonal kernel, K̃∗ρ on the grid (None otherwise); the arrays may
        be work buffers, overwritten by the next evaluation (copy what must outlive it)."""
        return self.attention(c)

    def __call__(self, t: float, c: np.ndarray) -> np.ndarray:
        rho, X, _ = self.attention(c)
        self._last = (rho, X)
        return -self.manifold.divergence(tuple(np.multiply(rho, v, out=f) for v, f in zip(X, self._flux)))

    def density_range(self) -> tuple[float, float]:
        """(min ρ, max ρ) on the grid at the last evaluation."""
        rho = self._last[0]
        return float(np.min(rho)), float(np.max(rho))

    def max_step(self) -> float:
        """Advective step limit 1/(lmax · max|X|) at the last evaluation (∞ at rest or before any)."""
        if self._last is None:
            return np.inf
        rate = self.manifold.lmax * float(np.max(self.manifold.speed(self._last[1])))
        return np.inf if rate == 0 else 1.0 / rate
