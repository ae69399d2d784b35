"""Harmonic analysis on S^{d-1} that every manifold and model shares: the dimension of the
harmonics of each degree, the Funk–Hecke coefficients of the kernel e^{β⟨x,y⟩}, and the zonal
harmonics (normalized Gegenbauer polynomials). docs/mathematics.md, "Harmonics on S^{d-1}".

Funk–Hecke: for a harmonic Y_l of degree l on S^{d-1} (σ the normalized measure),

    ∫ e^{β⟨x,y⟩} Y_l(y) dσ(y) = ĥ_l(β) Y_l(x),   ĥ_l(β) = Γ(d/2) (2/β)^{ν₀} I_{l+ν₀}(β),   ν₀ = (d-2)/2,

with ĥ_l(-β) = (-1)^l ĥ_l(β). The coefficients grow like e^{|β|}, so they are computed in
logarithmic form from exponentially scaled Bessel functions and are handed out scaled by
e^{-|β|} where asked: no overflow for |β| ≤ MAX_ABS_BETA.

Zonal harmonics: Y_l(s), s = ⟨x, e⟩, orthonormal in L²(σ) (Y_0 = 1, Y_1 = √d s), by the
three-term recurrence of the orthonormal polynomials of the weight c_d (1 - s²)^{(d-3)/2} on [-1, 1],

    s Y_l = b_{l+1} Y_{l+1} + b_l Y_{l-1},   b_l = √(l (l + d - 3) / ((2l + d - 2)(2l + d - 4))),

stable for every d ≥ 3 (no Gegenbauer normalization constant is ever formed). Y_l(1)² = N(d, l).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, ive

from .errors import InputError

#: log of the largest double: e^x overflows for x above it.
LOG_MAX_FLOAT = math.log(np.finfo(float).max)

#: Largest |β| accepted anywhere. scipy's scaled Bessel functions return NaN from |β| ≈ 1e10 on,
#: and nothing can resolve a kernel that narrow (its band limit is about 8√β degrees).
MAX_ABS_BETA = 1e8

#: Largest ambient dimension d accepted anywhere (S^{d-1}, d ≤ 4096).
MAX_DIM = 4096

# Below this value of the scaled Bessel function ive(ν₀, |β|) has underflowed or is
# about to (ν₀ ≫ |β|): ĥ_0 then comes from its power series.
_IVE_FLOOR = 1e-250


def harmonic_dimension(d: int, l: int) -> int:
    """N(d, l), the dimension of the spherical harmonics of degree l on S^{d-1}.

    Harmonic polynomials of degree l in d variables: dim P_l - dim P_{l-2}, dim P_l = C(l+d-1, d-1);
    N(2, l) = 2 and N(3, l) = 2l + 1 for l ≥ 1.
    """
    return math.comb(l + d - 1, d - 1) - (math.comb(l + d - 3, d - 1) if l >= 2 else 0)


def check_dimension(d, name: str = "dimension d") -> int:
    """d as an int if 2 ≤ d ≤ MAX_DIM, else InputError naming ``name``."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 2 <= d <= MAX_DIM:
        raise InputError(f"{name} = {d!r} is not allowed: use an integer from 2 to {MAX_DIM} (S^(d-1))")
    return int(d)


def check_beta(beta, name: str = "beta") -> float:
    """β as a float if finite with |β| ≤ MAX_ABS_BETA, else InputError naming ``name``."""
    try:
        value = float(beta)
    except (TypeError, ValueError):
        value = math.nan
    if not abs(value) <= MAX_ABS_BETA:
        raise InputError(f"{name} = {beta!r} is not allowed: use a finite real number with |beta| <= {MAX_ABS_BETA:g}")
    return value


