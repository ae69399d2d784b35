"""The continuity equation ∂ₜρ + div(ρ X[ρ]) = 0, pseudospectrally, on any registered manifold.

With B = QᵀK the velocity is X = P_x V m/Z (SA) or P_x V m (USA), where
m(x) = ∫ e^{β⟨x,By⟩} y ρ(y) dσ(y) and Z(x) = ∫ e^{β⟨x,By⟩} ρ(y) dσ(y) (docs/mathematics.md,
"The mean-field equation"). It is evaluated at the points of the dealiased grid by one of three
exact methods, chosen from the model by :func:`velocity_field`:

- :class:`FunkHeckeVelocity`, B = bI: the kernel e^{β'⟨x,y⟩}, β' = βb, is diagonal in
  harmonics (Funk–Hecke) and m = (1/β')∇(K∗ρ) + x ∂_β'(K∗ρ). For V = I this is
  X = (1/β')∇(K∗ρ) (USA) or (1/β')∇ log(K∗ρ) (SA);
- :class:`QuadratureVelocity`, any B: m and Z by the grid quadrature, the attention sums of the
  weighted grid points (:class:`spherepde.kernels.DirectSum`), O(N²) for N grid points;
- :class:`ZeroTemperatureVelocity`, β = ∞ (SA): X^∞ = P_x V Bᵀx/|Bᵀx|.

The product ρX is formed on the grid and its divergence taken spectrally, so that
∫ρ dσ is conserved to round-off whichever method gives X. Only the interface of
:class:`spherepde.manifolds.Manifold` is used.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import NumericalFailure
from .kernels import DirectSum, attention_average, flush_negligible
from .manifolds import Manifold
from .model import AttentionModel


#: Funk–Hecke multipliers below this fraction of the largest are dropped when the kernel's band is chosen:
#: their terms are round-off beside the leading one.
BAND_TOL = 1e-16


def _band(*multipliers: np.ndarray | None) -> int:
    """The largest degree at which one of the multipliers (None: absent) is at least BAND_TOL of its largest."""
    def top(m):
        big = np.abs(m) >= BAND_TOL * np.max(np.abs(m))
        return int(np.flatnonzero(big)[-1]) if np.any(big) else 0
    return max(top(m) for m in multipliers if m is not None)


def _kernel_multipliers(model: AttentionModel, lmax: int):
    """(k_l, g_l, q_l or None, prefactor) of :meth:`AttentionModel.multipliers` to degree lmax, negligible ones
    flushed to zero; q_l (the normal part) only when V is not a multiple of the identity."""
    k, g, prefactor = model.multipliers(lmax)
    q = None if model.value_scale is not None else flush_negligible(model.normal_multipliers(lmax))
    return flush_negligible(k), flush_negligible(g), q, prefactor


def kernel_band(model: AttentionModel, lmax: int) -> int:
    """The kernel's band L ≤ lmax (B = bI): the largest degree of K∗ρ, ∇(K∗ρ) and the normal part that is not
    round-off beside the leading term (multipliers ≥ BAND_TOL of the largest)."""
    return _band(*_kernel_multipliers(model, lmax)[:3])


def grid_degree(model: AttentionModel, lmax: int) -> int | None:
    """The degree the grid's quadrature must integrate exactly for the flux of a band-limited ρ (degree lmax)
    to be analysed without aliasing, when the flux is a polynomial: USA with B = bI and V = vI, where
    ρX = v ρ ∇(G̃∗ρ) has degree ≤ lmax + L (L the kernel's band, :func:`kernel_band`) and its analysis
    against degree lmax needs 2·lmax + L (docs/mathematics.md, "What the kernel lets through"). None
    otherwise: SA's ∇(K∗ρ)/(K∗ρ), the frame terms of a general V, the quadrature and zero-temperature
    velocities are not band limited, and the grid of the 3/2 rule (exact to 3·lmax) is kept."""
    if model.normalized or model.kernel_beta is None or model.value_scale is None:
        return None
    return 2 * lmax + kernel_band(model, lmax)


class FunkHeckeVelocity:
    """X[ρ] for B = bI by Funk–Hecke multipliers at β' = βb.

    With k_l, g_l, q_l = e^{-|β'|} (ĥ_l, ĥ_l/β', ∂_β'ĥ_l) and m̃ = e^{-|β'|} m,

        m̃ = ∇(G̃∗ρ) + x (Q̃∗ρ),   X = P_x V m̃ / (K̃∗ρ) (SA),   X = e^{|β'|} P_x V m̃ (USA).

    In the tangent frame (e_a) at x: (P_x V m̃)_a = ⟨e_a, V e_b⟩ ∂_b(G̃∗ρ) + ⟨e_a, V x⟩ (Q̃∗ρ).
    For V = vI this is v ∇(G̃∗ρ) and the normal part Q̃∗ρ is not needed. Exact for band-limited ρ.

    G̃∗ρ, K̃∗ρ and Q̃∗ρ have no degree above the kernel's band L (multipliers below BAND_TOL of the
    largest are dropped: round-off beside the leading term). Where the manifold has a cheaper transform
    truncated at L on the same grid (:meth:`~spherepde.manifolds.Manifold.truncated`: the sphere), they are
    synthesized with it, and the full-size work per evaluation is the synthesis of ρ alone.
    """

    def __init__(self, manifold: Manifold, model: AttentionModel):
        self.manifold = manifold
        self.normalized = model.normalized
        self.kernel_log_scale = model.kernel_log_scale  # K̃∗ρ = K∗ρ / ĥ_0
        k, g, q, prefactor = _kernel_multipliers(model, manifold.lmax)
        self.kernel_by_degree, self.potential_by_degree = k, g
        v = model.value_scale
        # the velocity's prefactor (1 for SA; ĥ_0 e^{|β'|-s} for USA) enters the multipliers of m̃, not the grid
        g, q = prefactor * g, None if q is None else prefactor * q
        self.band = manifold.truncated(_band(k, g, q))
        self.select: np.ndarray | None = None
        degrees = manifold.degrees
        if self.band is not None:  # every multiplier on the truncated layout, coefficients selected from c
            self.select = manifold.coefficient_indices(self.band)
            degrees = self.band.degrees
        self.kernel = k[degrees]
        if v is not None:
            self.potential = v * g[degrees]
            self.mixing = None
            return
        assert q is not None  # V is not a multiple of the identity
        self.potential = g[degrees]
        self.normal = q[degrees]
        frame = manifold.tangent_frame
        Vx = manifold.points() @ model.V.T
        # (⟨e_a, V e_b⟩, ⟨e_a, V x⟩) on the grid
        self.mixing = (np.einsum("a...i,ij,b...j->ab...", frame, model.V, frame), manifold.tangent(Vx))

    def __call__(self, c: np.ndarray):
        """ρ, X (tangent components) and, for SA, K̃∗ρ on the grid (None for USA).

        ρ and X are the manifold's work buffers: valid until the next evaluation."""
        M = self.manifold
        if self.band is None:
            low, kernel_space = c, M
            rho, grad = M.scalar_and_gradient(c, c * self.potential)
        else:  # ρ at full size, the kernel's fields at its band
            low, kernel_space = c[self.select], self.band
            rho = M.synthesis(c)
            grad = self.band.gradient(low * self.potential)
        if self.mixing is not None:
            A, s = self.mixing
            normal = kernel_space.synthesis(low * self.normal)
            grad = tuple(sum(A[a, b] * grad[b] for b in range(len(grad))) + s[a] * normal for a in range(len(grad)))
        if not self.normalized:
            return rho, grad, None
        kr = kernel_space.synthesis(low * self.kernel)
        if np.min(kr[M.significant_points]) <= 0:  # NaN passes on: the stepper rejects or reports it
            raise NumericalFailure(
                "K*rho is no longer positive on the grid: the density has lost resolution "
                f"(min rho = {np.min(rho):.3g}); rerun with a larger lmax"
            )
        for g in grad:  # in place: work buffers of this evaluation, no allocation per call
            np.divide(g, kr, out=g)
        return rho, grad, kr


class QuadratureVelocity:
    """X[ρ] for any B by the quadrature of the grid (nodes y_j, weights w_j, N of them): the
    velocity of the weighted point measure Σ_j w_j ρ(y_j) δ_{y_j} at the grid points,

        m(x_i) = Σ_j w_j ρ(y_j) e^{β⟨x_i,By_j⟩} y_j,   Z(x_i) likewise without y_j,

    by the stabilized sums of :class:`spherepde.kernels.DirectSum` (log-sum-exp: no overflow at
    any β; SA takes the quotient, USA applies the stabilizing factor, finite for |β|‖B‖ ≤ 700).
    The grid integrates degree 3·lmax exactly and the integrand has degree lmax + 1 times the
    kernel's, so the error is the kernel's Funk–Hecke tail beyond degree 2·lmax (negligible once
    lmax resolves the kernel at concentration |β|‖B‖). Cost O(N²(d + 1)) per evaluation,
    dominated by the N² exponentials.
    """

    def __init__(self, manifold: Manifold, model: AttentionModel, block: int | None = None):
        self.manifold = manifold
        self.model = model
        self.points = manifold.points().reshape(-1, manifold.d)
        self.weights = manifold.weights.ravel()
        self.sums = DirectSum(model, "numpy", block)
        manifold.tangent_frame  # computed now: computing it later would overwrite the manifold's work buffers

    def grid_velocity(self, rho: np.ndarray) -> tuple[np.ndarray, ...]:
        """X (tangent components) at the grid points for the grid values ρ(y_j) of the density."""
        sums, top = self.sums(self.points, self.points, self.weights * rho.ravel())
        if self.model.normalized and np.min(sums[:, -1]) <= 0:  # NaN passes on: the stepper rejects or reports it
            raise NumericalFailure(
                "the attention normalizer Z = ∫ e^{β<x,By>} ρ(y) dσ(y) is no longer positive on the grid: "
                f"the density has lost resolution (min rho = {np.min(rho):.3g}); rerun with a larger lmax"
            )
        M = self.manifold
        return M.tangent(attention_average(self.model, sums, top).reshape(*M.grid_shape, M.d))

    def __call__(self, c: np.ndarray):
        """ρ and X (tangent components) on the grid, and None."""
        rho = self.manifold.synthesis(c)
        return rho, self.grid_velocity(rho), None


class ZeroTemperatureVelocity:
    """X^∞(x) = P_x V Bᵀx/|Bᵀx| (SA at β = ∞): independent of ρ, computed once."""

    def __init__(self, manifold: Manifold, model: AttentionModel):
        self.manifold = manifold
        u = manifold.points() @ model.B  # Bᵀx
        self.X = manifold.tangent((u / np.linalg.norm(u, axis=-1, keepdims=True)) @ model.V.T)

    def __call__(self, c: np.ndarray):
        """ρ and X^∞ on the grid, and None."""
        return self.manifold.synthesis(c), self.X, None


def velocity_field(manifold: Manifold, model: AttentionModel):
    """The evaluator of X[ρ] for the model: zero temperature, Funk–Hecke (B = bI) or quadrature."""
    if model.zero_temperature:
        return ZeroTemperatureVelocity(manifold, model)
    if model.kernel_beta is not None:
        return FunkHeckeVelocity(manifold, model)
    return QuadratureVelocity(manifold, model)


class ContinuityEquation:
    """Right-hand side dc/dt = -div(ρX[ρ]) in the manifold's spectral coefficients.

    ``velocity`` evaluates X[ρ] on the grid (default: :func:`velocity_field` of the model).
    """

    def __init__(self, manifold: Manifold, model: AttentionModel, velocity=None):
        if model.d != manifold.d:
            raise ValueError(f"model dimension {model.d} does not match the manifold's {manifold.d}")
        self.manifold = manifold
        self.model = model
        self.attention = velocity if velocity is not None else velocity_field(manifold, model)
        self._last: tuple | None = None
        self._range: tuple[float, float] | None = None
        self._flux: tuple | None = None  # work buffers for ρX, one per tangent component

    def velocity(self, c: np.ndarray):
        """ρ, X[ρ] and, for SA with a zonal kernel, K̃∗ρ on the grid (None otherwise); the arrays may
        be work buffers, overwritten by the next evaluation (copy what must outlive it)."""
        return self.attention(c)

    def __call__(self, t: float, c: np.ndarray) -> np.ndarray:
        rho, X, _ = self.attention(c)
        self._last, self._range = (rho, X), None
        if self._flux is None:
            self._flux = tuple(np.empty(self.manifold.grid_shape) for _ in X)
        return -self.manifold.divergence(tuple(np.multiply(rho, v, out=f) for v, f in zip(X, self._flux)))

    def density_range(self) -> tuple[float, float]:
        """(min ρ, max ρ) on the grid at the last evaluation."""
        if self._last is None:
            raise RuntimeError("no evaluation yet")
        if self._range is None:  # once per evaluation, however often it is asked
            rho = self._last[0][self.manifold.significant_points]
            self._range = float(np.min(rho)), float(np.max(rho))
        return self._range

    def max_step(self) -> float:
        """Advective step limit 1/(lmax · max|X|) at the last evaluation (∞ at rest or before any)."""
        if self._last is None:
            return np.inf
        rate = self.manifold.lmax * math.sqrt(float(np.max(self.manifold.squared_speed(self._last[1]))))
        return np.inf if rate == 0 else 1.0 / rate
