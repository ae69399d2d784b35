"""The velocity field of n tokens (docs/mathematics.md, "Tokens and attention"):

    SA:   ẋ_i = P_{x_i} Σ_j A_ij V x_j,   A_ij = e^{β⟨x_i,Bx_j⟩} / Σ_k e^{β⟨x_i,Bx_k⟩},
    USA:  ẋ_i = P_{x_i} (1/n) Σ_j e^{β⟨x_i,Bx_j⟩} V x_j,

sums including j = i, for any real β, any d ≥ 2 and any d×d matrices Q, K, V (B = QᵀK): the
velocity of the point measure (1/n) Σ_j δ_{x_j}, by the shared kernels of
:mod:`spherepde.kernels` with equal weights.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, NumericalFailure
from ..kernels import DirectVelocity, direct_backend
from ..model import AttentionModel
from .points import as_beta, as_integer, as_points

BACKENDS = ("auto", "numpy", "numba")


class TokenField:
    """x ↦ ẋ for tokens x (n, d) of unit rows (not checked again, not renormalized); ``backend``
    names the backend in use."""

    def __init__(self, model: AttentionModel, backend: str = "auto", block: int | None = None):
        name = str(backend).lower()
        if name not in BACKENDS:
            raise InputError(f"backend = {backend!r} is not allowed: use one of {', '.join(map(repr, BACKENDS))}")
        if block is not None:
            block = as_integer(block, "block", 1, "the rows per block")
        self.model = model
        self.backend = direct_backend(name)
        self._velocity = DirectVelocity(model, self.backend, block)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._velocity(x, np.full(len(x), 1.0 / len(x)))


def attention_field(beta, model: str, d: int, Q=None, K=None, V=None, block: int | None = None,
                    backend: str = "auto") -> TokenField:
    """The velocity field x ↦ ẋ of `velocity` for tokens in R^d, input checked once."""
    d = as_integer(d, "d", 2, "the ambient dimension of S^(d-1)")
    return TokenField(AttentionModel(model, as_beta(beta), d, Q, K, V), backend, block)


def velocity(x, beta, model: str = "SA", Q=None, K=None, V=None, block: int | None = None,
             backend: str = "auto") -> np.ndarray:
    """The velocities ẋ_i of tokens x (shape (n, d)) under SA or USA self-attention (module docstring).

    ``backend``: "numpy" (blocked, ``block`` target rows at a time, default ⌊2^16/n⌋), "numba"
    (compiled and parallel over blocks of ``block`` rows, default 128), or "auto": numba when
    it is installed. Raises NumericalFailure if a velocity exceeds double precision.
    """
    x = as_points(x, "x")
    v = attention_field(beta, model, x.shape[1], Q, K, V, block, backend)(x)
    if not np.all(np.isfinite(v)):
        raise NumericalFailure(f"the velocity overflows double precision at beta = {beta}")
    return v
