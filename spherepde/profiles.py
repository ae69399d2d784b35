"""Closed-form densities on S^{d-1} (relative to σ, ∫ρ dσ = 1), evaluated at points."""
from __future__ import annotations

import numpy as np

from .harmonics import log_funk_hecke


def von_mises_fisher_of_cosine(t: np.ndarray, kappa: float, d: int) -> np.ndarray:
    """e^{κt} / ĥ_0(κ) on S^{d-1} as a function of t = ⟨x, μ⟩, overflow-free.

    ĥ_0(κ) = ∫ e^{κ⟨x,μ⟩} dσ(x) is the Funk–Hecke coefficient of degree 0 (docs/mathematics.md)."""
    return np.exp(kappa * t - log_funk_hecke(0, kappa, d)[0][0])


def von_mises_fisher(x: np.ndarray, mean: np.ndarray, kappa: float) -> np.ndarray:
    """ρ(x) = e^{κ⟨x,μ⟩} / ĥ_0(κ) on S^{d-1}, μ a unit vector (or columns of unit vectors)."""
    return von_mises_fisher_of_cosine(x @ mean, kappa, x.shape[-1])


def kernel_density(x: np.ndarray, points: np.ndarray, kappa: float, block: int = 2048) -> np.ndarray:
    """(1/n) Σ_i ρ_vMF(x; x_i, κ): the empirical measure of the points smoothed by a von Mises–Fisher kernel."""
    out = np.zeros(x.shape[:-1])
    for start in range(0, len(points), block):
        out += von_mises_fisher(x, points[start : start + block].T, kappa).sum(axis=-1)
    return out / len(points)


def wrapped_cauchy(theta: np.ndarray, R: float, psi: float) -> np.ndarray:
    """(1 - R²) / (1 - 2R cos(θ-ψ) + R²) on the circle (density w.r.t. σ = dθ/2π)."""
    return (1.0 - R * R) / (1.0 - 2.0 * R * np.cos(theta - psi) + R * R)
