"""Growth rates of a run against linear theory around the uniform state (docs/mathematics.md,
"Linear theory"; the rates themselves are :mod:`spherepde.linear`'s).

In the linear phase every harmonic of degree l grows like e^{λ_l t}: the energy per degree
E_l(t) = Σ_m ρ_lm(t)² grows like e^{2λ_l t}, so λ_l is the slope of the log-amplitude
log √E_l, and a single seeded harmonic's coefficient c(t) has slope λ_l in log |c|.

The linear window is the initial run of snapshots in which the perturbation
A(t) = ‖ρ - 1‖_{L²(σ)} = (Σ_{l≥1} E_l)^{1/2} stays at most `max_amplitude` = a. Inside it a
degree (or mode) is fitted only at the snapshots where its amplitude exceeds round-off and
A²/a, the size of the quadratic terms linear theory drops: degrees fed only by nonlinear
coupling (they grow like e^{2λ_{l*} t}) are left out. The window is exponential when its
leading degree has at least MIN_SAMPLES such snapshots, grows by at least a factor e in
energy and stays within 5% of that rise of a straight line in log amplitude.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from . import io, linear
from .config import RunConfig, loads
from .errors import InputError

MIN_SAMPLES = 4
# Amplitudes below this are round-off (about 1e4 machine epsilons of a density of order 1).
ROUNDOFF = 1e-12
# The leading degree must rise by this much in log amplitude (a factor e in energy) ...
MIN_RISE = 0.5
# ... and deviate from its fitted line by at most this fraction of the rise.
MAX_DEVIATION = 0.05
# A predicted rate below the smallest normal double has no relative error (it would overflow).
TINY = float(np.finfo(float).tiny)


class NoExponentialWindow(InputError):
    """The run has no stretch of small, exponentially growing perturbations to measure."""


def perturbation_amplitude(spectrum: np.ndarray) -> np.ndarray:
    """A(t) = ‖ρ - 1‖_{L²(σ)} = (Σ_{l≥1} E_l(t))^{1/2} from the energies per degree."""
    return np.sqrt(np.asarray(spectrum)[:, 1:].sum(axis=1))


def _fit(t: np.ndarray, amplitude: np.ndarray, threshold: np.ndarray) -> dict | None:
    """Least-squares line through log|amplitude| where |amplitude| ≥ threshold.

    None with fewer than MIN_SAMPLES such points or a change of sign among them.
    """
    use = np.abs(amplitude) >= threshold
    if use.sum() < MIN_SAMPLES or len(np.unique(np.sign(amplitude[use]))) > 1:
        return None
    ts, y = t[use], np.log(np.abs(amplitude[use]))
    slope, intercept = np.polyfit(ts, y, 1)
    return {
        "rate": float(slope),
        "samples": int(use.sum()),
        "rise": float(slope * (ts[-1] - ts[0])),
        "deviation": float(np.max(np.abs(y - (slope * ts + intercept)))),
        "t_first": float(ts[0]),
    }


def _window_length(t: np.ndarray, amplitude: np.ndarray, max_amplitude: float) -> int:
    """Number of initial snapshots with A ≤ max_amplitude; refuses too short windows."""
    beyond = np.nonzero(~(amplitude <= max_amplitude))[0]
    n = int(beyond[0]) if beyond.size else len(t)
    if n == 0:
        raise NoExponentialWindow(
            f"no exponential window: the perturbation ‖ρ-1‖ = {amplitude[0]:.3g} at t = {t[0]:g} "
            f"already exceeds {max_amplitude:g}; the run does not start near the uniform state"
        )
    if n < MIN_SAMPLES:
        raise NoExponentialWindow(
            f"no exponential window: only {n} snapshot(s) before ‖ρ-1‖ exceeds {max_amplitude:g} "
            f"(t ≤ {t[n - 1]:g}); {MIN_SAMPLES} are needed: save snapshots more often"
        )
    return n


def _check_exponential(fit: dict | None, l: int, t: np.ndarray) -> None:
    """Refuse unless the leading degree l grows exponentially over the window t."""
    where = f"t ∈ [{t[0]:g}, {t[-1]:g}]"
    if fit is None:
        raise NoExponentialWindow(
            f"no exponential window: the leading degree {l} has fewer than {MIN_SAMPLES} snapshots "
            f"above round-off and the nonlinear level in {where}"
        )
    if fit["rise"] < MIN_RISE:
        raise NoExponentialWindow(
            f"no exponential window: the leading degree {l} does not grow in {where} "
            f"(its energy changes by a factor {math.exp(2 * fit['rise']):.3g})"
        )
    if fit["deviation"] > MAX_DEVIATION * fit["rise"]:
        raise NoExponentialWindow(
            f"no exponential window: log √E_{l} of the leading degree {l} deviates from a straight "
            f"line by {fit['deviation'] / fit['rise']:.0%} of its rise in {where}"
        )


def _crossing_time(t: np.ndarray, amplitude: np.ndarray, level: float) -> float | None:
    """First time A(t) reaches `level`, interpolating log A linearly between snapshots."""
    above = np.nonzero(amplitude >= level)[0]
    if not above.size or above[0] == 0:
        return None
    i = above[0]
    y0, y1 = np.log(amplitude[i - 1]), np.log(amplitude[i])
    return float(t[i - 1] + (t[i] - t[i - 1]) * (math.log(level) - y0) / (y1 - y0))


def _predicted_crossing(t0: float, energy: np.ndarray, rates: np.ndarray, level: float) -> float | None:
    """t with Σ_l E_l(t0) e^{2λ_l (t - t0)} = level²: linear growth from the spectrum at t0.

    The log of the sum is convex in t, below log level² at t0 and above it once any single
    growing term is, so the root is unique and bracketed (with 1% to spare against rounding).
    """
    has = energy > 0
    log_e, lam = np.log(energy[has]), rates[has]
    grows = lam > 0
    if not grows.any():
        return None
    target = 2 * math.log(level)
    with np.errstate(over="ignore"):  # a negligible rate bounds nothing (inf); the fastest ones set the bound
        upper = 1.01 * float(np.min((target - log_e[grows]) / (2 * lam[grows])))
    return t0 + brentq(lambda s: logsumexp(log_e + 2 * lam * s) - target, 0.0, upper, xtol=1e-14 * upper)


def compare_spectrum(
    t,
    spectrum,
    beta: float,
    d: int,
    model: str,
    modes=None,
    mode_coefficients=None,
    *,
    kappa: float | None = None,
    max_amplitude: float = 0.05,
    speed: float = 1.0,
) -> dict:
    """Fit λ_l over the linear window of the energies per degree and compare with theory.

    t: (n_t,) increasing times; spectrum: (n_t, lmax+1) E_l = Σ_m ρ_lm² with coefficients
    normalized w.r.t. σ; modes: [[l, m], ...] seeded harmonics with coefficients
    mode_coefficients (n_t, n_modes); the predicted rates are ``speed`` · λ_l(β) (V = vI, or the
    rescaled clock: :meth:`spherepde.model.AttentionModel.linear_theory`). Raises
    NoExponentialWindow when there is none. Returns a JSON-ready dict (see `format_comparison`).
    """
    t = np.asarray(t, dtype=float)
    energy = np.asarray(spectrum, dtype=float)
    if t.ndim != 1 or energy.ndim != 2 or energy.shape[0] != t.size or energy.shape[1] < 2:
        raise InputError(
            f"spectrum of shape {energy.shape} does not fit times of shape {t.shape}: "
            "need (n_t, lmax+1) with lmax >= 1"
        )
    if np.any(np.diff(t) <= 0):
        raise InputError("times must increase strictly")
    if not 0 < max_amplitude < 1:
        raise InputError(f"max_amplitude = {max_amplitude} is not allowed: use 0 < max_amplitude < 1")
    modes = [tuple(int(k) for k in mode) for mode in (modes or [])]
    coefficients = np.empty((t.size, 0)) if not modes else np.asarray(mode_coefficients, dtype=float)
    if coefficients.shape != (t.size, len(modes)):
        raise InputError(
            f"mode coefficients of shape {coefficients.shape} do not fit {len(modes)} mode(s) "
            f"and {t.size} times"
        )
    lmax = energy.shape[1] - 1
    predicted = speed * linear.growth_rates(beta, d, model, max([lmax, *(l for l, _ in modes)]), kappa)
    if not np.all(np.isfinite(predicted)):
        raise InputError(f"beta = {beta} is not allowed here: USA growth rates overflow beyond |beta| ~ 700")

    amplitude = perturbation_amplitude(energy)
    n = _window_length(t, amplitude, max_amplitude)
    tw, threshold = t[:n], np.maximum(ROUNDOFF, amplitude[:n] ** 2 / max_amplitude)
    fits = [_fit(tw, np.sqrt(energy[:n, l]), threshold) for l in range(1, lmax + 1)]
    lead = int(np.argmax(energy[n - 1, 1:])) + 1
    _check_exponential(fits[lead - 1], lead, tw)

    def entry(fit: dict | None, rate: float) -> dict:
        measured = None if fit is None else fit["rate"]
        return {
            "measured_rate": measured,
            # theory moves the amplitude by at least a factor e over the fitted span: a rate is measurable
            "resolved": bool(fit is not None and abs(rate) * (tw[-1] - fit["t_first"]) >= 1.0),
            "predicted_rate": float(rate),
            "relative_error": None if measured is None or abs(rate) < TINY else abs(measured - rate) / abs(rate),
            "samples": 0 if fit is None else fit["samples"],
            "t_first": None if fit is None else fit["t_first"],
            "deviation": None if fit is None else fit["deviation"],
        }

    degrees = [{"degree": l, **entry(fit, predicted[l])} for l, fit in zip(range(1, lmax + 1), fits)]
    seeded = [
        {"degree": l, "order": m, **entry(_fit(tw, coefficients[:n, i], threshold), predicted[l])}
        for i, (l, m) in enumerate(modes)
    ]
    elapsed = tw[-1] - tw[0]
    with np.errstate(divide="ignore"):
        projected = np.log(energy[0, 1:]) + 2 * predicted[1 : lmax + 1] * elapsed
    return {
        "beta": float(beta),
        "dim": int(d),
        "model": str(model).upper(),
        "kappa": None if kappa is None else float(kappa),
        "window": {
            "t_start": float(tw[0]),
            "t_end": float(tw[-1]),
            "samples": n,
            "max_amplitude": max_amplitude,
            "leading_degree": lead,
        },
        "degrees": degrees,
        "modes": seeded,
        "dominant_degree": {
            "measured": lead,
            "expected": int(np.argmax(projected)) + 1,
            "fastest_growing": linear.dominant_degree(beta, d, model, kappa) if speed > 0 else None,
        },
        "linear_phase_end": {
            "amplitude": 1.0,
            "measured": _crossing_time(t, amplitude, 1.0),
            "predicted": _predicted_crossing(t[0], energy[0, 1:], predicted[1 : lmax + 1], 1.0),
        },
    }


def _pde_record(run: dict, where: str) -> tuple[np.ndarray, np.ndarray, RunConfig, np.ndarray | None]:
    """(t, spectrum, config, mode coefficients or None) of the spectral snapshots of a PDE run mapping (from
    :func:`spherepde.io.read_run` or :func:`spherepde.solver.simulate`): linear theory is about the density, so the
    snapshots after a switch to weighted points (/diagnostics/lagrangian = 1) are left out."""
    cfg = loads(run["config_text"])
    if not isinstance(cfg, RunConfig):
        raise InputError(f"{where} holds a token run: compare measures the growth rates of PDE runs "
                         "(tokens against a PDE run: spherepde.meanfield.compare_token_run)")
    diag = run["diagnostics"]
    if "spectrum" not in diag:
        raise InputError(f"{where} holds no /diagnostics/spectrum to compare with linear theory")
    spectral = diag["lagrangian"] == 0 if "lagrangian" in diag else np.ones(len(run["t"]), bool)
    modes = diag.get("modes")
    return run["t"][spectral], diag["spectrum"][spectral], cfg, None if modes is None else modes[spectral]


def read_run(path) -> tuple[np.ndarray, np.ndarray, RunConfig, np.ndarray | None]:
    """(t, spectrum, config, mode coefficients or None) of the saved snapshots of a PDE run file."""
    return _pde_record(io.read_run(path), str(path))


def compare_record(run: dict, where: str = "the run") -> dict:
    """`compare_spectrum` for a PDE run mapping (a run file read by :func:`spherepde.io.read_run`, or an
    in-memory run of :func:`spherepde.solver.simulate`), plus the keys domain and initial."""
    t, spectrum, cfg, coefficients = _pde_record(run, where)
    model = cfg.attention()
    theory = model.linear_theory()
    if theory is None:
        raise InputError(f"{where}: {model.linear_theory_gap()}")
    modes = getattr(cfg.initial, "modes", None) if coefficients is not None else None
    result = compare_spectrum(t, spectrum, theory.beta, model.d, model.name, modes, coefficients, speed=theory.speed)
    result.update(domain=cfg.domain.kind, initial=cfg.initial.kind, spectral_snapshots=len(t), snapshots=len(run["t"]))
    return result


def compare_run(path) -> dict:
    """`compare_record` of a PDE run file, plus the key run (its path)."""
    return {**compare_record(io.read_run(path), str(path)), "run": str(path)}


def format_comparison(result: dict) -> str:
    """A readable account of a comparison: window, rates per degree, dominance, end time."""
    w = result["window"]
    source = f" of {result['run']}" if "run" in result else ""
    lines = [
        f"Linear phase{source}: {result['model']}, β = {result['beta']:g}, d = {result['dim']}"
        + (f", κ = {result['kappa']:g}" if result["kappa"] is not None else ""),
        f"window t ∈ [{w['t_start']:g}, {w['t_end']:g}] ({w['samples']} snapshots with "
        f"‖ρ-1‖ ≤ {w['max_amplitude']:g}), leading degree {w['leading_degree']}",
        f"{'l':>5} {'m':>5}  {'measured λ':>14}  {'predicted λ':>14}  {'rel. error':>10}  {'snapshots':>9}",
    ]
    if result.get("spectral_snapshots", 0) < result.get("snapshots", 0):
        lines.insert(1, f"fitted over the {result['spectral_snapshots']} spectral snapshots of {result['snapshots']} "
                        "(the run continued with weighted points after them)")
    rows = [(row, "") for row in result["degrees"] if row["resolved"]]
    rows += [(row, str(row["order"])) for row in result["modes"]]
    for row, order in rows:
        measured = "—" if row["measured_rate"] is None else f"{row['measured_rate']:.8g}"
        error = "—" if row["relative_error"] is None else f"{row['relative_error']:.2e}"
        lines.append(
            f"{row['degree']:>5} {order:>5}  {measured:>14}  {row['predicted_rate']:>14.8g}  {error:>10}  "
            f"{row['samples']:>9}"
        )
    silent = [row["degree"] for row in result["degrees"] if row["measured_rate"] is None]
    if silent:
        lines.append(f"no linear signal (round-off or nonlinear level) in degrees {_ranges(silent)}")
    slow = [row["degree"] for row in result["degrees"] if row["measured_rate"] is not None and not row["resolved"]]
    if slow:
        lines.append(f"degrees {_ranges(slow)}: predicted growth below a factor e over the window, "
                     "rate not measurable (values in --json)")
    dom = result["dominant_degree"]
    lines.append(
        f"dominant degree at the end of the window: measured {dom['measured']}, expected from the "
        f"initial spectrum {dom['expected']}, fastest growing l* = {dom['fastest_growing']}"
    )
    end = result["linear_phase_end"]
    fmt = lambda x: "not reached" if x is None else f"t = {x:.6g}"  # noqa: E731
    lines.append(
        f"end of the linear phase (‖ρ-1‖ = {end['amplitude']:g}): measured {fmt(end['measured'])}, "
        f"predicted {fmt(end['predicted'])}"
    )
    return "\n".join(lines)


def _ranges(values: list[int], limit: int = 8) -> str:
    """'1-3, 7, 9-12' for [1, 2, 3, 7, 9, 10, 11, 12]; beyond ``limit`` runs the rest is counted, not listed."""
    out, start = [], values[0]
    for a, b in zip(values, [*values[1:], None]):
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}-{a}")
            start = b if b is not None else start
    if len(out) > limit:
        return ", ".join(out[:limit]) + f", … ({len(values)} degrees in all)"
    return ", ".join(out)


def plot_comparison(result_or_path, file, max_degrees: int = 6) -> Path:
    """Figure: measured vs predicted λ_l (left); E_l(t) of the leading degrees with the
    predicted slopes e^{2λ_l t} from their first fitted snapshot and the window shaded (right).

    Takes a run file or a result of `compare_run` (which names its run file).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = io.check_figure_path(file)
    if isinstance(result_or_path, dict):
        result = result_or_path
        if "run" not in result:
            raise InputError("plot_comparison needs the run file: pass its path or a result of compare_run")
    else:
        result = compare_run(result_or_path)
    t, energy, _, _ = read_run(result["run"])
    rows = result["degrees"]
    fitted = [row for row in rows if row["measured_rate"] is not None]
    w = result["window"]

    fig = Figure(figsize=(11, 4.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot([r["degree"] for r in rows], [r["predicted_rate"] for r in rows], "o-", mfc="none",
              color="C0", label="predicted (linear theory)")
    left.plot([r["degree"] for r in fitted], [r["measured_rate"] for r in fitted], "x", color="C3",
              ms=8, label="measured (energy per degree)")
    if result["modes"]:
        left.plot([r["degree"] for r in result["modes"]], [r["measured_rate"] for r in result["modes"]],
                  "*", color="C2", ms=10, label="measured (seeded harmonic)")
    left.axhline(0, color="k", lw=0.5)
    left.set_xlabel("degree l")
    left.set_ylabel(r"growth rate $\lambda_l$")
    left.set_title(f"{result['model']}, β = {result['beta']:g}, d = {result['dim']}")
    left.legend()

    leading = sorted(fitted, key=lambda r: -energy[w["samples"] - 1, r["degree"]])[:max_degrees]
    for i, row in enumerate(sorted(leading, key=lambda r: r["degree"])):
        l = row["degree"]
        right.semilogy(t, energy[:, l], color=f"C{i % 10}", lw=2.5, alpha=0.6, label=f"l = {l}")
        start = int(np.searchsorted(t, row["t_first"]))
        span = t[start:][t[start:] <= w["t_end"] + 0.5 * (w["t_end"] - w["t_start"])]
        right.semilogy(span, energy[start, l] * np.exp(2 * row["predicted_rate"] * (span - t[start])),
                       "k--", lw=0.8, label="predicted" if i == 0 else None)
    right.axvspan(w["t_start"], w["t_end"], color="0.9", zorder=0, label="linear window")
    right.set_xlabel("time t")
    right.set_ylabel(r"energy per degree $E_l = \sum_m \rho_{lm}^2$")
    right.legend(fontsize="small")
    fig.savefig(out, dpi=120)
    return out
