"""The attention model: inverse temperature β, SA or USA, the matrices Q, K, V, and the clock.

With B = QᵀK (so that ⟨Qx,Ky⟩ = ⟨x,By⟩) the velocity field of a density ρ (docs/mathematics.md,
"The mean-field equation") is

    SA:  X[ρ](x) = P_x V m(x) / Z(x),   USA:  X[ρ](x) = P_x V m(x),
    m(x) = ∫ e^{β⟨x,By⟩} y ρ(y) dσ(y),   Z(x) = ∫ e^{β⟨x,By⟩} ρ(y) dσ(y),

and at zero temperature (β = ∞, SA) X^∞(x) = P_x V Bᵀx/|Bᵀx|, independent of ρ. How X is
evaluated is the business of :mod:`spherepde.dynamics` (densities) and :mod:`spherepde.kernels`
(weighted points). The Funk–Hecke coefficients of the kernel live in :mod:`spherepde.harmonics`.

The clock: time t is the layer index ("depth"). With ``clock = "rescaled"`` the USA kernel is
e^{β(⟨x,By⟩ - ‖B‖₂)}, i.e. the time τ = e^{|β|‖B‖₂} t of arXiv 2410.06833; SA is unchanged (its
softmax does not see a constant factor of the kernel).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .errors import InputError
from .harmonics import check_beta, check_dimension, funk_hecke, funk_hecke_derivative, funk_hecke_over_beta, log_funk_hecke

MODELS = ("SA", "USA")
CLOCKS = ("depth", "rescaled")

#: Largest |β|‖QᵀK‖₂ of a USA model on the depth clock: its velocities grow like e^{|β|‖B‖₂},
#: and e^{700} is about the largest power of e a double holds with room for the sums.
USA_MAX_CONCENTRATION = 700.0


def square_matrix(value, name: str, d: int) -> np.ndarray:
    """``value`` as a read-only d×d float matrix (the identity for None); InputError naming ``name`` otherwise."""
    if value is None:
        m = np.eye(d)
    else:
        try:
            m = np.array(value, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"{name} = {value!r} is not allowed: use a {d}x{d} matrix of finite real numbers") from None
        if m.shape != (d, d):
            raise InputError(f"{name} has shape {m.shape}: use a {d}x{d} matrix for points in R^{d}")
        if not np.all(np.isfinite(m)):
            raise InputError(f"{name} has non-finite entries: use a {d}x{d} matrix of finite real numbers")
    m.setflags(write=False)
    return m


def scalar_multiple(m: np.ndarray) -> float | None:
    """c if m = cI to round-off (|m - cI| ≤ 4ε|c| entrywise, c the mean of the diagonal), else None."""
    c = float(np.trace(m)) / len(m)
    return c if np.all(np.abs(m - c * np.eye(len(m))) <= 4 * np.finfo(float).eps * abs(c)) else None


class LinearTheory(NamedTuple):
    """How the rates of :mod:`spherepde.linear` apply to a model: λ_l = speed · λ_l(beta)."""

    beta: float
    speed: float


@dataclass(frozen=True, eq=False)
class AttentionModel:
    """Self-attention with inverse temperature β and d×d matrices Q, K, V (default I), B = QᵀK.

    X[ρ] as in the module docstring; β = ∞ (SA only) is the zero-temperature field X^∞.
    With Q = K = V = I:  USA X[ρ] = (1/β) ∇(K∗ρ),  SA X[ρ] = (1/β) ∇ log(K∗ρ).
    """

    name: str
    beta: float
    d: int = 3
    Q: Any = None  # d×d matrices (array-like; None: the identity), stored as read-only arrays
    K: Any = None
    V: Any = None
    clock: str = "depth"
    B: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        name = str(self.name).upper()
        if name not in MODELS:
            raise InputError(f"model name {self.name!r} is not allowed: use one of 'SA', 'USA'")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "d", check_dimension(self.d))
        if self.clock not in CLOCKS:
            raise InputError(f"clock = {self.clock!r} is not allowed: use one of {', '.join(map(repr, CLOCKS))}")
        try:
            beta = float(self.beta)
        except (TypeError, ValueError):
            beta = math.nan
        if math.isnan(beta) or beta == -math.inf:
            raise InputError(f"beta = {self.beta!r} is not allowed: use a finite real number, or inf (zero temperature, SA)")
        object.__setattr__(self, "beta", beta)
        for key in ("Q", "K", "V"):
            object.__setattr__(self, key, square_matrix(getattr(self, key), key, self.d))
        object.__setattr__(self, "B", self.Q.T @ self.K)
        self.B.setflags(write=False)
        if self.zero_temperature:
            if not self.normalized:
                raise InputError(
                    "beta = inf is not allowed for USA: its velocities grow like e^(beta |B^T x|) and have no "
                    "zero-temperature limit; the limit X = P_x V B^T x/|B^T x| exists for SA"
                )
            singular = np.linalg.svd(self.B, compute_uv=False)
            if not singular[-1] > 1e-12 * singular[0]:
                raise InputError(
                    "beta = inf needs an invertible B = Q^T K: the zero-temperature field "
                    "P_x V B^T x/|B^T x| is undefined where B^T x = 0"
                )

    def check_mean_field(self):
        """InputError unless the mean-field velocities fit in double precision: |β| ≤ MAX_ABS_BETA
        (Funk–Hecke coefficients), and for USA on the depth clock |β|‖B‖₂ ≤ USA_MAX_CONCENTRATION.
        (Tokens are not held to this: their sums may stay finite, and overflow is reported when it happens.)"""
        if not self.zero_temperature:
            check_beta(self.beta)
        if not self.normalized and self.clock == "depth" and self.concentration > USA_MAX_CONCENTRATION:
            raise InputError(
                f"beta = {self.beta} is not allowed for USA with |beta| ||Q^T K|| = {self.concentration:.4g}: its "
                f"velocities grow like e^(|beta| ||Q^T K||) and overflow double precision beyond "
                f"{USA_MAX_CONCENTRATION:g}; use model.clock = 'rescaled' (time e^(|beta| ||Q^T K||) t)"
            )

    @property
    def normalized(self) -> bool:
        """SA (softmax) rather than USA."""
        return self.name == "SA"

    @property
    def zero_temperature(self) -> bool:
        """β = ∞: X = P_x V Bᵀx/|Bᵀx|."""
        return self.beta == math.inf

    @property
    def has_energy(self) -> bool:
        """B = QᵀK = I, V = I and β finite: the flow ascends the energy E_β of docs/mathematics.md
        ("Energy"). For general matrices there is no monotone energy."""
        return not self.zero_temperature and scalar_multiple(self.B) == 1.0 and scalar_multiple(self.V) == 1.0

    @property
    def concentration(self) -> float:
        """|β| ‖B‖₂, the largest concentration of the kernels y ↦ e^{β⟨Bᵀx,y⟩}: the kernel
        bandwidth and the USA growth e^{|β||Bᵀx|} are set by it."""
        return abs(self.beta) * float(np.linalg.norm(self.B, 2))

    @property
    def kernel_beta(self) -> float | None:
        """β' = βb when B = bI (β finite): the kernel e^{β'⟨x,y⟩} is zonal and Funk–Hecke
        applies; None otherwise."""
        b = scalar_multiple(self.B)
        return None if b is None or self.zero_temperature else self.beta * b

    @property
    def value_scale(self) -> float | None:
        """v when V = vI (then P_x V m = v P_x m), else None."""
        return scalar_multiple(self.V)

    @property
    def clock_shift(self) -> float:
        """s such that the USA kernel in use is e^{β⟨x,By⟩ - s}: |β|‖B‖₂ on the rescaled clock, else 0."""
        return self.concentration if self.clock == "rescaled" and not self.zero_temperature else 0.0

    def linear_theory(self) -> LinearTheory | None:
        """When the uniform state is stationary and its linearization is that of docs/mathematics.md
        ("Linear theory"), the parameters of the rates; else None (see :meth:`linear_theory_gap`).

        With B = bI and V = vI the velocity is v times that of identity matrices at β' = βb, so
        λ_l = v λ_l(β'); at β = 0 the kernel is constant and any B gives λ_l = v λ_l(0). On the
        rescaled clock USA rates are multiplied by e^{-|β'|}. Otherwise the uniform state is
        stationary only when VBᵀ ∝ I, and even then the linearization is not diagonal in degrees.
        """
        if self.linear_theory_gap():
            return None
        beta = 0.0 if self.beta == 0 else self.kernel_beta
        speed = self.value_scale
        assert beta is not None and speed is not None  # linear_theory_gap() == "" says so
        if not self.normalized and self.clock_shift:
            speed *= math.exp(-self.clock_shift)
        return LinearTheory(beta, speed)

    def linear_theory_gap(self) -> str:
        """'' when :meth:`linear_theory` applies, otherwise why not (one sentence)."""
        if self.zero_temperature:
            return ("no linear-theory prediction for beta = inf: the zero-temperature velocity "
                    "P_x V B^T x/|B^T x| does not depend on rho")
        if (self.beta != 0 and self.kernel_beta is None) or self.value_scale is None:
            return ("no linear-theory prediction: linear theory covers Q^T K = bI and V = vI "
                    "(for other matrices the uniform state is in general not stationary)")
        return ""

    @property
    def kernel_log_scale(self) -> float:
        """log ĥ_0(β'), β' = βb: the spectral multipliers are divided by ĥ_0, which keeps them finite for
        every d (e^{-|β'|} would underflow in high dimension, where ĥ_0 ≪ e^{|β'|})."""
        beta = self.kernel_beta
        if beta is None:
            raise ValueError("the kernel is zonal only for B = bI and finite beta")
        return float(log_funk_hecke(0, beta, self.d)[0][0])

    def multipliers(self, lmax: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Scaled spectral multipliers (k_l, g_l) of the zonal kernel at β' = βb, and the velocity prefactor.

        k_l = ĥ_l(β')/ĥ_0, g_l = ĥ_l(β')/(β' ĥ_0), so that with K̃∗ρ = Σ k_l ρ_l and G̃∗ρ = Σ g_l ρ_l,
        for V = I:  SA: X = ∇(G̃∗ρ)/(K̃∗ρ) (prefactor 1),  USA: X = ĥ_0 e^{-s} ∇(G̃∗ρ) with s the clock shift.
        """
        beta, scale = self.kernel_beta, self.kernel_log_scale
        assert beta is not None
        k = funk_hecke(lmax, beta, self.d, log_scale=scale)
        g = funk_hecke_over_beta(lmax, beta, self.d, log_scale=scale)
        prefactor = 1.0 if self.normalized else float(np.exp(scale - self.clock_shift))
        return k, g, prefactor

    def normal_multipliers(self, lmax: int) -> np.ndarray:
        """q_l = ∂_β' ĥ_l(β')/ĥ_0: ⟨x, m(x)⟩/ĥ_0 = Σ q_l ρ_l(x) for B = bI."""
        beta = self.kernel_beta
        assert beta is not None, "the kernel is zonal only for B = bI and finite beta"
        return funk_hecke_derivative(lmax, beta, self.d, log_scale=self.kernel_log_scale)
