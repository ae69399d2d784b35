"""Diagnostics of a density: mass, energy, spectrum, resolution.

Definitions (σ-normalized real coefficients a_lm, E_l = Σ_m a_lm²):
- mass ∫ρ dσ (quadrature on the grid);
- energy E_β = (1/2β) Σ_l ĥ_l E_l (theory.md §4); at β = 0 its mass-independent
  limit ½ Σ_{l≥1} (ĥ_l/β) E_l = E_1/(2d); ``energy_scaled`` = e^{-|β|} E_β is
  always finite (E_β overflows to inf for |β| > 709);
- energy_rate = ∫ (K∗ρ)^s |X|² ρ dσ (s = 1 for SA, 0 for USA), which equals
  dE_β/dt for the exact flow (theory.md §4); inf where it overflows;
- tail_energy = Σ_{l in the top 10% of degrees} E_l / Σ_l E_l, the resolution
  indicator: a run stops when it exceeds ``[numerics] max_tail_energy``;
- mean_direction |∫ x ρ dσ| = √(E_1/d);
- dominant_degree argmax_{l≥1} E_l.
"""
from __future__ import annotations

import math

import numpy as np

TOP_FRACTION = 0.1


def tail_energy(spectrum: np.ndarray) -> float:
    """Share of Σ_l E_l carried by the top 10% of degrees (at least one degree)."""
    top = max(1, math.ceil(TOP_FRACTION * len(spectrum)))
    total = float(np.sum(spectrum))
    return float(np.sum(spectrum[-top:])) / total if total > 0 else 0.0


def energy_scaled(equation, spectrum: np.ndarray) -> float:
    """e^{-|β|} E_β; at β = 0 the limit ½ Σ_{l≥1} (ĥ_l/β) E_l."""
    beta = equation.model.beta
    if beta == 0.0:
        return 0.5 * float(np.dot(equation.potential_by_degree, spectrum))  # its entry l = 0 is 0
    return float(np.dot(equation.kernel_by_degree, spectrum)) / (2.0 * beta)


def _unscaled(value: float, beta: float) -> float:
    """e^{|β|} · value, ±inf where that overflows."""
    return value * math.exp(abs(beta)) if abs(beta) < 709 else math.copysign(math.inf, value)


def snapshot(equation, c: np.ndarray) -> dict:
    """All diagnostics of the state with coefficients c."""
    M = equation.manifold
    beta = equation.model.beta
    spectrum = M.degree_energy(c)
    rho, X, kr = equation.velocity(c)
    dissipation = M.speed(X) ** 2 * rho  # |X|² ρ
    rate_scaled = np.sum(M.weights * kr * dissipation) if kr is not None else np.sum(M.weights * dissipation) * math.exp(-abs(beta))
    e_scaled = energy_scaled(equation, spectrum)
    return {
        "mass": float(np.sum(M.weights * rho)),
        "energy": _unscaled(e_scaled, beta),
        "energy_scaled": e_scaled,
        "energy_rate": _unscaled(float(rate_scaled), beta),
        "min_density": float(np.min(rho)),
        "max_density": float(np.max(rho)),
        "spectrum": spectrum,
        "tail_energy": tail_energy(spectrum),
        "mean_direction": math.sqrt(spectrum[1] / M.d),
        "dominant_degree": int(np.argmax(spectrum[1:]) + 1),
    }
