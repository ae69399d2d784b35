"""The finite-n token system of self-attention on S^{d-1} (docs/mathematics.md, "Tokens and attention").

For tokens x_1..x_n on the unit sphere of R^d, B = QᵀK and P_x = I − xxᵀ:

    SA:   ẋ_i = P_{x_i} Σ_j A_ij V x_j,   A_ij = e^{β⟨x_i,Bx_j⟩} / Σ_k e^{β⟨x_i,Bx_k⟩},
    USA:  ẋ_i = P_{x_i} (1/n) Σ_j e^{β⟨x_i,Bx_j⟩} V x_j.

:mod:`.field` gives the velocity (the weighted attention sums of :mod:`spherepde.kernels` with
weights 1/n), :mod:`.evolve` the trajectories (the Runge–Kutta engine of
:mod:`spherepde.integrate`), :mod:`.initial` the initial tokens, :mod:`.diagnostics` the snapshot
diagnostics and :mod:`.run` the interface the run loop drives (``spherepde particles``).
"""
from .diagnostics import (
    CLOSE_PAIR_COS,
    close_pair_fraction,
    cluster_count,
    cluster_threshold,
    diagnostics,
    empirical_spectrum,
    energy,
    mean_direction,
)
from .evolve import simulate, token_stepper, trajectory
from .field import BACKENDS, TokenField, attention_field, velocity
from .initial import INITIAL_KINDS, initial_tokens, lattice
from .points import ON_SPHERE_TOL, as_points

__all__ = [
    "CLOSE_PAIR_COS", "close_pair_fraction", "cluster_count", "cluster_threshold", "diagnostics", "empirical_spectrum",
    "energy", "mean_direction", "simulate", "token_stepper", "trajectory", "BACKENDS", "TokenField", "attention_field",
    "velocity", "INITIAL_KINDS", "initial_tokens", "lattice", "ON_SPHERE_TOL", "as_points",
]
