"""The attention model: inverse temperature β, SA or USA, the matrices Q, K, V, and the
Funk–Hecke coefficients of the kernel e^{β⟨x,y⟩} on S^{d-1}.

With B = QᵀK (so that ⟨Qx,Ky⟩ = ⟨x,By⟩) the velocity field is (design.md §1)

    SA:  X[ρ](x) = P_x V m(x) / Z(x),   USA:  X[ρ](x) = P_x V m(x),
    m(x) = ∫ e^{β⟨x,By⟩} y ρ(y) dσ(y),   Z(x) = ∫ e^{β⟨x,By⟩} ρ(y) dσ(y),

and at zero temperature (β = ∞, SA) X^∞(x) = P_x V Bᵀx/|Bᵀx|, independent of ρ
(theory.md §6). How X is evaluated on a grid is :mod:`spherepde.dynamics`' business.

Funk–Hecke (theory.md §3): for a harmonic Y_l of degree l on S^{d-1},

    ∫ e^{β⟨x,y⟩} Y_l(y) dσ(y) = ĥ_l(β) Y_l(x),
    ĥ_l(β) = Γ(d/2) (2/β)^{ν₀} I_{l+ν₀}(β),   ν₀ = (d-2)/2,

with ĥ_l(-β) = (-1)^l ĥ_l(β). The coefficients grow like e^{|β|}, so they are
computed in logarithmic form from exponentially scaled Bessel functions and are
handed to the solver scaled by e^{-|β|}: no overflow for |β| ≤ 1000.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln, ive

from .errors import InputError

MODELS = ("SA", "USA")

# Below this value of the scaled Bessel function ive(ν₀, |β|) has underflowed or is
# about to (ν₀ ≫ |β|): ĥ_0 then comes from its power series.
_IVE_FLOOR = 1e-250


def _log_series(nu: float, b: float) -> float:
    """log of ₀F₁(; ν+1; b²/4) = Σ_k (b²/4)^k / (k! (ν+1)_k), for ν ≫ b (few terms)."""
    z = b * b / 4.0
    term = total = 1.0
    k = 0
    while True:
        k += 1
        term *= z / (k * (nu + k))
        total += term
        if k * (nu + k) > z and term < 1e-17 * total:
            return math.log(total)


def _log_bessel_ratios(nu0: float, n: int, b: float) -> np.ndarray:
    """log(I_ν(b)/I_{ν-1}(b)) for ν = ν₀+1, ..., ν₀+n and b > 0.

    Backward recurrence R_ν = b/(2ν + b R_{ν+1}) (from I_{ν-1} - I_{ν+1} = (2ν/b) I_ν),
    which is the continued fraction of R_ν. An error in R_{ν+1} enters R_ν multiplied by
    R_ν² ≈ e^{-2 asinh(ν/b)}, so starting at order N with N² ≥ (ν₀+n)² + 64b damps the
    error of the starting guess below e^{-40}. The logarithm is taken of the quotient's
    parts, so that R_ν ≈ b/2ν may underflow (tiny b) without harm.
    """
    top = nu0 + n
    extra = math.ceil(math.sqrt(top * top + 64.0 * b) - top) + 16
    nu = top + extra
    r = b / (nu + math.hypot(nu, b))  # R_ν ≈ b/(ν + √(ν² + b²)) for large ν
    log_b = math.log(b)
    log_ratios = np.empty(n)
    for k in range(n + extra - 1, -1, -1):
        denominator = 2.0 * (nu0 + 1 + k) + b * r
        r = b / denominator
        if k < n:
            log_ratios[k] = log_b - math.log(denominator)
    return log_ratios


def log_funk_hecke(lmax: int, beta: float, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """log|ĥ_l(β)| and sign ĥ_l(β) for l = 0..lmax on S^{d-1}.

    log ĥ_0 = log(Γ(d/2) (2/|β|)^{ν₀} I_{ν₀}(|β|)) and log ĥ_l = log ĥ_0 + Σ_{k≤l} log R_{ν₀+k}
    with the Bessel ratios R_ν = I_ν/I_{ν-1}: accurate to about 1e-12 relative for
    every degree and |β| ≤ 1000 (and finite for any β), with no underflow at high degree.
    At β = 0 the kernel is constant: ĥ_0 = 1 and ĥ_l = 0 (log = -inf) for l ≥ 1.
    """
    if d < 2:
        raise InputError(f"dimension d = {d} is not allowed: the sphere S^(d-1) needs d >= 2")
    if not math.isfinite(beta):
        raise InputError(f"beta = {beta} is not allowed: use a finite real number")
    sign = np.ones(lmax + 1)
    logh = np.empty(lmax + 1)
    if beta == 0.0:
        logh[:] = -np.inf
        logh[0] = 0.0
        return logh, sign
    b = float(abs(beta))
    nu0 = (d - 2) / 2.0
    scaled = ive(nu0, b)
    if scaled > _IVE_FLOOR:
        logh[0] = gammaln(d / 2.0) + nu0 * (math.log(2.0) - math.log(b)) + math.log(scaled) + b
    else:
        logh[0] = _log_series(nu0, b)
    logh[1:] = logh[0] + np.cumsum(_log_bessel_ratios(nu0, lmax, b))
    if beta < 0:
        sign[1::2] = -1.0
    return logh, sign


def funk_hecke(lmax: int, beta: float, d: int = 3, scaled: bool = False) -> np.ndarray:
    """ĥ_l(β) for l = 0..lmax; with ``scaled=True`` the values e^{-|β|} ĥ_l(β) (always finite)."""
    logh, sign = log_funk_hecke(lmax, beta, d)
    shift = abs(beta) if scaled else 0.0
    with np.errstate(over="ignore"):
        return sign * np.exp(logh - shift)


def funk_hecke_over_beta(lmax: int, beta: float, d: int = 3, scaled: bool = False) -> np.ndarray:
    """ĥ_l(β)/β for l = 1..lmax (entry 0 is set to 0), with its limit at β = 0.

    This is the multiplier of the potential (1/β) K∗ρ whose gradient is the USA
    velocity; at β = 0 only l = 1 survives, ĥ_1/β → 1/d (theory.md §3).
    """
    out = np.zeros(lmax + 1)
    if lmax == 0:
        return out
    if beta == 0.0:
        out[1] = 1.0 / d
        return out
    logh, sign = log_funk_hecke(lmax, beta, d)
    shift = abs(beta) if scaled else 0.0
    with np.errstate(over="ignore"):
        out[1:] = sign[1:] * np.exp(logh[1:] - np.log(abs(beta)) - shift) * np.sign(beta)
    return out


def funk_hecke_derivative(lmax: int, beta: float, d: int = 3, scaled: bool = False) -> np.ndarray:
    """∂_β ĥ_l(β) = ĥ_{l+1}(β) + (l/β) ĥ_l(β) for l = 0..lmax (scaled: times e^{-|β|}).

    From I'_ν = I_{ν+1} + (ν/β) I_ν with ν = l + ν₀ and the factor β^{-ν₀} of ĥ_l. Both terms
    have the sign of ĥ_{l+1}(β) for either sign of β, so the sum never cancels; at β = 0 it is the
    limit ∂_β ĥ_1 = 1/d (all other degrees 0). This is the multiplier of the normal part of the
    attention sum, ⟨x, ∫ e^{β⟨x,y⟩} y ρ(y) dσ(y)⟩ = ∂_β(K∗ρ)(x).
    """
    h = funk_hecke(lmax + 1, beta, d, scaled)
    return h[1:] + np.arange(lmax + 1) * funk_hecke_over_beta(lmax, beta, d, scaled)


def kernel_bandwidth(beta: float, d: int = 3, tol: float = 1e-8) -> int:
    """The first degree l with |ĥ_l(β)| < tol · ĥ_0(β): the kernel's effective band limit."""
    lmax = 16
    while True:
        logh, _ = log_funk_hecke(lmax, beta, d)
        below = np.nonzero(logh - logh[0] < np.log(tol))[0]
        if below.size:
            return int(below[0])
        lmax *= 2


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


