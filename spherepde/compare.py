"""Comparisons: growth rates of a run against linear theory (theory.md §5), and token
snapshots against PDE snapshots (the mean-field limit; the second half of this module).

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

Tokens vs mean field: the empirical measure μ_n = (1/n) Σ δ_{x_i} against ν = ρσ through their
real harmonic coefficients (`empirical_coefficients`, `sobolev_distance`) and by exact optimal
transport with the geodesic cost (`wasserstein_distance`: POT on S², the circular quantile
formula on S¹), for one snapshot (`tokens_vs_density`) or two run files (`compare_token_run`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from . import config, io, linear
from .errors import InputError, NumericalFailure

MIN_SAMPLES = 4
# Amplitudes below this are round-off (about 1e4 machine epsilons of a density of order 1).
ROUNDOFF = 1e-12
# The leading degree must rise by this much in log amplitude (a factor e in energy) ...
MIN_RISE = 0.5
# ... and deviate from its fitted line by at most this fraction of the rise.
MAX_DEVIATION = 0.05


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
) -> dict:
    """Fit λ_l over the linear window of the energies per degree and compare with theory.

    t: (n_t,) increasing times; spectrum: (n_t, lmax+1) E_l = Σ_m ρ_lm² with coefficients
    normalized w.r.t. σ; modes: [[l, m], ...] seeded harmonics with coefficients
    mode_coefficients (n_t, n_modes). Raises NoExponentialWindow when there is none.
    Returns a JSON-ready dict (see `format_comparison`).
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
    predicted = linear.growth_rates(beta, d, model, max([lmax, *(l for l, _ in modes)]), kappa)
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
            "relative_error": None if measured is None or rate == 0 else abs(measured - rate) / abs(rate),
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
            "fastest_growing": linear.dominant_degree(beta, d, model, kappa),
        },
        "linear_phase_end": {
            "amplitude": 1.0,
            "measured": _crossing_time(t, amplitude, 1.0),
            "predicted": _predicted_crossing(t[0], energy[0, 1:], predicted[1 : lmax + 1], 1.0),
        },
    }


def read_run(path) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray | None]:
    """(t, spectrum, config, mode coefficients or None) of the saved snapshots of a run file."""
    run = io.read_run(path)
    if "spectrum" not in run["diagnostics"]:
        raise InputError(f"{path} holds no /diagnostics/spectrum to compare with linear theory")
    return run["t"], run["diagnostics"]["spectrum"], run["config"], run["diagnostics"].get("modes")


def compare_run(path) -> dict:
    """`compare_spectrum` for a run file, plus the keys run, domain and initial."""
    t, spectrum, cfg, coefficients = read_run(path)
    try:
        name, beta = cfg["model"]["name"], cfg["model"]["beta"]
        kind = cfg["domain"]["kind"]
    except KeyError as exc:
        raise InputError(f"the config stored in {path} lacks the key {exc}") from exc
    if kind not in config.DOMAINS:
        raise InputError(f"domain kind {kind!r} in {path} is not allowed: use 'sphere' or 'circle'")
    d = config.DOMAINS[kind]
    for key in ("Q", "K", "V"):
        if key in cfg["model"] and not np.array_equal(cfg["model"][key], np.eye(d)):
            raise InputError(
                f"{key} in {path} is not the identity: the uniform state is then in general not "
                "stationary and there is no linear theory around it to compare with"
            )
    initial = cfg.get("initial", {})
    modes = initial.get("modes") if coefficients is not None else None
    result = compare_spectrum(t, spectrum, beta, d, name, modes, coefficients)
    result.update(run=str(path), domain=kind, initial=initial.get("kind"))
    return result


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


def _ranges(values: list[int]) -> str:
    """'1-3, 7, 9-12' for [1, 2, 3, 7, 9, 10, 11, 12]."""
    out, start = [], values[0]
    for a, b in zip(values, values[1:] + [None]):
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
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


# --------------------------------------------------------------------------- tokens vs mean field
# A token snapshot is the empirical measure μ_n = (1/n) Σ_i δ_{x_i}; a PDE snapshot is ν = ρσ.
# Both are compared through their real harmonic coefficients (negative Sobolev distance) and
# by optimal transport with the geodesic cost (Wasserstein-2).

#: Default order s of `sobolev_distance`. The H^{-s} norm of a Dirac mass on S^{d-1} is finite
#: iff s > (d-1)/2 (Σ_l N(d,l) l^{-2s} < ∞); s = 2 makes it finite on S¹ and S² alike, and an
#: empirical measure (E Σ_m a_lm² = N(d,l)/n) then has a share ~ 1/L² of D_s² beyond degree L
#: (S²), so that truncating at L = 16 leaves D_s of tokens vs density within 0.5% (docs/particles.md).
SOBOLEV_ORDER = 2.0

