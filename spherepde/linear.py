"""Linear stability of the uniform state ρ ≡ 1 on S^{d-1} (docs/mathematics.md, "Linear theory").

A perturbation ρ = 1 + ε Y_l by a harmonic of degree l evolves as dε/dt = λ_l ε with

    λ_l^USA = l(l+d-2) ĥ_l(β) / β,      λ_l^SA = λ_l^USA / ĥ_0(β),

ĥ_l the Funk–Hecke coefficients of e^{β⟨x,y⟩} and l(l+d-2) the eigenvalue of -Δ. At β = 0
only l = 1 moves: λ_1 = (d-1)/d. Diffusion κ⁻¹Δ adds -l(l+d-2)/κ to every rate.

For β > 0 every degree l ≥ 1 grows and l ↦ λ_l is unimodal (λ_{l+1}/λ_l decreases in l and
increases in β, because the Bessel ratio I_{ν+1}/I_ν does), so the dominant degree
l*(β) = argmax_l λ_l steps up by one at each switch point β_{l→l+1}, the unique root of
λ_l = λ_{l+1}. For β < 0, ĥ_l(β) = (-1)^l ĥ_l(|β|): odd degrees grow, even ones decay, and
l* steps through the odd degrees, l → l+2. SA and USA share l* and the switch points.

USA rates grow like e^{|β|} and leave the double range for |β| ≳ 700; SA rates are below
about 2/e + O(β^{-1/2}) for β > 0 and always finite. Functions that may meet the overflow
return rates scaled by e^{-s} together with s (`scaled_growth_rates`).
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from .errors import InputError
from .io import check_figure_path
from .harmonics import LOG_MAX_FLOAT, MAX_DIM, check_beta, harmonic_dimension, log_funk_hecke
from .model import MODELS
# The default table stops at the first degree past l* whose rate is this fraction of λ_{l*}.
_TABLE_CUTOFF = 1e-2


def _check(beta: float, d: int, model: str | None = None, kappa: float | None = None) -> str | None:
    """Validate the common arguments; return the model name in upper case."""
    if isinstance(d, bool) or not isinstance(d, Integral) or not 2 <= d <= MAX_DIM:
        raise InputError(f"dimension d = {d!r} is not allowed: use an integer 2 <= d <= {MAX_DIM} (S^(d-1))")
    if not isinstance(beta, Real):
        raise InputError(f"beta = {beta!r} is not allowed: use a finite real number")
    check_beta(beta)
    if kappa is not None and not (isinstance(kappa, Real) and 0 < kappa < math.inf):
        raise InputError(f"kappa = {kappa!r} is not allowed: use a finite positive number (or none)")
    if model is None:
        return None
    name = str(model).upper()
    if name not in MODELS:
        raise InputError(f"model {model!r} is not allowed: use one of 'SA', 'USA'")
    return name


def _check_positive_integer(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"{name} = {value!r} is not allowed: use an integer {name} >= 1")


def scaled_growth_rates(
    beta: float, d: int, model: str, lmax: int, kappa: float | None = None
) -> tuple[np.ndarray, float]:
    """(r, s) with λ_l = r_l e^{s} for l = 0..lmax, including the diffusion -l(l+d-2)/κ.

    s = 0 whenever all rates fit in a double (always for SA); s = |β| for USA rates beyond
    the double range (|β| ≳ 700). Relative accuracy about 1e-12 for |β| ≤ 1000, d ≤ 1024.
    """
    name = _check(beta, d, model, kappa)
    _check_positive_integer("lmax", lmax)
    l = np.arange(lmax + 1)
    eigenvalues = (l * (l + d - 2)).astype(float)  # of -Δ
    s = 0.0
    if beta == 0:
        rates = np.where(l == 1, (d - 1) / d, 0.0)
    else:
        logh, sign = log_funk_hecke(lmax, beta, d)
        with np.errstate(divide="ignore"):
            log_rates = np.log(eigenvalues) + logh - math.log(abs(beta))
        if name == "SA":
            log_rates -= logh[0]
        elif log_rates.max() >= LOG_MAX_FLOAT:
            s = abs(beta)
        rates = sign * math.copysign(1.0, beta) * np.exp(log_rates - s)
        rates[0] = 0.0  # mass is conserved (not -0.0 for β < 0)
    if kappa is not None:
        rates = rates - eigenvalues / kappa * math.exp(-s)
    return rates, s


def growth_rates(beta: float, d: int, model: str, lmax: int, kappa: float | None = None) -> np.ndarray:
    """λ_l for l = 0..lmax, minus l(l+d-2)/κ with diffusion κ⁻¹Δ.

    USA rates beyond the double range (|β| ≳ 700) come out as ±inf: use
    `scaled_growth_rates` there.
    """
    rates, s = scaled_growth_rates(beta, d, model, lmax, kappa)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(rates == 0, 0.0, rates * np.exp(s))  # 0·e^s = 0 even where e^s = inf


def _noise_free_lmax(beta: float, d: int) -> int:
    """The first degree L ≥ l*+2 past l* with |λ_L| ≤ 1e-2 λ_{l*} (noise-free rates).

    Beyond L the rates keep decreasing in modulus, and with diffusion they decrease
    faster still, so every maximum over degrees can be taken over 0..L.
    """
    lmax = 16
    while True:
        rates, _ = scaled_growth_rates(beta, d, "SA", lmax)
        top = int(np.argmax(rates[1:])) + 1
        past = np.nonzero(np.abs(rates[top + 2 :]) <= _TABLE_CUTOFF * rates[top])[0]
        if past.size:
            return top + 2 + int(past[0])
        lmax *= 2


def _leaders(beta: float, d: int, model: str, kappa: float | None) -> tuple[int, float, float, float]:
    """(l*, r_{l*}, r_second, s): the fastest degree l ≥ 1 and the two largest rates λ e^{-s}."""
    rates, s = scaled_growth_rates(beta, d, model, _noise_free_lmax(beta, d), kappa)
    order = np.argsort(rates[1:])[::-1] + 1
    return int(order[0]), float(rates[order[0]]), float(rates[order[1]]), s


def dominant_degree(beta: float, d: int, model: str = "SA", kappa: float | None = None) -> int:
    """l* = argmax_{l ≥ 1} λ_l (without diffusion the same for SA and USA)."""
    return _leaders(beta, d, model, kappa)[0]


def selectivity(beta: float, d: int, model: str = "SA", kappa: float | None = None) -> float:
    """λ_{l*} / λ_second, the ratio of the two largest rates: near 1 at switch points.

    inf when only l* grows (β = 0); nan when no degree grows (diffusion wins).
    """
    _, top, second, _ = _leaders(beta, d, model, kappa)
    if top <= 0:
        return math.nan
    return top / second if second > 0 else math.inf


def _switch(l: int, step: int, d: int) -> float:
    """b > 0 with |λ_l(b)| = |λ_{l+step}(b)|: the root of log|λ_{l+step}/λ_l|, increasing in b.

    log|λ_{l'}/λ_l| = log(l'(l'+d-2) / l(l+d-2)) + log ĥ_{l'}(b) - log ĥ_l(b) runs from -∞
    (b → 0) to a positive limit (b → ∞), so the root is unique; brentq, bracketed around
    the large-β estimate [(l + step/2 + ν₀)² - ν₀² + 1/4] / 2.
    """
    nu0 = (d - 2) / 2
    upper = l + step
    log_eigenratio = math.log(upper * (upper + d - 2) / (l * (l + d - 2)))

    def log_ratio(b: float) -> float:
        logh, _ = log_funk_hecke(upper, b, d)
        return log_eigenratio + logh[upper] - logh[l]

    guess = ((l + step / 2 + nu0) ** 2 - nu0**2 + 0.25) / 2
    lo, hi = guess / 2, 2 * guess
    while log_ratio(lo) > 0:
        lo /= 2
    while log_ratio(hi) < 0:
        hi *= 2
    return brentq(log_ratio, lo, hi, xtol=1e-15 * guess, rtol=4 * np.finfo(float).eps)


def switch_points(d: int, beta_max: float) -> list[tuple[float, int, int]]:
    """The switch points between 0 and beta_max: triples (β, l, l') where l* changes from l
    to l' as β moves away from 0, found as roots of λ_l(β) = λ_{l'}(β) (brentq).

    β > 0: l' = l+1 at β_{l→l+1}, for large β ≈ [(l + (d-1)/2)² - (d-1)(d-3)/4]/2.
    β < 0: only odd degrees grow; l' = l+2 at -β_{l→l+2}(|β|).
    """
    _check(beta_max, d)
    if beta_max == 0:
        return []
    step, sign = (1, 1.0) if beta_max > 0 else (2, -1.0)
    points = []
    l = 1
    while True:
        b = _switch(l, step, d)
        if b > abs(beta_max):
            break
        points.append((sign * b, l, l + step))
        l += step
    return points


def dominance_interval(beta: float, d: int) -> tuple[float, float]:
    """The interval of β, bounded by switch points (or 0), on which l*(β) dominates (no diffusion)."""
    _check(beta, d)
    top = dominant_degree(beta, d)
    if beta >= 0:
        return (_switch(top - 1, 1, d) if top > 1 else 0.0), _switch(top, 1, d)
    return -_switch(top, 2, d), (-_switch(top - 2, 2, d) if top > 1 else 0.0)


def stability_threshold(beta: float, d: int, model: str) -> float:
    """κ_c such that with diffusion κ⁻¹Δ the uniform state is stable iff κ < κ_c.

    λ_l - l(l+d-2)/κ < 0 for all l ≥ 1 iff 1/κ > λ_l / (l(l+d-2)), which is largest at
    l = 1 (|ĥ_l| decreases in l): κ_c = (d-1)/λ_1, i.e. β/ĥ_1 (USA), βĥ_0/ĥ_1 (SA);
    κ_c = d at β = 0 (2 on the circle: Kuramoto's threshold).
    """
    rates, s = scaled_growth_rates(beta, d, model, 1)
    return math.exp(math.log(d - 1) - math.log(rates[1]) - s)


def linear_phase_duration(
    beta: float,
    d: int,
    model: str,
    amplitude: float | None = None,
    n_tokens: int | None = None,
    kappa: float | None = None,
) -> float:
    """t_lin = ln(1/ε₀) / λ_{l*}: the time for degree l* to grow from ε₀ to amplitude 1.

    ε₀ is the L²(σ) norm of the initial perturbation's degree-l* part: `amplitude`, or, for
    n_tokens iid uniform tokens, ε₀² = E[Σ_m ρ_{l*m}²] = N(d,l*)/n_tokens. Returns 0 when
    ε₀ ≥ 1 and inf when no degree grows.
    """
    if (amplitude is None) == (n_tokens is None):
        raise InputError("give exactly one of amplitude and n_tokens")
    if amplitude is not None and not (isinstance(amplitude, Real) and amplitude > 0):
        raise InputError(f"amplitude = {amplitude!r} is not allowed: use a positive number")
    if n_tokens is not None:
        _check_positive_integer("n_tokens", n_tokens)
    top, rate, _, s = _leaders(beta, d, model, kappa)
    if rate <= 0:
        return math.inf
    if amplitude is not None:
        log_eps = math.log(amplitude)
    else:
        assert n_tokens is not None
        log_eps = 0.5 * math.log(harmonic_dimension(d, top) / n_tokens)
    return max(0.0, -log_eps / rate * math.exp(-s))


def report(beta: float, d: int, model: str, lmax: int | None = None, kappa: float | None = None) -> dict:
    """Linear theory at one β as a JSON-ready dict.

    Keys: beta, dim, model, kappa, degrees (0..L), growth_rates and max_growth_rate (λ_l and
    λ_{l*} in units of e^{rate_exponent}: rate_exponent = 0 unless USA rates overflow a double,
    then |β|), dominant_degree, e_folding_time 1/λ_{l*}, selectivity λ_(1)/λ_(2),
    dominance_interval (without diffusion), stability_threshold κ_c, stable (with diffusion).
    Undefined or infinite values are None.
    Default L: the first degree past l*+1 whose rate is below 1% of λ_{l*}.
    """
    name = str(_check(beta, d, model, kappa))
    if lmax is None:
        lmax = _noise_free_lmax(beta, d)
    _check_positive_integer("lmax", lmax)
    top, rate, second, s = _leaders(beta, d, name, kappa)
    rates, s_table = scaled_growth_rates(beta, d, name, lmax, kappa)
    rates = rates * math.exp(s_table - s)  # in the units of λ_{l*}: s ≥ s_table
    out = {
        "beta": float(beta),
        "dim": int(d),
        "model": name,
        "kappa": None if kappa is None else float(kappa),
        "degrees": list(range(lmax + 1)),
        "growth_rates": [float(r) for r in rates],
        "rate_exponent": s,
        "dominant_degree": top,
        "max_growth_rate": rate,
        "e_folding_time": math.exp(-s) / rate if rate > 0 else None,
        "selectivity": rate / second if rate > 0 and second > 0 else None,
        "dominance_interval": None if kappa is not None else list(dominance_interval(beta, d)),
        "stability_threshold": stability_threshold(beta, d, name),
    }
    if kappa is not None:
        out["stable"] = bool(rate < 0)
    return out


def format_report(report: dict) -> str:
    """A readable table of `report(...)`."""
    unit = f" [× e^{report['rate_exponent']:g}]" if report["rate_exponent"] else ""
    d = report["dim"]
    head = f"Linear theory around ρ ≡ 1: {report['model']}, β = {report['beta']:g}, S^{d - 1} (d = {d})"
    if report["kappa"] is not None:
        head += f", diffusion 1/κ with κ = {report['kappa']:g}"
    top = report["dominant_degree"]
    lines = [head, f"{'l':>5}  {'growth rate λ_l' + unit}"]
    for l, rate in zip(report["degrees"], report["growth_rates"]):
        lines.append(f"{l:>5}  {rate: .10g}" + ("   ← l*" if l == top else ""))
    lines.append(f"dominant degree l* = {top}")
    if report["dominance_interval"] is not None:
        lo, hi = report["dominance_interval"]
        lines[-1] += f" for {lo:.8g} < β < {hi:.8g}"
    if report["selectivity"] is not None:
        lines.append(f"selectivity λ_(1)/λ_(2) = {report['selectivity']:.6g}")
    if report["e_folding_time"] is not None:
        lines.append(
            f"e-folding time 1/λ_l* = {report['e_folding_time']:.6g}; "
            f"linear phase from amplitude ε₀ lasts ≈ ln(1/ε₀)/λ_l*"
        )
    kappa_c = report["stability_threshold"]
    lines.append(f"with diffusion κ⁻¹Δ the uniform state is stable iff κ < {kappa_c:.8g}")
    if "stable" in report:
        lines.append("uniform state: " + ("stable" if report["stable"] else "unstable"))
    return "\n".join(lines)


def draw_dominant_degree(ax, d: int, beta_max: float) -> list[tuple[float, int, int]]:
    """Draw l*(β) for β between 0 and beta_max on the matplotlib axes ``ax``: the exact
    staircase, its switch points and the large-|β| asymptote. Returns the switch points."""
    switches = switch_points(d, beta_max)
    at = [b for b, _, _ in switches]
    betas = np.linspace(0, beta_max, 401)
    nu = (d - 2) / 2
    ax.stairs([1] + [l_next for _, _, l_next in switches], [0.0, *at, beta_max], baseline=None,
              color="C0", label="l*(β), exact")
    ax.plot(betas, np.sqrt(np.maximum(2 * np.abs(betas) + nu**2 - 0.25, 0)) - nu + 0.5, "C1--", lw=1,
            label=r"$\sqrt{2|\beta| + (d-1)(d-3)/4} - (d-3)/2$ (large $|\beta|$)")
    ax.plot(at, [(l + l_next) / 2 for _, l, l_next in switches], "k|", ms=10,
            label="switch points (λ_l = λ_l')")
    ax.set_ylabel("dominant degree l*")
    return switches


def plot_phase_diagram(d: int, beta_max: float, out: str | Path) -> Path:
    """Figure of l*(β) for β between 0 and beta_max with the switch points marked, and the
    selectivity λ_(1)/λ_(2) below it; written to `out` (format from the suffix)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure


    _check(beta_max, d)
    if beta_max == 0:
        raise InputError("beta_max = 0 is not allowed: use a nonzero bound for the β axis")
    out = check_figure_path(out)
    fig = Figure(figsize=(7, 6), constrained_layout=True)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    at = [b for b, _, _ in draw_dominant_degree(top, d, beta_max)]
    top.set_title(f"Linear instability of the uniform state on $S^{{{d - 1}}}$ (d = {d})")
    top.legend(loc="best")
    # the grid and the switch points, where the selectivity touches 1
    betas = np.sort(np.concatenate([np.linspace(0, beta_max, 401)[1:], at]))
    ratios = np.array([selectivity(b, d) for b in betas])
    bottom.plot(betas, ratios, "C0")
    for b in at:
        bottom.axvline(b, color="k", lw=0.5, ls=":")
    bottom.set_ylim(1, min(2.0, 1.05 * float(ratios.max())))
    bottom.set_xlabel("inverse temperature β")
    bottom.set_ylabel("selectivity λ_(1)/λ_(2)")
    fig.savefig(out, dpi=120)
    return out
