"""The attention model: inverse temperature β, SA or USA, and the Funk–Hecke
coefficients of its kernel e^{β⟨x,y⟩} on S^{d-1}.

Funk–Hecke (theory.md §3): for a harmonic Y_l of degree l on S^{d-1},

    ∫ e^{β⟨x,y⟩} Y_l(y) dσ(y) = ĥ_l(β) Y_l(x),
    ĥ_l(β) = Γ(d/2) (2/β)^{ν₀} I_{l+ν₀}(β),   ν₀ = (d-2)/2,

with ĥ_l(-β) = (-1)^l ĥ_l(β). The coefficients grow like e^{|β|}, so they are
computed in logarithmic form from exponentially scaled Bessel functions and are
handed to the solver scaled by e^{-|β|}: no overflow for |β| ≤ 1000.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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


def kernel_bandwidth(beta: float, d: int = 3, tol: float = 1e-8) -> int:
    """The first degree l with |ĥ_l(β)| < tol · ĥ_0(β): the kernel's effective band limit."""
    lmax = 16
    while True:
        logh, _ = log_funk_hecke(lmax, beta, d)
        below = np.nonzero(logh - logh[0] < np.log(tol))[0]
        if below.size:
            return int(below[0])
        lmax *= 2


@dataclass(frozen=True)
class AttentionModel:
    """Self-attention dynamics with kernel e^{β⟨x,y⟩} and Q = K = V = I.

    USA:  X[ρ] = (1/β) ∇(K∗ρ),   SA:  X[ρ] = (1/β) ∇ log(K∗ρ)   (theory.md §3).
    """

    name: str
    beta: float
    d: int = 3

    def __post_init__(self):
        name = str(self.name).upper()
        if name not in MODELS:
            raise InputError(f"model name {self.name!r} is not allowed: use one of 'SA', 'USA'")
        object.__setattr__(self, "name", name)
        if not np.isfinite(self.beta):
            raise InputError(f"beta = {self.beta} is not allowed: use a finite real number")
        if self.name == "USA" and abs(self.beta) > 700:
            raise InputError(
                f"beta = {self.beta} is not allowed for USA: its velocities grow like e^|beta| and "
                "overflow double precision beyond |beta| = 700 (SA has no such limit)"
            )

    @property
    def normalized(self) -> bool:
        return self.name == "SA"

    def multipliers(self, lmax: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Scaled spectral multipliers (k_l, g_l) and the velocity prefactor.

        k_l = e^{-|β|} ĥ_l, g_l = e^{-|β|} ĥ_l/β, so that with K̃∗ρ = Σ k_l ρ_l and
        G̃∗ρ = Σ g_l ρ_l:  SA: X = ∇(G̃∗ρ)/(K̃∗ρ) (prefactor 1),  USA: X = e^{|β|} ∇(G̃∗ρ).
        """
        k = funk_hecke(lmax, self.beta, self.d, scaled=True)
        g = funk_hecke_over_beta(lmax, self.beta, self.d, scaled=True)
        prefactor = 1.0 if self.normalized else float(np.exp(abs(self.beta)))
        return k, g, prefactor
