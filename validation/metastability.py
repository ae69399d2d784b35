"""Past the resolution: overlap with resolved runs, two clusters against their ODE, metastable lifetimes, the
final collapse, the whole life, and the staircase of arXiv 2410.06833.

1. Overlap. SA β = 9 on S² from ρ₀ = 1 + 0.1·(a few harmonics of degree 3..6, the same on every grid), at
   lmax 48 (which continues as weighted points early, with oversampling 1, 2, 4 of its switch quadrature)
   and lmax 128 (still spectral to t = 2.75): the energy per degree E_l, l ≤ 8, after the switch.
2. Two clusters of unequal mass. SA β = 12 on S², ρ₀ the kernel estimate of 3 copies of p₁ and 7 of p₂
   (masses 0.3, 0.7) at the angle φ₀ = 1.2, bandwidth κ = 100 (lmax 96): once each cluster is one point,
   their gap φ(t) against the ODE of two Dirac masses, φ̇ = −sin φ (m₂/(m₁E + m₂) + m₁/(m₂E + m₁)),
   E = e^{β(1 − cos φ)} (written out here, integrated with scipy's DOP853 at rtol 1e-12); the merge time too.
3. Lifetimes. From white noise (amplitude 1e-3) on S¹ (lmax 255) and S² (lmax 63), SA at β = 6, 9, 12, 16,
   seeds 0..3: the clusters of the weighted points (single linkage at 0.1 rad, groups of ≥ 1e-3 of the mass),
   T = (first merge) − (start of the first metastable plateau of their count) and Δ_min, the smallest gap
   between them at that start; log T fitted against β(1 − cos Δ_min) (theory: slope 1).
4. Final collapse. One cluster of 64 equal point masses within about 0.05 of a point (a cluster cut from a
   density has stragglers far out, which approach at their own, slower rates and dominate the spread): the spread Σ w_i |x_i − m|² of the points and
   1 − |∫x dμ| decay like e^{−2ct}, c = 1 (SA), e^β (USA), 1 (USA on the rescaled clock); fitted where the
   spread lies in [1e-14, 1e-4].
5. The whole life. The demo's runs (SA β = 9 from noise, S² lmax 127 and S¹ lmax 255, to t = 1e9): energy and
   cluster count against log time, acts marked.
6. The staircase of arXiv 2410.06833 (§6; its code: HugoKoubbi/2024-transformers-dotm, staircase script): USA
   on the circle on the rescaled clock τ (kernel e^{β(⟨x,y⟩−1)}), n = 5 equal point masses at
   θ₀ = ½·(0, ½, 2, 4, 7)·log β/√β, β = 500 … 4000, run as weighted points: the normalized energy
   (1/n²) Σ_ij e^{β(cos(θ_i − θ_j) − 1)} against log τ, and for each merge log τ against β(1 − cos Δ), Δ the
   smallest gap at the start of the plateau it ends. (That code plots against the arc length of the normalized gradient flow; this figure
   uses τ itself, so the plateaus have their true lengths, up to τ ≈ 1e150.)

Writes metastability.md, .json and .png (and whole_life.png, staircase.png) into --out (default
validation/results/metastability/). About 6 minutes on 2 cores; --quick: fewer β and seeds, no S² in 3,
about 2 minutes.

    python validation/metastability.py [--quick] [--out DIR]
"""
from __future__ import annotations

import math
import sys
import tomllib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import common  # noqa: E402
from spherepde import demo, lagrangian, life  # noqa: E402
from spherepde.plot import mark_acts  # noqa: E402
from spherepde.harmonics import kernel_bandwidth  # noqa: E402

