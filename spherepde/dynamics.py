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
        self.max_speed = 0.0
        self.density_range = (1.0, 1.0)

    def velocity(self, c: np.ndarray):
        """ρ, X[ρ] and, for SA, K̃∗ρ on the grid (K̃∗ρ = None for USA)."""
        M = self.manifold
        rho, grad = M.scalar_and_gradient(c, c * self.potential)
        if self.model.normalized:
            kr = M.synthesis(c * self.kernel)
            if not np.min(kr) > 0:
                raise NumericalFailure(
                    "K*rho is no longer positive on the grid: the density has lost resolution "
                    f"(min rho = {np.min(rho):.3g}); rerun with a larger lmax"
                )
            X = tuple(gi / kr for gi in grad)
        else:
            kr = None
            X = tuple(self.prefactor * gi for gi in grad)
        return rho, X, kr

    def __call__(self, t: float, c: np.ndarray) -> np.ndarray:
        rho, X, _ = self.velocity(c)
        self.max_speed = float(np.max(self.manifold.speed(X)))
        self.density_range = (float(np.min(rho)), float(np.max(rho)))
        return -self.manifold.divergence(tuple(rho * Xi for Xi in X))

    def max_step(self) -> float:
        """Advective step limit 1/(lmax · max|X|) from the last evaluation (∞ at rest)."""
        rate = self.manifold.lmax * self.max_speed
        return np.inf if rate == 0 else 1.0 / rate
