"""The velocity field of n tokens (docs/mathematics.md, "Tokens and attention"):

    SA:   ẋ_i = P_{x_i} Σ_j A_ij V x_j,   A_ij = e^{β⟨x_i,Bx_j⟩} / Σ_k e^{β⟨x_i,Bx_k⟩},
    USA:  ẋ_i = P_{x_i} (1/n) Σ_j e^{β⟨x_i,Bx_j⟩} V x_j,

sums including j = i, for any real β, any d ≥ 2 and any d×d matrices Q, K, V (B = QᵀK): the
velocity of the point measure (1/n) Σ_j δ_{x_j}, by the shared kernels of
:mod:`spherepde.kernels` with equal weights — the direct O(n²) sums (numpy or numba), or for
B = bI on S¹ and S² the harmonic sums at the kernel's band (``backend = "spectral"``,
:class:`spherepde.kernels.SpectralVelocity`, O(n + L² log L); "auto" takes it from SPECTRAL_TOKENS on).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, NumericalFailure
from ..kernels import (DIRECT_BACKENDS, DirectSum, DirectVelocity, SpectralVelocity, direct_backend, spectral_degree,
                       spectral_gap)
from ..manifolds import for_points
from ..model import AttentionModel
from .points import as_beta, as_integer, as_points


#: The velocity backends a token run can name: "auto" resolves to one of the others (:func:`resolve_backend`).
BACKENDS = ("auto", *DIRECT_BACKENDS, "spectral")

#: "auto" uses the harmonic sums from this many tokens on (where they apply and the kernel's band L has
#: L² ≤ 2n): measured side by side (benchmarks/bench_points.py) they are as fast as the direct sums at
#: n ≈ 256–512 on S¹ and 512–1024 on S² for β ≤ 50, and 4–100 times faster from n = 10⁴.
SPECTRAL_TOKENS = 1024


def resolve_backend(model: AttentionModel, backend: str, n: int | None) -> str:
    """The backend "numpy", "numba" or "spectral" a name means for n tokens of ``model``: InputError for an
    unknown name, or "spectral" where it does not apply (saying which backends do)."""
    name = str(backend).lower()
    if name not in BACKENDS:
        raise InputError(f"backend = {backend!r} is not allowed: use one of {', '.join(map(repr, BACKENDS))}")
    gap = spectral_gap(model)
    if name == "spectral":
        if gap:
            raise InputError(f"backend = 'spectral' does not apply here ({gap}): use 'numpy', 'numba' or 'auto'",
                             "particles.backend")
        return name
    if name == "auto" and not gap and n is not None and n >= max(SPECTRAL_TOKENS, spectral_degree(model) ** 2 / 2):
        return "spectral"
    return direct_backend(name)


class TokenField:
    """x ↦ ẋ for tokens x (n, d) of unit rows (not checked again, not renormalized); ``backend``
    names the backend in use (:func:`resolve_backend` of the requested one for ``n`` tokens)."""

    def __init__(self, model: AttentionModel, backend: str = "auto", block: int | None = None, n: int | None = None):
        if block is not None:
            block = as_integer(block, "block", 1, "the rows per block")
        self.model = model
        self.backend = resolve_backend(model, backend, n)
        self._velocity: SpectralVelocity | DirectVelocity
        if self.backend == "spectral":
            direct = DirectSum(model, direct_backend("auto"), block)  # for the rows the harmonic sums cannot resolve
            self._velocity = SpectralVelocity(model, for_points(model.d, spectral_degree(model)), direct)
        else:
            self._velocity = DirectVelocity(model, self.backend, block)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._velocity(x, np.full(len(x), 1.0 / len(x)))


def attention_field(beta, model: str, d: int, Q=None, K=None, V=None, block: int | None = None,
                    backend: str = "auto", n: int | None = None) -> TokenField:
    """The velocity field x ↦ ẋ of `velocity` for tokens in R^d, input checked once."""
    d = as_integer(d, "d", 2, "the ambient dimension of S^(d-1)")
    return TokenField(AttentionModel(model, as_beta(beta), d, Q, K, V), backend, block, n)


def velocity(x, beta, model: str = "SA", Q=None, K=None, V=None, block: int | None = None,
             backend: str = "auto") -> np.ndarray:
    """The velocities ẋ_i of tokens x (shape (n, d)) under SA or USA self-attention (module docstring).

    ``backend``: "numpy" (blocked, ``block`` target rows at a time, default ⌊2^16/n⌋), "numba"
    (compiled and parallel over blocks of ``block`` rows, default 128), "spectral" (harmonic sums,
    QᵀK = bI and d = 2, 3; to 1e-10 of the largest speed), or "auto": spectral where it applies
    from SPECTRAL_TOKENS tokens on, else numba when it is installed, else numpy. Raises NumericalFailure if a velocity exceeds double precision.
    """
    x = as_points(x, "x")
    v = attention_field(beta, model, x.shape[1], Q, K, V, block, backend, len(x))(x)
    if not np.all(np.isfinite(v)):
        raise NumericalFailure(f"the velocity overflows double precision at beta = {beta}")
    return v