WINDOW = life.CONTRACTION_WINDOW


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between unit vectors, accurate for small and large angles."""
    return float(math.atan2(np.linalg.norm(a - b), np.linalg.norm(a + b)) * 2)


OVERSAMPLING = (1.0, 2.0, 4.0)


def overlap() -> dict:
    modes = [[3, 0], [4, 1], [4, -2], [5, 3], [6, 0]]

    def run(lmax, oversampling=2.0):
        return common.run({
            "model": {"name": "SA", "beta": 9.0}, "domain": {"kind": "sphere", "lmax": lmax},
            "initial": {"kind": "perturbed_uniform", "amplitude": 0.1, "modes": modes},
            "numerics": {"oversampling": oversampling}, "time": {"t_end": 2.75, "save_every": 0.25, "rtol": 1e-10}})

    high = run(128)["diagnostics"]
    switched = {factor: run(48, factor) for factor in OVERSAMPLING}
    low = switched[1.0]["diagnostics"]
    rows = []
    for k in np.flatnonzero(low["lagrangian"] == 1):
        b = high["spectrum"][k, 1:9]
        errors = {f"{factor:g}": float(np.max(np.abs(switched[factor]["diagnostics"]["spectrum"][k, 1:9] - b) / b))
                  for factor in OVERSAMPLING}
        rows.append({"t": float(switched[1.0]["t"][k]), "max_relative": errors["1"], "by_oversampling": errors})
    switch = life.read(switched[1.0]).switch
    points = {f"{f:g}": int(s["diagnostics"]["points_active"][np.argmax(s["diagnostics"]["lagrangian"] == 1)])
              for f, s in switched.items()}
    return {"rows": rows, "switch_low": switch, "high_spectral": bool(np.all(high["lagrangian"] == 0)), "points": points}


def two_clusters() -> dict:
    beta, phi0, kappa = 12.0, 1.2, 100.0  # masses 0.3 and 0.7: 3 and 7 copies of the points
    p1, p2 = np.array([0.0, 0.0, 1.0]), np.array([math.sin(phi0), 0.0, math.cos(phi0)])
    run = common.run({
        "model": {"name": "SA", "beta": beta}, "domain": {"kind": "sphere", "lmax": 96},
        "initial": {"kind": "particles", "points": [p1.tolist()] * 3 + [p2.tolist()] * 7, "bandwidth": kappa},
        "time": {"t_end": 1e4, "save_every": 0.5, "save_log_from": 50.0, "save_per_decade": 100, "rtol": 1e-10}})
    t, x, w = run["t"], run["fields"]["points"], run["fields"]["weights"]
    active = run["diagnostics"]["points_active"]
    pairs = np.flatnonzero(active == 2)
    gaps = np.array([_angle(*x[k][w[k] > 0]) for k in pairs])
    start = pairs[0]
    m1, m2 = sorted(float(v) for v in w[start][w[start] > 0])  # the clusters' masses as the run carries them

    def gap_rate(_t, phi):
        E = np.exp(beta * (1 - np.cos(phi)))
        return -np.sin(phi) * (m2 / (m1 * E + m2) + m1 / (m2 * E + m1))

    ode = solve_ivp(gap_rate, (t[start], t[-1]), [gaps[0]], method="DOP853", rtol=1e-12, atol=1e-14, dense_output=True)
    predicted = ode.sol(t[pairs])[0]
    reached = np.flatnonzero(active == 1)
    crossing = solve_ivp(gap_rate, (t[start], 1e4), [gaps[0]], method="DOP853", rtol=1e-12, atol=1e-14,
                         events=lambda _t, phi: phi[0] - 1e-3).t_events[0]
    measured_crossing = float(np.interp(-math.log(1e-3), -np.log(gaps), t[pairs]))
    return {"t": t[pairs].tolist(), "gap": gaps.tolist(), "ode_gap": predicted.tolist(), "masses": [m1, m2],
            "t_settled": float(t[start]), "max_gap_error": float(np.max(np.abs(gaps - predicted))),
            "gap_1e-3_run": measured_crossing, "gap_1e-3_ode": float(crossing[0]),
            "merged_at": float(t[reached[0]]) if reached.size else None}


#: Weighted points closer than this (radians) belong to one cluster when lifetimes are measured; a cluster is a
#: group of at least CLUSTER_MASS of the mass (stragglers on their way in are not clusters).
CLUSTER_GAP = 0.1
CLUSTER_MASS = 1e-3


def point_clusters(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centres and masses of the clusters of a snapshot of weighted points (single linkage at CLUSTER_GAP:
    O(n log n), also for 10⁶ tokens in a few tight clusters)."""
    alive = w > 0
    groups = lagrangian.merge(lagrangian.Points(x[alive], w[alive], np.arange(alive.sum())), CLUSTER_GAP)
    keep = groups.w >= CLUSTER_MASS
    return groups.x[keep], groups.w[keep]


