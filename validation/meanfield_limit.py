"""Tokens vs mean field (issue 5): n tokens against the PDE they converge to as n → ∞.

1. Convergence. SA, β = 9 (l* = 4 on S² and S¹). The PDE starts from ρ₀ = 1 + ε p, p a sum of
   normalized harmonics of degrees 3–4 (S²: Y_40 + Y_42 + Y_4,−3; S¹: √2 cos 4θ + √2 sin 3θ),
   ε = 0.15; n tokens start iid from the same ρ₀ (exact rejection sampling with the harmonics).
   Both run through the linear phase into clustering, up to the last time the PDE resolves
   (S²: t = 3.5 at lmax = 128; S¹: t = 6 at lmax = 1024), for n from 500 to 10⁶. At every saved time: the Sobolev
   distance D_s (s = 2, degrees ≤ 16) and the exact W₂ (S¹ for every n, against the density on
   12 500 grid points; S² for n ≤ 2000 and two samples per n, against the density on the Gauss
   grid of degree 48, 76 × 150 points). The fitted exponent is the least-squares slope of log RMS-over-seeds vs log n.
   Tokens: RK4, dt = 0.25; the time-step error is measured against dt = 0.125.
2. Growth rates. n iid uniform tokens: the energy per degree E_l(t) of the empirical measure,
   averaged over seeds, fitted in log over the linear window (E_{l*} ≤ 0.02), against λ_l of
   linear theory and against the finite-n rate λ_l/(1 + (e^β/ĥ_0 − 1)/n): in the SA normalization
   Σ_j e^{β⟨x_i,x_j⟩} the term j = i adds e^β/n to ĥ_0 on average. Iid tokens start at the
   noise floor E[E_l] = N(d,l)/n (drawn).

   Rates are measured at n = 8000, 10⁵ and 10⁶ (4, 16 and 4 samples; the token velocities by harmonic sums,
   O(n)), so that the n at which λ_l* is within 1 % is measured rather than extrapolated (with one or two
   samples the rate of l* on S¹ scattered by 1–1.4 %: two harmonics per degree carry it).

Writes meanfield_limit.md, .json (exponents, rates) and .png into --out (default
validation/results/meanfield_limit/). Slow: about 1.5 hours on 2 shared cores; --quick (n ≤ 2000,
shorter runs) takes about 2 minutes.

    python validation/meanfield_limit.py [--quick] [--out DIR]
"""
from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import numpy as np

import common
from spherepde import linear, meanfield, tokens
from spherepde.harmonics import funk_hecke, harmonic_dimension
from spherepde.manifolds import manifold_from_config

BETA = 9.0
EPSILON = 0.15
DIMENSION = {"sphere": 3, "circle": 2}
MODES = {"sphere": [[4, 0], [4, 2], [4, -3]], "circle": [[4, 0], [3, 1]]}
SOBOLEV_LMAX = 16
DT = 0.25
WINDOW = 2e-2  # linear window of the growth-rate fits: E_l* = Σ_m a_l*m² ≤ WINDOW (amplitude 0.14)


def manifold(kind: str, lmax: int):
    return manifold_from_config(SimpleNamespace(kind=kind, lmax=lmax, dim=None))


def setting(kind: str, quick: bool) -> dict:
    """PDE resolution, comparison times, token counts and seeds of the convergence study."""
    if kind == "sphere":
        full = dict(lmax=128, times=[0.0, 1.0, 2.0, 3.0, 3.5], grid_lmax=48, max_w2=2000)
        fast = dict(lmax=64, times=[0.0, 1.0, 2.0], grid_lmax=32, max_w2=1000)
    else:
        full = dict(lmax=1024, times=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], grid_lmax=4096, max_w2=None)
        fast = dict(lmax=256, times=[0.0, 1.0, 2.0, 3.0], grid_lmax=1024, max_w2=None)
    out = fast if quick else full
    out["ns"] = [250, 500, 1000, 2000] if quick else [500, 1000, 2000, 4000, 8000, 16000, 32000, 100_000, 316_228, 1_000_000]
    return out


