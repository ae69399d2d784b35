"""The continuity equation ∂ₜρ + div(ρ X[ρ]) = 0, pseudospectrally.

With the scaled multipliers of :meth:`AttentionModel.multipliers`
(k_l = e^{-|β|} ĥ_l, g_l = e^{-|β|} ĥ_l/β) the velocity is

    USA:  X = e^{|β|} ∇(G̃∗ρ),        SA:  X = ∇(G̃∗ρ) / (K̃∗ρ),

exactly (1/β)∇(K∗ρ) and (1/β)∇ log(K∗ρ), including the limit β → 0. The
potential is differentiated in spectral space, the products ρ·X (and the
quotient for SA, which is not band limited) are formed on the dealiased grid,
and the flux divergence is taken spectrally, so that ∫ρ dσ is conserved to
round-off. The solver only uses the manifold's small interface
(``scalar_and_gradient``, ``synthesis``, ``divergence``, ``speed``).
"""
from __future__ import annotations

import numpy as np

from .errors import NumericalFailure
from .model import AttentionModel


class ContinuityEquation:
    """Right-hand side dc/dt = -div(ρX[ρ]) in the manifold's spectral coefficients."""

    def __init__(self, manifold, model: AttentionModel):
        if model.d != manifold.d:
            raise ValueError(f"model dimension {model.d} does not match the manifold's {manifold.d}")
        self.manifold = manifold
        self.model = model
        k, g, self.prefactor = model.multipliers(manifold.lmax)
        self.kernel_by_degree, self.potential_by_degree = k, g
        self.kernel = k[manifold.degrees]
        self.potential = g[manifold.degrees]
        self._last = None

    def _fields(self, c: np.ndarray):
        """ρ, ∇(G̃∗ρ) and (SA) K̃∗ρ on the grid."""
        M = self.manifold
        rho, grad = M.scalar_and_gradient(c, c * self.potential)
        if not self.model.normalized:
            return rho, grad, None
        kr = M.synthesis(c * self.kernel)
        if not np.min(kr) > 0:
            raise NumericalFailure(
                "K*rho is no longer positive on the grid: the density has lost resolution "
                f"(min rho = {np.min(rho):.3g}); rerun with a larger lmax"
            )
        return rho, grad, kr

    def _mobility(self, rho: np.ndarray, kr) -> np.ndarray:
        """ρ X = mobility · ∇(G̃∗ρ): ρ/K̃∗ρ for SA, e^{|β|} ρ for USA."""
        return rho / kr if kr is not None else self.prefactor * rho

    def velocity(self, c: np.ndarray):
        """ρ, X[ρ] and, for SA, K̃∗ρ on the grid (K̃∗ρ = None for USA)."""
        rho, grad, kr = self._fields(c)
        scale = 1.0 / kr if kr is not None else self.prefactor
        return rho, tuple(scale * g for g in grad), kr

    def __call__(self, t: float, c: np.ndarray) -> np.ndarray:
        rho, grad, kr = self._fields(c)
        self._last = (rho, grad, kr)
        mobility = self._mobility(rho, kr)
        return -self.manifold.divergence(tuple(mobility * g for g in grad))

    def density_range(self) -> tuple[float, float]:
        """(min ρ, max ρ) on the grid at the last evaluation."""
        rho = self._last[0]
        return float(np.min(rho)), float(np.max(rho))

    def max_step(self) -> float:
        """Advective step limit 1/(lmax · max|X|) at the last evaluation (∞ at rest or before any)."""
        if self._last is None:
            return np.inf
        _, grad, kr = self._last
        speed2 = sum(g * g for g in grad) / (kr * kr) if kr is not None else self.prefactor**2 * sum(g * g for g in grad)
        rate = self.manifold.lmax * float(np.sqrt(np.max(speed2)))
        return np.inf if rate == 0 else 1.0 / rate