def lifetime(kind: str, beta: float, seed: int) -> dict | None:
    lmax = 255 if kind == "circle" else 63
    run = common.run({
        "model": {"name": "SA", "beta": beta}, "domain": {"kind": kind, "lmax": lmax},
        "initial": {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": seed},
        "time": {"t_end": 1e14, "save_every": 1.0, "save_log_from": 20.0, "save_per_decade": 20, "rtol": 1e-9}})
    t, x, w = run["t"], run["fields"]["points"], run["fields"]["weights"]
    points = run["diagnostics"]["lagrangian"] == 1
    centres = {k: point_clusters(x[k], w[k])[0] for k in np.flatnonzero(points)}
    counts = np.array([len(centres[k]) if k in centres else 0 for k in range(len(t))])
    found = life.plateaus(t, counts)
    merges = life.merges(found)
    if not merges:
        return None
    formed = int(np.flatnonzero(t == found[0].start)[0])  # the gaps of the metastable state, at its start
    gap = min(_angle(a, b) for i, a in enumerate(centres[formed]) for b in centres[formed][i + 1:])
    return {"kind": kind, "beta": beta, "seed": seed, "formed": found[0].start, "clusters": found[0].clusters,
            "merge": merges[0].t, "T": merges[0].t - found[0].start, "gap": gap, "exponent": beta * (1 - math.cos(gap))}


def collapse(kind: str, name: str, beta: float, clock: str = "depth") -> dict:
    d = 3 if kind == "sphere" else 2
    rng = np.random.default_rng(0)
    m = np.eye(d)[-1]
    x = m + 0.05 * rng.standard_normal((64, d)) * (1 - m)  # 64 equal masses within about 0.05 of m
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rate = 1.0 if name == "SA" or clock == "rescaled" else math.exp(beta)
    run = common.run({"model": {"name": name, "beta": beta, "clock": clock},
                      "domain": {"kind": kind, "lmax": max(48, kernel_bandwidth(beta, d, 1e-8) + 8)},
                      "initial": {"kind": "points", "points": x.tolist()}, "numerics": {"representation": "lagrangian"},
                      "time": {"t_end": 20.0 / rate, "save_every": 0.25 / rate, "rtol": 1e-10}})
    t, x, w = run["t"], run["fields"]["points"], run["fields"]["weights"]
    spread = np.array([life.spread(x[k], w[k], np.zeros(len(w[k]), int)) for k in range(len(t))])
    defect = 1 - run["diagnostics"]["mean_direction"]
    inside = (spread >= WINDOW[0]) & (spread <= WINDOW[1])
    fits = {}
    for label, values in (("spread", spread), ("defect", defect)):
        fits[label] = float(-np.polyfit(t[inside], np.log(values[inside]), 1)[0])
    return {"kind": kind, "model": name, "clock": clock, "beta": beta, "predicted": 2 * rate, **fits,
            "snapshots": int(inside.sum())}


def whole_life() -> dict:
    out = {}
    for label, text in (("sphere", demo.CONFIG), ("circle", demo.CIRCLE)):
        run = common.run(tomllib.loads(text))
        acts = life.read(run)
        out[label] = {"t": run["t"], "energy": run["diagnostics"]["energy"], "clusters": run["diagnostics"]["clusters"],
                      "acts": acts, "contraction": life.measured_contraction(run)}
    return out


STAIRCASE_BETAS = (500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0)


def staircase(beta: float) -> dict:
    theta = 0.5 * np.array([0.0, 0.5, 2.0, 4.0, 7.0]) * math.log(beta) / math.sqrt(beta)
    run = common.run({
        "model": {"name": "USA", "beta": beta, "clock": "rescaled"},
        "domain": {"kind": "circle", "lmax": kernel_bandwidth(beta, 2, 1e-8) + 8},
        "initial": {"kind": "points", "points": np.stack([np.cos(theta), np.sin(theta)], axis=1).tolist()},
        "numerics": {"representation": "lagrangian"},
        "time": {"t_end": 1e300, "save_every": 0.5, "save_log_from": 1.0, "save_per_decade": 10, "rtol": 1e-10}})
    t, x, w = run["t"], run["fields"]["points"], run["fields"]["weights"]
    energy = np.array([float(wk @ np.exp(beta * (xk @ xk.T - 1)) @ wk) for xk, wk in zip(x, w)])
    active = run["diagnostics"]["points_active"]
    merges = []
    start = 0  # the first snapshot of the current plateau
    for k in np.flatnonzero(np.diff(active) < 0) + 1:  # the first snapshot after a merge
        centres = x[start][w[start] > 0]
        gap = min(_angle(a, b) for i, a in enumerate(centres) for b in centres[i + 1:])  # at the plateau's start
        merges.append({"tau": float(t[k]), "tau_before": float(t[k - 1]), "gap": gap,
                       "exponent": beta * (1 - math.cos(gap)), "energy": float(energy[k])})
        start = k
    return {"beta": beta, "t": t, "energy": energy, "merges": merges, "status": run["status"]}


def fit_slope(rows: list[dict]) -> dict:
    exponent = np.array([r["exponent"] for r in rows])
    logT = np.log([r["T"] for r in rows])
    slope, intercept = np.polyfit(exponent, logT, 1)
    residual = logT - (slope * exponent + intercept)
    return {"slope": float(slope), "intercept": float(intercept), "scatter": float(np.std(residual)), "runs": len(rows)}


def markdown(result: dict, quick: bool) -> str:
    lines = ["# Past the resolution: metastability and the whole life", "",
             f"Generated by `validation/metastability.py{' --quick' if quick else ''}`.", "",
             "## 1. Overlap: switched (lmax 48) against resolved (lmax 128), SA β = 9 on S²", "",
             f"lmax 48 continues as weighted points from t = {result['overlap']['switch_low']:.3g} "
             f"({', '.join(f'{n} points at oversampling {f}' for f, n in result['overlap']['points'].items())}); "
             f"lmax 128 stays spectral throughout: {result['overlap']['high_spectral']}. Largest relative difference of "
             "E_l, l ≤ 8 (the points' quadrature of the push-forward of ρ: it falls with more nodes):", "",
             "| t | " + " | ".join(f"oversampling {f}" for f in result["overlap"]["points"]) + " |",
             "|---|" + "---|" * len(result["overlap"]["points"])]
    lines += [f"| {r['t']:g} | " + " | ".join(f"{v:.1e}" for v in r["by_oversampling"].values()) + " |"
              for r in result["overlap"]["rows"]]
    two = result["two_clusters"]
    lines += ["", "## 2. Two clusters of masses 0.3 and 0.7 against the two-Dirac ODE (SA β = 12, S²)", "",
              f"Each cluster is one point from t = {two['t_settled']:g} (masses {two['masses'][0]:.6f}, {two['masses'][1]:.6f}); "
              f"from there the gap follows the ODE to {two['max_gap_error']:.1e} rad. The gap reaches 1e-3 at "
              f"t = {two['gap_1e-3_run']:.6g} (run) and {two['gap_1e-3_ode']:.6g} (ODE); the points merge at "
              f"t = {two['merged_at']}.", "",
              "## 3. Metastable lifetimes from noise (SA)", "",
              "Clusters: groups of weighted points (single linkage at 0.1 rad) with ≥ 1e-3 of the mass. T = first merge − "
              "start of the first plateau of their count (merges located to the snapshot spacing, 12%); Δ_min the "
              "smallest gap between clusters at that start.", "",
              "| manifold | β | seed | clusters | formed at | first merge | T | Δ_min | β(1−cos Δ_min) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["lifetimes"]:
        lines.append(f"| {r['kind']} | {r['beta']:g} | {r['seed']} | {r['clusters']} | {r['formed']:.3g} | {r['merge']:.3g} | "
                     f"{r['T']:.3g} | {r['gap']:.3f} | {r['exponent']:.2f} |")
    for kind, fit in result["lifetime_fits"].items():
        lines.append("")
        lines.append(f"{kind}: log T = {fit['slope']:.3f} · β(1 − cos Δ_min) + {fit['intercept']:.2f} over {fit['runs']} runs "
                     f"(theory: slope 1), residual scatter {fit['scatter']:.2f} in log T.")
    lines += ["", "## 4. Final collapse: decay rates of the spread and of 1 − |∫x dμ|", "",
              "| manifold | model | clock | β | predicted 2c | spread | 1 − |∫x dμ| | snapshots |", "|---|---|---|---|---|---|---|---|"]
    for r in result["collapse"]:
        lines.append(f"| {r['kind']} | {r['model']} | {r['clock']} | {r['beta']:g} | {r['predicted']:.6g} | {r['spread']:.6g} | "
                     f"{r['defect']:.6g} | {r['snapshots']} |")
    lines += ["", "## 5. The whole life (SA β = 9 from noise; figure whole_life.png)", "",
              "| manifold | clusters at formation | merges (t) | contraction rate inside clusters (predicted 2) |", "|---|---|---|---|"]
    for label, item in result["whole_life"].items():
        lines.append(f"| {label} | {item['formation']} | {', '.join(f'{m:.3g}' for m in item['merges'])} | "
                     f"{item['contraction']:.4f} |")
    lines += ["", "## 6. The staircase (USA, rescaled clock, n = 5 on the circle; figure staircase.png)", "",
              "| β | merge | τ | β(1 − cos Δ) | log τ | energy after |", "|---|---|---|---|---|---|"]
    for item in result["staircase"]:
        for i, m in enumerate(item["merges"]):
            lines.append(f"| {item['beta']:g} | {i + 1} | {m['tau']:.3g} | {m['exponent']:.1f} | {math.log(m['tau']):.1f} | "
                         f"{m['energy']:.4f} |")
    fit = result["staircase_fit"]
    lines += ["", f"Over all merges with β(1 − cos Δ) > 5: log τ = {fit['slope']:.3f} · β(1 − cos Δ) + {fit['intercept']:.2f} "
              f"(scatter {fit['scatter']:.2f}); the energy levels are Σ_g (n_g/n)² of the cluster sizes: 0.2 → 0.28 → 0.44 → 0.52 → 1 "
              "when the merges go in the order of the gaps."]
    return "\n".join(lines) + "\n"


def figures(result: dict, lives: dict, stairs: list[dict], out):
    fig, axes = plt.subplots(2, 2, figsize=(13, 7), sharex="col")
    for col, (label, item) in enumerate(lives.items()):
        t, positive = item["t"], item["t"] > 0
        top, bottom = axes[0, col], axes[1, col]
        top.plot(t[positive], item["energy"][positive], "C0.-", ms=2)
        bottom.step(t[positive], item["clusters"][positive], where="post", color="C3")
        mark_acts((top, bottom), t, item["acts"])
        top.set_title(f"SA β = 9 on {'S²' if label == 'sphere' else 'S¹'}: green linear phase, blue plateaus, "
                      "black switch to points, red merges", fontsize=9)
        top.set_ylabel("energy E_β")
        bottom.set_ylabel("clusters")
        bottom.set_xlabel("t (log scale)")
    fig.tight_layout()
    fig.savefig(out / "whole_life.png", dpi=110)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for i, item in enumerate(stairs):
        t, positive = item["t"], item["t"] > 0
        left.step(t[positive], item["energy"][positive], where="post", color=f"C{i}", label=f"β = {item['beta']:g}")
        right.plot([m["exponent"] for m in item["merges"]], [math.log10(m["tau"]) for m in item["merges"]], "o", color=f"C{i}")
    grid = np.linspace(0, max(m["exponent"] for s in stairs for m in s["merges"]), 10)
    fit = result["staircase_fit"]
    right.plot(grid, (fit["slope"] * grid + fit["intercept"]) / math.log(10), "k:", label=f"fit: slope {fit['slope']:.2f}")
    left.set_xscale("log")
    left.set_xlim(0.5, 100 * max(m["tau"] for s in stairs for m in s["merges"]))
    left.set(xlabel="rescaled time τ (log scale)", ylabel="(1/n²) Σ e^{β(cos−1)}",
             title="staircase: USA, n = 5 on the circle (arXiv 2410.06833 §6)")
    left.legend(fontsize=8)
    right.set(xlabel="β(1 − cos Δ) of the merging gap", ylabel="log₁₀ τ of the merge", title="merge times")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "staircase.png", dpi=110)
    plt.close(fig)

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.5))
    two = result["two_clusters"]
    a.semilogy(two["t"], two["gap"], "C0.", ms=4, label="run (weighted points)")
    a.semilogy(two["t"], two["ode_gap"], "k-", lw=1, label="two-Dirac ODE")
    a.set(xlabel="t", ylabel="gap φ", title="two clusters, masses 0.3 / 0.7, SA β = 12")
    a.legend(fontsize=8)
    for j, kind in enumerate(sorted({r["kind"] for r in result["lifetimes"]})):
        rows = [r for r in result["lifetimes"] if r["kind"] == kind]
        b.semilogy([r["exponent"] for r in rows], [r["T"] for r in rows], "o", color=f"C{j}", label=kind)
        fit = result["lifetime_fits"][kind]
        grid = np.linspace(min(r["exponent"] for r in rows), max(r["exponent"] for r in rows), 10)
        b.semilogy(grid, np.exp(fit["slope"] * grid + fit["intercept"]), "--", color=f"C{j}",
                   label=f"{kind}: slope {fit['slope']:.2f}")
    b.set(xlabel="β(1 − cos Δ_min)", ylabel="lifetime T", title="metastable lifetimes from noise (SA)")
    b.legend(fontsize=8)
    rows = result["collapse"]
    c.bar(range(len(rows)), [r["spread"] / r["predicted"] for r in rows], color="C0", alpha=0.7, label="spread")
    c.plot(range(len(rows)), [r["defect"] / r["predicted"] for r in rows], "ko", label="1 − |∫x dμ|")
    c.axhline(1.0, color="k", lw=0.8)
    c.set_xticks(range(len(rows)), [f"{r['model']} {r['beta']:g}\n{'S²' if r['kind'] == 'sphere' else 'S¹'}"
                                    f"{' τ' if r['clock'] == 'rescaled' else ''}" for r in rows], fontsize=8)
    c.set(ylabel="fitted rate / 2c", title="final collapse", ylim=(0.9, 1.1))
    c.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main() -> int:
    args = common.arguments(__doc__, "metastability", quick="fewer β and seeds, lifetimes on S¹ only")
    betas, seeds = ((6.0, 9.0, 12.0), range(2)) if args.quick else ((6.0, 9.0, 12.0, 16.0), range(4))
    kinds = ("circle",) if args.quick else ("circle", "sphere")
    result: dict = {"overlap": overlap()}
    print("overlap done", file=sys.stderr, flush=True)
    result["two_clusters"] = two_clusters()
    print("two clusters done", file=sys.stderr, flush=True)
    lifetimes = []
    for kind in kinds:
        for beta in betas:
            for seed in seeds:
                row = lifetime(kind, beta, seed)
                print(f"lifetime {kind} beta={beta:g} seed={seed}: {row}", file=sys.stderr, flush=True)
                if row is not None:
                    lifetimes.append(row)
    result["lifetimes"] = lifetimes
    result["lifetime_fits"] = {kind: fit_slope([r for r in lifetimes if r["kind"] == kind]) for kind in kinds}
    result["collapse"] = [collapse("sphere", "SA", 1.0), collapse("sphere", "SA", 3.0), collapse("sphere", "USA", 1.0),
                          collapse("sphere", "USA", 2.0), collapse("sphere", "USA", 3.0, "rescaled"),
                          collapse("circle", "SA", 1.0)]
    lives = whole_life()
    result["whole_life"] = {label: {"formation": item["acts"].plateaus[0].clusters if item["acts"].plateaus else None,
                                    "merges": [m.t for m in item["acts"].merges],
                                    "contraction": item["contraction"].rate if item["contraction"] else math.nan}
                            for label, item in lives.items()}
    stairs = [staircase(beta) for beta in (STAIRCASE_BETAS[::2] if args.quick else STAIRCASE_BETAS)]
    result["staircase"] = [{"beta": s["beta"], "merges": s["merges"], "status": s["status"]} for s in stairs]
    merges = [m for s in stairs for m in s["merges"] if m["exponent"] > 5]
    result["staircase_fit"] = fit_slope([{"exponent": m["exponent"], "T": m["tau"]} for m in merges])
    common.write(args.out, "metastability", markdown(result, args.quick), result, figures(result, lives, stairs, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