#: Largest number of cost-matrix entries n·m handed to the exact OT solver (800 MB of doubles).
MAX_TRANSPORT_ENTRIES = 10**8


def _manifold(d: int, lmax: int):
    from .solver import discretization

    kinds = {dim: kind for kind, dim in config.DOMAINS.items()}
    if d not in kinds:
        raise InputError(f"tokens in R^{d} are not allowed here: use d = 3 (S²) or d = 2 (S¹)")
    return discretization(kinds[d], lmax)


def empirical_coefficients(points, manifold, block: int = 4096) -> np.ndarray:
    """a_lm = (1/n) Σ_i Y_lm(x_i): the real harmonic coefficients of the empirical measure
    (1/n) Σ_i δ_{x_i}, degrees ≤ manifold.lmax, in the manifold's real layout (the same
    numbers as ``manifold.real_coefficients(manifold.analysis(ρ))`` for a density ρ)."""
    from .particles import _as_points

    x = _as_points(points)
    if x.shape[1] != manifold.d:
        raise InputError(f"points in R^{x.shape[1]} do not lie on the {manifold.kind} (R^{manifold.d})")
    total = np.zeros(manifold.real_size)
    block = max(1, min(block, 2**22 // manifold.real_size))
    for start in range(0, len(x), block):
        total += manifold.harmonics(x[start:start + block]).sum(axis=0)
    return total / len(x)


def sobolev_distance(a, b, manifold, s: float = SOBOLEV_ORDER) -> float:
    """‖μ − ν‖_{H^{-s}} = (Σ_{l ≤ L} (1 + l(l+d−2))^{−s} Σ_m (a_lm − b_lm)²)^{1/2}.

    a, b: real coefficients of μ and ν in the manifold's layout (L = manifold.lmax). The
    weight is the symbol of (1 − Δ)^{−s}; s > (d−1)/2 makes the full sum finite for measures,
    where it metrizes weak convergence (a kernel mean discrepancy).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != (manifold.real_size,) or b.shape != a.shape:
        raise InputError(f"coefficients of shapes {a.shape}, {b.shape} do not fit the layout of size {manifold.real_size}")
    l = manifold.real_degrees
    weight = (1.0 + l * (l + manifold.d - 2.0)) ** (-float(s))
    return float(np.sqrt(np.sum(weight * (a - b) ** 2)))


def _weights(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise InputError(f"{name} must be {n} finite non-negative weights with a positive sum")
    return w / w.sum()


def geodesic_distance(x, y) -> np.ndarray:
    """Great-circle distances arccos⟨x_i, y_j⟩ (n, m) between unit vectors."""
    return np.arccos(np.clip(x @ y.T, -1.0, 1.0))


def wasserstein_distance(x, y, a=None, b=None) -> float:
    """W₂(Σ a_i δ_{x_i}, Σ b_j δ_{y_j}) on S^{d-1} with the geodesic cost d(x, y)², exactly.

    Weights default to uniform and are normalized. S¹ (d = 2): the circular formula of
    `circle_wasserstein_distance`, O((n+m) log(n+m)). Otherwise the network simplex of POT
    (``ot.emd2``) on the n×m cost matrix, refused beyond MAX_TRANSPORT_ENTRIES entries.
    """
    from .particles import _as_points

    x, y = _as_points(x, "x"), _as_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"points in R^{x.shape[1]} and R^{y.shape[1]} cannot be compared")
    a, b = _weights(a, len(x), "a"), _weights(b, len(y), "b")
    if x.shape[1] == 2:
        return circle_wasserstein_distance(np.arctan2(x[:, 1], x[:, 0]), np.arctan2(y[:, 1], y[:, 0]), a, b)
    if len(x) * len(y) > MAX_TRANSPORT_ENTRIES:
        raise InputError(
            f"exact transport between {len(x)} and {len(y)} points needs a {len(x)}x{len(y)} cost matrix: "
            f"at most {MAX_TRANSPORT_ENTRIES:.0e} entries (use fewer tokens or a coarser grid)"
        )
    import ot

    cost, log = ot.emd2(a, b, geodesic_distance(x, y) ** 2, numItermax=max(10**6, 50 * len(x) * len(y)), log=True)
    if log["result_code"] != 1:
        raise NumericalFailure(f"exact optimal transport did not converge: {log['warning']}")
    return float(np.sqrt(max(cost, 0.0)))


def _circle_profile(theta, w):
    """Angles mapped to [0, 1) (fractions of a turn), sorted, with their weights' cumulative sums."""
    u = np.mod(np.asarray(theta, dtype=float) / (2 * np.pi), 1.0)
    u[u == 1.0] = 0.0  # a tiny negative angle rounds to a full turn
    order = np.argsort(u, kind="stable")
    u, cum = u[order], np.cumsum(w[order])
    cum /= cum[-1]
    return u, cum


def circle_wasserstein_distance(theta, phi, a=None, b=None) -> float:
    """W₂ on S¹ with the arc-length cost between Σ a_i δ_{θ_i} and Σ b_j δ_{φ_j}, exactly:

        W₂² = (2π)² min_α ∫₀¹ |F⁻¹(t) − G⁻¹(t + α)|² dt

    (Delon, Salomon & Sobolevski 2010), F⁻¹, G⁻¹ the quantile functions of the two measures
    on [0, 1) (angles in turns) extended by G⁻¹(s + 1) = G⁻¹(s) + 1. The objective is convex
    and piecewise linear in the shift α of the cut point; α* is found by bisection on its
    exact slope (each evaluation O((n+m) log(n+m))) and the objective is evaluated there.
    W₂ is the root of W₂², so near 0 its absolute accuracy is √(round-off) ≈ 1e-8.
    """
    theta, phi = np.asarray(theta, dtype=float).ravel(), np.asarray(phi, dtype=float).ravel()
    a, b = _weights(a, theta.size, "a"), _weights(b, phi.size, "b")
    u, P = _circle_profile(theta, a)
    v, Q = _circle_profile(phi, b)
    v_next = np.append(v[1:], v[0] + 1.0)  # G⁻¹ just after each of its jumps at Q_j

    def quantile_mu(t, side):
        return u[np.minimum(np.searchsorted(P, t, side=side), u.size - 1)]

    def objective(alpha):
        cuts = np.unique(np.concatenate([[0.0], P, np.mod(Q - alpha, 1.0), [1.0]]))
        mid, length = 0.5 * (cuts[1:] + cuts[:-1]), np.diff(cuts)
        s = mid + alpha
        k = np.floor(s)
        g = v[np.minimum(np.searchsorted(Q, s - k, side="left"), v.size - 1)] + k
        return float(np.sum(length * (quantile_mu(mid, "left") - g) ** 2))

    def slope(alpha):
        # as α grows, each jump of G⁻¹(t + α), at t_j = Q_j − α (mod 1), moves left: the
        # right-hand value v_{j+1} takes over from v_j at t_j, against F⁻¹(t_j+)
        t = np.mod(Q - alpha, 1.0)
        k = np.round(t + alpha - Q)
        f = quantile_mu(t, "right")
        return float(np.sum((f - v_next - k) ** 2 - (f - v - k) ** 2))

    lo, hi = -1.0, 1.0  # slope < 0 at α = −1 (G⁻¹ < F⁻¹ everywhere), > 0 at α = 1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if slope(mid) > 0:
            hi = mid
        else:
            lo = mid
    return 2 * np.pi * float(np.sqrt(max(min(objective(lo), objective(hi)), 0.0)))


def density_support(manifold, c, grid_lmax: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """The density ν = ρσ with coefficients c on ``manifold`` as weighted grid points:
    (points, weights, clipped), ν_h = Σ_k w_k ρ(x_k)₊ δ_{x_k} / Σ_k w_k ρ(x_k)₊.

    The grid is the quadrature grid of the discretization of degree ``grid_lmax`` (default
    the manifold's own): Gauss–Legendre × equispaced on S², equispaced on S¹; ρ is evaluated
    exactly at its nodes from its coefficients. A coarser grid coarse-grains ν (fewer
    points, larger cells); grid_lmax ≥ lmax/3 keeps the mass exact, the quadrature being exact
    to degree 3·grid_lmax. ``clipped`` is the share of mass removed with the negative values
    (round-off of a spectral solution).
    """
    lmax = manifold.lmax
    grid_lmax = lmax if grid_lmax is None else grid_lmax
    if isinstance(grid_lmax, bool) or not isinstance(grid_lmax, (int, np.integer)) or 3 * grid_lmax < lmax:
        raise InputError(f"grid_lmax = {grid_lmax!r} is not allowed: use an integer >= lmax/3 = {lmax / 3:g}")
    grid = _manifold(manifold.d, int(grid_lmax))
    x = grid.points().reshape(-1, manifold.d)
    a = manifold.real_coefficients(c)
    rows = max(1, 2**22 // manifold.real_size)  # 32 MB of harmonics at a time
    rho = np.concatenate([manifold.harmonics(x[i:i + rows]) @ a for i in range(0, len(x), rows)])
    mass = grid.weights.ravel() * rho
    positive = np.maximum(mass, 0.0)
    clipped = float(-np.sum(np.minimum(mass, 0.0)) / np.sum(positive))
    keep = positive > 0
    return x[keep], positive[keep] / positive.sum(), clipped


def tokens_vs_density(points, manifold, c, lmax: int = 16, s: float = SOBOLEV_ORDER,
                      grid_lmax: int | None = None, wasserstein: bool = True) -> dict:
    """Distances between the tokens' empirical measure μ_n and the density ρ (coefficients c).

    ``sobolev``: `sobolev_distance` of order s over the degrees ≤ lmax (the empirical
    coefficients by evaluating the manifold's real harmonics at the tokens);
    ``wasserstein``: exact W₂ between μ_n (weights 1/n) and ρ as the weighted points of
    `density_support` (its ``grid_lmax``); ``support`` is their number.
    """
    if isinstance(lmax, bool) or not isinstance(lmax, (int, np.integer)) or not 2 <= lmax <= manifold.lmax:
        raise InputError(f"lmax = {lmax!r} is not allowed: use a degree from 2 to the density's lmax {manifold.lmax}")
    low = _manifold(manifold.d, int(lmax))
    tokens = empirical_coefficients(points, low)
    density = manifold.real_coefficients(c)[:low.real_size]  # the layout of a lower degree is a prefix
    result = {"lmax": int(lmax), "s": float(s), "particle_coefficients": tokens, "density_coefficients": density,
              "sobolev": sobolev_distance(tokens, density, low, s)}
    if wasserstein:
        y, b, clipped = density_support(manifold, c, grid_lmax)
        result.update(wasserstein=wasserstein_distance(points, y, None, b), support=len(y), clipped_mass=clipped)
    return result


def _matrices(model: dict, d: int) -> list:
    return [np.asarray(model.get(key, np.eye(d)), dtype=float) for key in ("Q", "K", "V")]


def compare_token_run(tokens_path, pde_path, lmax: int = 16, s: float = SOBOLEV_ORDER,
                      grid_lmax: int | None = None, wasserstein: bool = True) -> dict:
    """A token run (`spherepde particles`) against a PDE run of the same model, at their
    common saved times: `tokens_vs_density` at each. Returns t, sobolev, wasserstein (lists),
    lmax, s, support."""
    from .solver import discretization

    tokens, pde = io.read_run(tokens_path), io.read_run(pde_path)
    if tokens["manifold"] != "particles" or pde["manifold"] not in config.DOMAINS:
        raise InputError(f"compare a token run with a PDE run: {str(tokens_path)!r} holds {tokens['manifold'] or 'no'} "
                         f"tokens, {str(pde_path)!r} a {pde['manifold'] or 'non-PDE'} run")
    d, kind = tokens["config"]["particles"]["d"], pde["manifold"]
    model, reference = tokens["config"]["model"], pde["config"]["model"]
    if config.DOMAINS[kind] != d:
        raise InputError(f"tokens in R^{d} cannot be compared with a run on the {kind}")
    same_matrices = all(np.array_equal(a, b) for a, b in zip(_matrices(model, d), _matrices(reference, d)))
    if model["name"] != reference["name"] or model["beta"] != reference["beta"] or not same_matrices:
        raise InputError(f"the runs have different models: {model['name']} beta = {model['beta']} vs "
                         f"{reference['name']} beta = {reference['beta']} (or other Q, K, V)")
    manifold = discretization(kind, pde["config"]["domain"]["lmax"])
    result = {"t": [], "sobolev": [], "wasserstein": [], "lmax": int(lmax), "s": float(s), "support": None}
    for i, t in enumerate(tokens["t"]):
        hits = np.nonzero(np.isclose(pde["t"], t, rtol=0, atol=1e-9 * max(1.0, abs(t))))[0]
        if not hits.size:
            continue
        c = manifold.analysis(io.read_density(pde_path, int(hits[0])))
        r = tokens_vs_density(io.read_points(tokens_path, i), manifold, c, lmax, s, grid_lmax, wasserstein)
        result["t"].append(float(t))
        result["sobolev"].append(r["sobolev"])
        result["wasserstein"].append(r.get("wasserstein"))
        result["support"] = r.get("support")
    if not result["t"]:
        raise InputError(f"{str(tokens_path)!r} and {str(pde_path)!r} have no saved time in common")
    return result