def _scalar(m: np.ndarray) -> float | None:
    """c if m = cI to round-off (|m - cI| ≤ 4ε|c| entrywise, c the mean of the diagonal), else None."""
    c = float(np.trace(m)) / len(m)
    return c if np.all(np.abs(m - c * np.eye(len(m))) <= 4 * np.finfo(float).eps * abs(c)) else None


@dataclass(frozen=True, eq=False)
class AttentionModel:
    """Self-attention with inverse temperature β and d×d matrices Q, K, V (default I), B = QᵀK.

    X[ρ] as in the module docstring; β = ∞ (SA only) is the zero-temperature field X^∞.
    With Q = K = V = I:  USA X[ρ] = (1/β) ∇(K∗ρ),  SA X[ρ] = (1/β) ∇ log(K∗ρ)  (theory.md §3).
    """

    name: str
    beta: float
    d: int = 3
    Q: np.ndarray | None = None
    K: np.ndarray | None = None
    V: np.ndarray | None = None
    B: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        name = str(self.name).upper()
        if name not in MODELS:
            raise InputError(f"model name {self.name!r} is not allowed: use one of 'SA', 'USA'")
        object.__setattr__(self, "name", name)
        try:
            beta = float(self.beta)
        except (TypeError, ValueError):
            beta = math.nan
        if math.isnan(beta) or beta == -math.inf:
            raise InputError(f"beta = {self.beta} is not allowed: use a finite real number, or inf (zero temperature, SA)")
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
        elif not self.normalized and self.concentration > 700:
            raise InputError(
                f"beta = {self.beta} is not allowed for USA with |beta| ||Q^T K|| = {self.concentration:.4g}: its "
                "velocities grow like e^(|beta| ||Q^T K||) and overflow double precision beyond 700 "
                "(SA has no such limit)"
            )

    @classmethod
    def from_config(cls, model: dict, d: int) -> "AttentionModel":
        """The model of a configuration's [model] section (name, beta, optional Q, K, V) on S^{d-1}."""
        return cls(model["name"], model["beta"], d, model.get("Q"), model.get("K"), model.get("V"))

    @property
    def normalized(self) -> bool:
        return self.name == "SA"

    @property
    def zero_temperature(self) -> bool:
        """β = ∞: X = P_x V Bᵀx/|Bᵀx|."""
        return self.beta == math.inf

    @property
    def has_energy(self) -> bool:
        """B = QᵀK = I, V = I and β finite: the flow is that of identity matrices and ascends the
        energy E_β of theory.md §4. For general matrices there is no monotone energy."""
        return not self.zero_temperature and _scalar(self.B) == 1.0 and _scalar(self.V) == 1.0

    @property
    def concentration(self) -> float:
        """|β| ‖B‖₂, the largest concentration of the kernels y ↦ e^{β⟨Bᵀx,y⟩}: the kernel
        bandwidth and the USA growth e^{|β||Bᵀx|} are set by it."""
        return abs(self.beta) * float(np.linalg.norm(self.B, 2))

    @property
    def kernel_beta(self) -> float | None:
        """β' = βb when B = bI (β finite): the kernel e^{β'⟨x,y⟩} is zonal and Funk–Hecke
        applies; None otherwise."""
        b = _scalar(self.B)
        return None if b is None or self.zero_temperature else self.beta * b

    @property
    def value_scale(self) -> float | None:
        """v when V = vI (then P_x V m = v P_x m), else None."""
        return _scalar(self.V)

    def multipliers(self, lmax: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Scaled spectral multipliers (k_l, g_l) of the zonal kernel at β' = βb, and the velocity prefactor.

        k_l = e^{-|β'|} ĥ_l(β'), g_l = e^{-|β'|} ĥ_l(β')/β', so that with K̃∗ρ = Σ k_l ρ_l and
        G̃∗ρ = Σ g_l ρ_l, for V = I:  SA: X = ∇(G̃∗ρ)/(K̃∗ρ) (prefactor 1),  USA: X = e^{|β'|} ∇(G̃∗ρ).
        """
        beta = self.kernel_beta
        if beta is None:
            raise ValueError("the kernel is zonal only for B = bI and finite beta")
        k = funk_hecke(lmax, beta, self.d, scaled=True)
        g = funk_hecke_over_beta(lmax, beta, self.d, scaled=True)
        prefactor = 1.0 if self.normalized else float(np.exp(abs(beta)))
        return k, g, prefactor

    def normal_multipliers(self, lmax: int) -> np.ndarray:
        """q_l = e^{-|β'|} ∂_β' ĥ_l(β'): ⟨x, e^{-|β'|} m(x)⟩ = Σ q_l ρ_l(x) for B = bI."""
        return funk_hecke_derivative(lmax, self.kernel_beta, self.d, scaled=True)