def rate_runs(quick: bool) -> list[tuple[int, int]]:
    """(n, seeds) of the growth-rate runs: 10⁵ and 10⁶ tokens measure how large n must be for λ_l* to 1 %."""
    return [(2000, 4)] if quick else [(8000, 4), (100_000, 16), (1_000_000, 4)]


def seeds(n: int, quick: bool) -> int:
    """Independent samples per n: full, 8 up to n = 1000, then fewer, at least 2 (the direct sums cost n² up to
    n = 1024, the harmonic sums about n beyond); quick, 16 (a single D_s on S¹ scatters by a factor ≈ 2: it is
    carried by 4 coefficients)."""
    return 16 if quick else max(2, min(8, 8000 // n))


def sample(rng, n: int, coefficients: np.ndarray, low) -> np.ndarray:
    """n iid tokens from ρ = Σ a Y (degree ≤ low.lmax), by rejection from uniform proposals
    against the bound |Σ_m a_lm Y_lm| ≤ ‖a_l‖ √N(d,l) (addition theorem)."""
    d, l = low.d, low.real_degrees
    bound = sum(np.linalg.norm(coefficients[l == k]) * np.sqrt(harmonic_dimension(d, k)) for k in range(low.lmax + 1))
    out = []
    count = 0
    while count < n:  # proposals in batches of at most 10⁵ (the harmonics of a batch: 10⁵ × (lmax+1)² numbers)
        x = tokens.initial_tokens("uniform", min(100_000, int(1.5 * bound * (n - count)) + 64), d, seed=rng)
        keep = x[rng.random(len(x)) * bound < low.harmonics(x) @ coefficients]
        out.append(keep)
        count += len(keep)
    return np.concatenate(out)[:n]


def fit_exponent(ns, values) -> float:
    return float(np.polyfit(np.log(ns), np.log(values), 1)[0])


def convergence(kind: str, quick: bool) -> dict:
    """Distances between tokens and PDE at each saved time, RMS over seeds, per n."""
    cfg = setting(kind, quick)
    times = cfg["times"]
    raw = {"model": {"name": "SA", "beta": BETA}, "domain": {"kind": kind, "lmax": cfg["lmax"]},
           "initial": {"kind": "perturbed_uniform", "amplitude": EPSILON, "modes": MODES[kind]},
           "time": {"t_end": times[-1], "save_every": 0.5, "rtol": 1e-10}}
    start = time.perf_counter()
    run = common.run(raw)
    pde_seconds = time.perf_counter() - start
    M = manifold(kind, cfg["lmax"])
    low, sob = manifold(kind, 4), manifold(kind, SOBOLEV_LMAX)
    index = [int(np.argmin(np.abs(run["t"] - t))) for t in times]
    coefficients = [M.analysis(run["fields"]["density"][i]) for i in index]
    density = [M.real_coefficients(c)[:sob.real_size] for c in coefficients]
    supports = [meanfield.density_support(M, c, cfg["grid_lmax"]) for c in coefficients]
    rho0 = M.real_coefficients(coefficients[0])[:low.real_size]

    def distances(x, k, w2):
        a = meanfield.empirical_coefficients(x, sob)
        y, b, _ = supports[k]
        return (meanfield.sobolev_distance(a, density[k], sob),
                meanfield.wasserstein_distance(x, y, None, b) if w2 else 0.0)

    result = {"kind": kind, "times": times, "ns": cfg["ns"], "sobolev": [], "wasserstein": [], "seeds": [],
              "pde_seconds": pde_seconds, "lmax": cfg["lmax"], "support": len(supports[0][0]), "max_w2": cfg["max_w2"],
              "clusters": run["diagnostics"]["clusters"][index].tolist(),
              "max_density": run["diagnostics"]["max_density"][index].tolist()}
    for n in cfg["ns"]:
        count = seeds(n, quick)
        # exact OT on S² costs O(n·m) memory and more time: the first two samples only
        w2_count = count if cfg["max_w2"] is None else min(2, count) if n <= cfg["max_w2"] else 0
        sq = np.zeros((2, len(times)))
        clock = time.perf_counter()
        for seed in range(count):
            x0 = sample(np.random.default_rng(1000 * n + seed), n, rho0, low)
            for k, (_, x) in enumerate(tokens.trajectory(x0, BETA, "SA", save_times=times, method="rk4", dt=DT)):
                sq[:, k] += np.square(distances(x, k, seed < w2_count))
        rms = np.sqrt(sq / [[count], [max(w2_count, 1)]])
        if w2_count == 0:
            rms[1] = np.nan
        result["sobolev"].append(rms[0])
        result["wasserstein"].append(rms[1])
        result["seeds"].append(count)
        print(f"{kind} n={n}: D_s {np.round(rms[0], 5).tolist()}  W2 {np.round(rms[1], 5).tolist()}  "
              f"({time.perf_counter() - clock:.0f} s)", file=sys.stderr, flush=True)
    # time-step error of the tokens: the same sample at dt and dt/2
    n = 2000 if not quick else 500
    x0 = sample(np.random.default_rng(7), n, rho0, low)
    pairs = zip(*(tokens.trajectory(x0, BETA, "SA", save_times=times, method="rk4", dt=dt) for dt in (DT, DT / 2)))
    result["dt_error"] = max(float(np.max(np.linalg.norm(x - y, axis=1))) for (_, x), (_, y) in pairs)
    result["sobolev"], result["wasserstein"] = np.array(result["sobolev"]), np.array(result["wasserstein"])
    return result


def growth_rates(kind: str, n: int, count: int, lmax: int = 8) -> dict:
    """Mean energy per degree of `count` runs of n iid uniform tokens, fitted over the linear window."""
    d = DIMENSION[kind]
    star = linear.dominant_degree(BETA, d, "SA")
    lam = linear.growth_rates(BETA, d, "SA", lmax)
    floor = np.array([harmonic_dimension(d, l) for l in range(lmax + 1)]) / n
    # run until the expected amplitude of degree l* reaches 0.2
    t_end = DT * np.ceil(np.log(0.2 / np.sqrt(floor[star])) / lam[star] / DT)
    times = np.arange(0.0, t_end + 1e-9, DT)
    M = manifold(kind, lmax)
    energy = np.zeros((len(times), lmax + 1))
    for seed in range(count):
        x0 = tokens.initial_tokens("uniform", n, d, seed=seed)
        for k, (_, x) in enumerate(tokens.trajectory(x0, BETA, "SA", save_times=times, method="rk4", dt=DT)):
            energy[k] += np.bincount(M.real_degrees, meanfield.empirical_coefficients(x, M) ** 2) / count
    window = energy[:, star] <= WINDOW
    if window.sum() < 4:
        raise SystemExit(f"{kind}, n = {n}: only {window.sum()} snapshots with E_l* <= {WINDOW}: use more tokens")
    def rate(where, l):  # the least-squares slope of ½ log E_l over the snapshots ``where``
        return float(np.polyfit(times[where], 0.5 * np.log(energy[where, l]), 1)[0])

    fitted = [rate(window, l) for l in range(1, lmax + 1)]
    early = energy[:, star] <= WINDOW / 10  # amplitude ≤ 0.045: the quadratic terms bias the rate 3× less
    early_rate = rate(early, star) if early.sum() >= 4 else np.nan
    h0 = funk_hecke(0, BETA, d)[0]
    finite_n = lam / (1 + (np.exp(BETA) / h0 - 1) / n)
    return {"kind": kind, "n": n, "seeds": count, "times": times, "energy": energy, "floor": floor, "window": window,
            "measured": np.array([np.nan, *fitted]), "predicted": lam, "finite_n": finite_n, "star": star,
            "early": early_rate, "early_span": float(times[early][-1]) if early.any() else np.nan}


def table(results: list[dict], rates: list[dict], quick: bool) -> str:
    lines = ["# Tokens vs mean field", "",
             f"SA, β = {BETA:g}, identity matrices. Generated by `validation/meanfield_limit.py{' --quick' if quick else ''}`.", "",
             "## 1. Distance between n tokens and the PDE", "",
             f"ρ₀ = 1 + {EPSILON} p (p: degree-4 pattern, see the script); tokens iid from ρ₀, RK4 dt = {DT}; PDE DOPRI5, rtol = 1e-10.",
             f"D_s: Sobolev distance of order s = 2 over degrees ≤ {SOBOLEV_LMAX}; W₂: exact optimal transport, geodesic cost.",
             "Values are RMS over the seeds; exponent = least-squares slope of log(value) vs log n.", ""]
    for r in results:
        lines += [f"### {r['kind']} (PDE lmax = {r['lmax']}, {r['pde_seconds']:.0f} s; W₂ support {r['support']} grid points"
                  + (f", n ≤ {r['max_w2']}" if r["max_w2"] else "") + ")", "",
                  "| t | clusters (PDE) | max ρ | " + " | ".join(f"D_s n={n}" for n in r["ns"]) + " | exponent D_s | exponent W₂ |",
                  "|---|---|---|" + "---|" * len(r["ns"]) + "---|---|"]
        for k, t in enumerate(r["times"]):
            ds = r["sobolev"][:, k]
            ws = r["wasserstein"][:, k]
            ok = np.isfinite(ws)
            lines.append(f"| {t:g} | {r['clusters'][k]} | {r['max_density'][k]:.1f} | " + " | ".join(f"{v:.4g}" for v in ds)
                         + f" | {fit_exponent(r['ns'], ds):.3f} | "
                         + (f"{fit_exponent(np.array(r['ns'])[ok], ws[ok]):.3f}" if ok.sum() > 1 else "—") + " |")
        lines += ["", "W₂ (RMS): " + "; ".join(
            f"t = {t:g}: " + ", ".join(f"{v:.4g}" for v in r["wasserstein"][:, k] if np.isfinite(v)) for k, t in enumerate(r["times"])),
            "", f"Seeds per n: {', '.join(f'{n}: {s}' for n, s in zip(r['ns'], r['seeds']))}" + (" (W₂: the first two)" if r["max_w2"] else "") + ". "
            f"Largest token displacement between dt = {DT} and {DT / 2}: {r['dt_error']:.1e}.", ""]
    lines += ["## 2. Growth rates from token runs", "",
              "Iid uniform tokens; λ_l from the mean energy per degree over seeds, fitted in the linear window "
              f"E_l* ≤ {WINDOW:g}. Finite-n: λ_l/(1 + (e^β/ĥ_0 − 1)/n) (self-interaction in the SA normalization).", "",
              "| manifold | n | seeds | window | l | measured λ_l | linear theory | rel. error | finite-n prediction | rel. error |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rates:
        span = r["times"][r["window"]]
        for l in range(1, len(r["measured"])):
            m, p, f = r["measured"][l], r["predicted"][l], r["finite_n"][l]
            lines.append(f"| {r['kind']} | {r['n']} | {r['seeds']} | [0, {span[-1]:g}] | {l}{' = l*' if l == r['star'] else ''} "
                         f"| {m:.4f} | {p:.4f} | {m / p - 1:+.2%} | {f:.4f} | {m / f - 1:+.2%} |")
    lines += ["", "### The rate of l* against n", "",
              f"Fitted over E_l* ≤ {WINDOW:g} (amplitude 0.14) as above, and over E_l* ≤ {WINDOW / 10:g} (amplitude 0.045), "
              "where the quadratic terms of the dynamics bias the rate less; with few tokens the smaller window is "
              "short (the noise floor N(d,l)/n is close to it).", "",
              f"| manifold | n | seeds | λ_l* (E ≤ {WINDOW:g}) | rel. error | λ_l* (E ≤ {WINDOW / 10:g}) | window | rel. error "
              "| linear theory | finite-n prediction |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rates:
        l = r["star"]
        m, p, f, e = r["measured"][l], r["predicted"][l], r["finite_n"][l], r["early"]
        lines.append(f"| {r['kind']} | {r['n']} | {r['seeds']} | {m:.5f} | {m / f - 1:+.2%} | {e:.5f} | [0, {r['early_span']:g}] "
                     f"| {e / f - 1:+.2%} | {p:.5f} | {f:.5f} |")
    return "\n".join(lines) + "\n"


def summary(results: list[dict], rates: list[dict]) -> dict:
    """The fitted exponents per time and the rate of l*, machine-readable (tests/test_validation.py)."""
    out = {}
    for r in results:
        ok = [np.isfinite(r["wasserstein"][:, k]) for k in range(len(r["times"]))]
        out[r["kind"]] = {
            "times": r["times"], "ns": r["ns"],
            "sobolev_exponent": [fit_exponent(r["ns"], r["sobolev"][:, k]) for k in range(len(r["times"]))],
            "wasserstein_exponent": [fit_exponent(np.array(r["ns"])[m], r["wasserstein"][m, k]) if m.sum() > 1 else None
                                     for k, m in enumerate(ok)],
        }
    for r in sorted(rates, key=lambda r: r["n"]):  # "rate": the largest n; "rates": every n
        l = r["star"]
        rate = {"n": r["n"], "degree": l, "measured": r["measured"][l], "predicted": r["predicted"][l],
                "finite_n": r["finite_n"][l], "early": r["early"]}
        out[r["kind"]]["rate"] = rate
        out[r["kind"]].setdefault("rates", []).append(rate)
    return out


def figure(results: list[dict], rates: list[dict]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 9), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(results) + 0)
    for ax, r in zip(axes[0], results):
        ns = np.array(r["ns"], float)
        for k, t in enumerate(r["times"]):
            ax.loglog(ns, r["sobolev"][:, k], "o-", color=f"C{k}", label=f"D_s, t = {t:g}")
            ws = r["wasserstein"][:, k]
            if np.isfinite(ws).sum() > 1:
                ax.loglog(ns[np.isfinite(ws)], ws[np.isfinite(ws)], "s--", color=f"C{k}", mfc="none", alpha=0.7)
        ax.loglog(ns, r["sobolev"][0, 0] * np.sqrt(ns[0] / ns), "k:", lw=1, label=r"$\propto n^{-1/2}$")
        ax.set_xlabel("tokens n")
        ax.set_ylabel("distance to the PDE (RMS over seeds)")
        ax.set_title(f"{r['kind']}: D_s (solid), W₂ (dashed)")
        ax.legend(fontsize="small", ncol=2)
    largest = {r["kind"]: r for r in sorted(rates, key=lambda r: r["n"])}
    for ax, r in zip(axes[1], [largest[r["kind"]] for r in results]):
        for i, l in enumerate(range(1, len(r["measured"]))):
            ax.semilogy(r["times"], r["energy"][:, l], "o", ms=3, color=f"C{i}", label=f"l = {l}")
            ax.semilogy(r["times"], r["floor"][l] * np.exp(2 * r["finite_n"][l] * r["times"]), "-", color=f"C{i}", lw=0.8)
            ax.axhline(r["floor"][l], color=f"C{i}", ls=":", lw=0.8)
        ax.axhline(WINDOW, color="k", lw=0.5)
        ax.set_xlabel("time t")
        ax.set_ylabel(r"mean $E_l(t) = \sum_m a_{lm}^2$")
        ax.set_title(f"{r['kind']}, n = {r['n']} iid uniform ({r['seeds']} seeds): dots measured, "
                     r"lines $\frac{N(d,l)}{n} e^{2\lambda_l t}$, dotted the floor N(d,l)/n", fontsize="small")
        ax.legend(fontsize="x-small", ncol=2)
    return fig


def main() -> int:
    args = common.arguments(__doc__, "meanfield_limit", quick="n ≤ 2000 and shorter runs")
    results = [convergence(kind, args.quick) for kind in ("sphere", "circle")]
    rates = [growth_rates(kind, n, seeds) for kind in ("sphere", "circle") for n, seeds in rate_runs(args.quick)]
    common.write(args.out, "meanfield_limit", table(results, rates, args.quick), summary(results, rates), figure(results, rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
