"""Tokens against the weighted-point mean field through the metastable phase (issue 12).

SA, β = 6 on S¹, ρ₀ = 1 + 0.15 (√2 cos 3θ + √2 sin 2θ) (modes [3, 0] and [2, 1]: three clusters of unequal
mass and gap). The mean field is the PDE run that continues past its resolution as weighted points (lmax 256,
DOPRI5 rtol 1e-9, snapshots every 0.5 to t = 10, then 200 per decade to t = 150); the tokens are n iid samples
of ρ₀ (n = 10³ … 10⁶, harmonic sums for n ≥ 1024), DOPRI5 at rtol 1e-8, saved at the same times. Clusters of a snapshot, for both: single linkage at
0.1 rad (on S¹: sorted by angle, split where consecutive ones are further apart), groups of at least 10⁻³ of
the mass (metastability.point_clusters, the definition of validation/metastability.py, §3). Reported per n and seed:

- the time the three clusters form and the time of the first merge (the plateaus of the cluster count,
  spherepde.life), against the mean field's;
- the largest angle between a token cluster and the mean field's corresponding cluster, and the largest mass
  difference, on the three-cluster plateau (t = 20).

Expectation: positions and masses differ by O(n^{-1/2}) (the sampling error of ρ₀, transported); the merge time
T depends on the gap Δ like e^{β(1 − cos Δ)}, so its relative error is about β sin Δ · δΔ — the mean field predicts
finite-n merges to that accuracy, and where the scatter between seeds reaches the size of T, finite-n noise has
taken over.

Writes tokens_metastable.md, .json and .png into --out (default validation/results/tokens_metastable/).
About 8 minutes on 2 cores; --quick (n ≤ 10⁴, one or two seeds) about half a minute.

    python validation/tokens_metastable.py [--quick] [--out DIR]
"""
from __future__ import annotations

import sys
import time

import numpy as np

import common
from meanfield_limit import manifold, sample
from metastability import point_clusters
from spherepde import life, tokens

BETA = 6.0
MODES = [[3, 0], [2, 1]]
EPSILON = 0.15
T_END = 150.0
COMPARE_AT = 20.0  # on the three-cluster plateau