def _log_series(nu: float, b: float) -> float:
    """log of ₀F₁(; ν+1; b²/4) = Σ_k (b²/4)^k / (k! (ν+1)_k), used only where ν ≫ b (a few terms)."""
    z = b * b / 4.0
    term = total = 1.0
    for k in range(1, 100_000):
        term *= z / (k * (nu + k))
        total += term
        if k * (nu + k) > z and term < 1e-17 * total:
            return math.log(total)
    raise ArithmeticError(f"the Bessel series at nu = {nu}, b = {b} did not converge")  # not reached for |β| ≤ MAX_ABS_BETA


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
    every degree and |β| ≤ 1000. At β = 0 the kernel is constant: ĥ_0 = 1 and ĥ_l = 0
    (log = -inf) for l ≥ 1.
    """
    d = check_dimension(d)
    beta = check_beta(beta)
    sign = np.ones(lmax + 1)
    logh = np.empty(lmax + 1)
    if beta == 0.0:
        logh[:] = -np.inf
        logh[0] = 0.0
        return logh, sign
    b = abs(beta)
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


def _shift(beta: float, scaled: bool, log_scale: float | None) -> float:
    return log_scale if log_scale is not None else abs(beta) if scaled else 0.0


def funk_hecke(lmax: int, beta: float, d: int = 3, scaled: bool = False, log_scale: float | None = None) -> np.ndarray:
    """ĥ_l(β) for l = 0..lmax; with ``scaled=True`` the values e^{-|β|} ĥ_l(β) (always finite), with
    ``log_scale`` = s the values e^{-s} ĥ_l(β) (s = log ĥ_0: the ratios ĥ_l/ĥ_0, finite for every d)."""
    logh, sign = log_funk_hecke(lmax, beta, d)
    shift = _shift(beta, scaled, log_scale)
    with np.errstate(over="ignore"):
        return sign * np.exp(logh - shift)


def funk_hecke_over_beta(lmax: int, beta: float, d: int = 3, scaled: bool = False,
                         log_scale: float | None = None) -> np.ndarray:
    """ĥ_l(β)/β for l = 1..lmax (entry 0 is set to 0), with its limit at β = 0 (scaled as :func:`funk_hecke`).

    This is the multiplier of the potential (1/β) K∗ρ whose gradient is the USA
    velocity; at β = 0 only l = 1 survives, ĥ_1/β → 1/d.
    """
    out = np.zeros(lmax + 1)
    if lmax == 0:
        return out
    if beta == 0.0:
        out[1] = 1.0 / d
        return out
    logh, sign = log_funk_hecke(lmax, beta, d)
    shift = _shift(beta, scaled, log_scale)
    with np.errstate(over="ignore"):
        out[1:] = sign[1:] * np.exp(logh[1:] - np.log(abs(beta)) - shift) * np.sign(beta)
    return out


def funk_hecke_derivative(lmax: int, beta: float, d: int = 3, scaled: bool = False,
                          log_scale: float | None = None) -> np.ndarray:
    """∂_β ĥ_l(β) = ĥ_{l+1}(β) + (l/β) ĥ_l(β) for l = 0..lmax (scaled as :func:`funk_hecke`).

    From I'_ν = I_{ν+1} + (ν/β) I_ν with ν = l + ν₀ and the factor β^{-ν₀} of ĥ_l. Both terms
    have the sign of ĥ_{l+1}(β) for either sign of β, so the sum never cancels; at β = 0 it is the
    limit ∂_β ĥ_1 = 1/d (all other degrees 0). This is the multiplier of the normal part of the
    attention sum, ⟨x, ∫ e^{β⟨x,y⟩} y ρ(y) dσ(y)⟩ = ∂_β(K∗ρ)(x).
    """
    h = funk_hecke(lmax + 1, beta, d, scaled, log_scale)
    return h[1:] + np.arange(lmax + 1) * funk_hecke_over_beta(lmax, beta, d, scaled, log_scale)


def kernel_bandwidth(beta: float, d: int = 3, tol: float = 1e-8) -> int:
    """The first degree l with |ĥ_l(β)| < tol · ĥ_0(β): the kernel's effective band limit.

    |ĥ_l/ĥ_0| decreases in l, like e^{-l²/2|β|} while l ≪ |β| and faster than 2^{-l} once
    l > e|β|/2, so the search starts at 1.5(√(2|β|L) + L) + 16, L = ln(1/tol), and doubles
    (at most a few times: the ratio falls below tol before l = e|β| + 2L).
    """
    log_tol = math.log(tol)
    lmax = math.ceil(1.5 * (math.sqrt(-2.0 * abs(beta) * log_tol) - log_tol)) + 16
    while True:
        logh, _ = log_funk_hecke(lmax, beta, d)
        below = np.nonzero(logh - logh[0] < log_tol)[0]
        if below.size:
            return int(below[0])
        lmax *= 2


def zonal_recurrence(lmax: int, d: int) -> np.ndarray:
    """b_l, l = 0..lmax+1, of s Y_l = b_{l+1} Y_{l+1} + b_l Y_{l-1} (b_0 = 0) on S^{d-1}.

    For d = 2 the formula's limit: b_1 = 1/√2, b_l = 1/2 (Y_l = √2 cos lθ, Chebyshev)."""
    l = np.arange(lmax + 2, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.sqrt(l * (l + d - 3) / ((2 * l + d - 2) * (2 * l + d - 4)))
    if d == 2:
        b[1:] = 0.5
        if lmax >= 0:
            b[1] = math.sqrt(0.5)
    b[0] = 0.0
    return b


def zonal_harmonics(s: np.ndarray, lmax: int, d: int, derivative: bool = False):
    """Y_l(s), l = 0..lmax, the zonal harmonics on S^{d-1} orthonormal in L²(σ): shape ``(lmax+1, *s.shape)``;
    with ``derivative=True`` also Y_l'(s) (same shape), from the differentiated recurrence
    b_{l+1} Y'_{l+1} = Y_l + s Y'_l - b_l Y'_{l-1}. By the addition theorem
    Σ_m Y_lm(x) Y_lm(y) = Y_l(1) Y_l(⟨x,y⟩), Y_l(1)² = N(d, l).
    """
    s = np.asarray(s, dtype=float)
    b = zonal_recurrence(lmax, d)
    Y = np.zeros((lmax + 1, *s.shape))
    dY = np.zeros_like(Y)
    Y[0] = 1.0
    for l in range(lmax):
        Y[l + 1] = s * Y[l]
        if l > 0:
            Y[l + 1] -= b[l] * Y[l - 1]
        Y[l + 1] /= b[l + 1]
        if derivative:
            dY[l + 1] = Y[l] + s * dY[l]
            if l > 0:
                dY[l + 1] -= b[l] * dY[l - 1]
            dY[l + 1] /= b[l + 1]
    return (Y, dY) if derivative else Y