def clusters(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(angles, masses) of the clusters of points x on S¹ with weights w (metastability.point_clusters)."""
    centres, masses = point_clusters(x, w)
    return np.mod(np.arctan2(centres[:, 1], centres[:, 0]), 2 * np.pi), masses


def history(t: np.ndarray, snapshots) -> dict:
    """Cluster count per snapshot, its plateaus' formation and first merge, and the clusters at COMPARE_AT."""
    found = [clusters(x, w) for x, w in snapshots]
    counts = np.array([len(c[0]) for c in found])
    plateaus = life.plateaus(t, counts)
    merges = life.merges(plateaus)
    k = int(np.argmin(np.abs(t - COMPARE_AT)))
    return {"counts": counts, "formed": plateaus[0].start if plateaus else np.nan,
            "clusters": plateaus[0].clusters if plateaus else 0,
            "merge": merges[0].t if merges else np.nan, "at": found[k]}


def mean_field() -> tuple[np.ndarray, dict]:
    """The save times (every 0.5 to t = 10, then 200 per decade) and the mean field's history at them."""
    start = time.perf_counter()
    run = common.run({"model": {"name": "SA", "beta": BETA}, "domain": {"kind": "circle", "lmax": 256},
                      "initial": {"kind": "perturbed_uniform", "amplitude": EPSILON, "modes": MODES},
                      "time": {"t_end": T_END, "save_every": 0.5, "save_log_from": 10.0, "save_per_decade": 200, "rtol": 1e-9}})
    t, fields, diag = run["t"], run["fields"], run["diagnostics"]
    M = manifold("circle", 256)
    nodes, weights = M.points().reshape(-1, 2), M.weights.ravel()
    snapshots = [(fields["points"][k], fields["weights"][k]) if diag["lagrangian"][k] == 1  # before the switch: the
                 else (nodes, np.maximum(fields["density"][k], 0) * weights) for k in range(len(t))]  # grid's nodes
    out = history(t, snapshots)
    out["seconds"] = time.perf_counter() - start
    return t, out


def token_run(n: int, seed: int, times: np.ndarray) -> dict:
    low = manifold("circle", max(m for m, _ in MODES))
    a = np.zeros(low.real_size)
    a[0] = 1.0
    for l, m in MODES:
        a[low.real_index(l, m)] = EPSILON
    start = time.perf_counter()
    x0 = sample(np.random.default_rng(10 * n + seed), n, a, low)
    path = list(tokens.trajectory(x0, BETA, "SA", save_times=times, method="dopri5", rtol=1e-8))
    out = history(times, [(x, np.full(n, 1.0 / n)) for _, x in path])
    out.update(n=n, seed=seed, seconds=time.perf_counter() - start)
    return out


def compare(tok: dict, field: dict) -> tuple[float, float]:
    """Largest angle and mass difference between matched clusters at COMPARE_AT (nan if the counts differ)."""
    (ta, tm), (fa, fm) = tok["at"], field["at"]
    if len(ta) != len(fa):
        return np.nan, np.nan
    diff = np.abs(np.angle(np.exp(1j * (ta[:, None] - fa[None, :]))))
    match = np.argmin(diff, axis=1)
    return float(np.max(diff[np.arange(len(ta)), match])), float(np.max(np.abs(tm - fm[match])))


def main() -> int:
    args = common.arguments(__doc__, "tokens_metastable", quick="n ≤ 10⁴, one seed")
    times, field = mean_field()
    print(f"mean field: {field['clusters']} clusters from t = {field['formed']:.3g}, first merge at {field['merge']:.4g} "
          f"({field['seconds']:.0f} s)", file=sys.stderr, flush=True)
    plan = [(1000, 2), (10_000, 1)] if args.quick else [(1000, 4), (10_000, 4), (100_000, 4), (1_000_000, 1)]
    runs = []
    for n, count in plan:
        for seed in range(count):
            r = token_run(n, seed, times)
            r["angle"], r["mass"] = compare(r, field)
            runs.append(r)
            print(f"n = {n}, seed {seed}: {r['clusters']} clusters from t = {r['formed']:.3g}, first merge at {r['merge']:.4g}, "
                  f"angle {r['angle']:.2e}, mass {r['mass']:.2e} ({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
    lines = ["# Tokens against the weighted-point mean field through the metastable phase", "",
             f"SA, β = {BETA:g}, S¹, ρ₀ = 1 + {EPSILON} (modes {MODES}). Generated by `validation/tokens_metastable.py"
             f"{' --quick' if args.quick else ''}`.", "",
             f"Mean field (PDE, then weighted points): {field['clusters']} clusters from t = {field['formed']:.3g}, "
             f"first merge at t = {field['merge']:.4g} ({field['seconds']:.0f} s).", "",
             f"| n | seed | clusters | formed | first merge | merge / mean field − 1 | max angle at t = {COMPARE_AT:g} | max mass difference | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['n']} | {r['seed']} | {r['clusters']} | {r['formed']:.3g} | {r['merge']:.4g} | "
                     f"{r['merge'] / field['merge'] - 1:+.2%} | {r['angle']:.2e} | {r['mass']:.2e} | {r['seconds']:.0f} |")
    by_n = {}
    for r in runs:
        by_n.setdefault(r["n"], []).append(r)
    lines += ["", "RMS over the seeds with a three-cluster plateau and a first merge before t = "
              f"{T_END:g}; the last column counts the others (finite-n noise gave another pattern or another lifetime).", "",
              "| n | seeds | RMS merge error | RMS angle | RMS mass difference | seeds without a comparable merge |",
              "|---|---|---|---|---|---|"]
    summary = {"mean_field": {"clusters": field["clusters"], "formed": field["formed"], "merge": field["merge"]}, "n": {}}
    for n, rs in by_n.items():
        rel = np.array([r["merge"] / field["merge"] - 1 for r in rs])
        angle, mass = np.array([r["angle"] for r in rs]), np.array([r["mass"] for r in rs])
        row = {"seeds": len(rs), "merge_error": rms(rel), "angle": rms(angle), "mass": rms(mass),
               "no_merge": sum(1 for r in rs if not np.isfinite(r["merge"]))}
        summary["n"][n] = row
        lines.append(f"| {n} | {len(rs)} | {row['merge_error']:.2%} | {row['angle']:.2e} | {row['mass']:.2e} | {row['no_merge']} |")
    common.write(args.out, "tokens_metastable", "\n".join(lines) + "\n", summary, figure(times, field, runs))
    return 0


def rms(values: np.ndarray) -> float:
    """Root mean square of the finite values (NaN when none is: no seed reached the three-cluster plateau)."""
    finite = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(finite**2))) if len(finite) else float("nan")


def figure(times, field, runs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.step(times, field["counts"], where="post", color="k", lw=2.5, label="mean field (weighted points)")
    ns = sorted({r["n"] for r in runs})
    for i, n in enumerate(ns):
        for j, r in enumerate(r for r in runs if r["n"] == n):
            ax.step(times, r["counts"] + 0.06 * (i + 1), where="post", color=f"C{i}", lw=1, alpha=0.8,
                    label=f"n = {n}" if j == 0 else None)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_ylim(0, 8)
    ax.set_xlabel("time t (linear to 10, then logarithmic)")
    ax.set_ylabel("clusters (gap 0.1 rad, mass ≥ 1e-3)")
    ax.set_title(f"SA, β = {BETA:g} on S¹: tokens (offset slightly per n) against the mean field")
    ax.legend(fontsize="small")
    return fig


if __name__ == "__main__":
    sys.exit(main())
