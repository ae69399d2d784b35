"""Simulated phase diagram of SA on S²: the degree that wins the linear phase against β, next to l*(β).

Runs the sweep examples/phase_diagram.toml (white noise of amplitude 1e-3, lmax = 31, t ≤ 10,
several seeds per β) on a local Dask cluster: by default a quick subset (every other β, seeds 0
and 1: 16 runs, about 20 s on 2 cores), with --full all of it (64 runs, about 1 min). For every
run, from summary.csv: the winner (the leading degree at the end of the exponential window,
compare.compare_run), the degree that linear growth from the run's own initial spectrum makes
dominant, and the measured growth rate of l*. Near a switch point λ_l ≈ λ_{l+1} and the noise
decides; away from them the winner is l*.

    python validation/phase_diagram.py [--full] [--out DIR] [--runs DIR] [--workers N]

Writes phase_diagram.md (table) and phase_diagram.png (figure) into --out (default
validation/results/phase_diagram/); run files and summary.csv go to --runs (default
out/phase_diagram/; runs already there are reused). Exits 1 when a run failed, has no
exponential window, its measured rate of l* is off by more than 1%, or its winner is not the
degree expected from its initial spectrum (the claim: linear theory predicts the winner once
the noise is known; l*(β) alone only away from the switch points).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import common
from spherepde import linear, sweep

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "phase_diagram.toml"
# Largest relative error of a measured rate of l*: validation/linear_vs_pde.py finds at most 0.2%.
RATE_TOLERANCE = 1e-2


def runs(full: bool) -> list[sweep.Run]:
    """The example's runs, or the quick subset: every other β, the first two seeds."""
    import tomllib

    base, axes = sweep.parse(tomllib.loads(EXAMPLE.read_text()))
    if not full:
        axes = {"model.beta": axes["model.beta"][::2], "initial.seed": axes["initial.seed"][:2]}
    return sweep.plan(base, axes)


def table(rows: list[dict]) -> str:
    lines = [
        f"SA on S², lmax = 31, white noise of amplitude 1e-3, t ≤ 10: {len(rows)} runs of examples/phase_diagram.toml",
        "",
        "| β | l* | λ_(1)/λ_(2) | winners (by seed) | from initial spectrum | rate of l*: max rel. error |",
        "|---|---|---|---|---|---|",
    ]
    for beta in sorted({row["beta"] for row in rows}):
        mine = [row for row in rows if row["beta"] == beta]
        errors = [abs(row["rate_measured"] / row["rate_predicted"] - 1) for row in mine]
        lines.append(
            f"| {beta:g} | {mine[0]['l_predicted']} | {linear.selectivity(beta, 3):.3f} | "
            f"{' '.join(str(row['l_measured']) for row in mine)} | {' '.join(str(row['l_initial']) for row in mine)} | "
            f"{max(errors):.1e} |"
        )
    n = len(rows)
    star = sum(row["l_measured"] == row["l_predicted"] for row in rows)
    initial = sum(row["l_measured"] == row["l_initial"] for row in rows)
    lines += [
        "",
        f"winner = l*(β) in {star} of {n} runs; winner = the degree expected from the run's initial spectrum "
        f"in {initial} of {n}.",
    ]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    beta_max = 1.05 * max(row["beta"] for row in rows)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), sharex=True, height_ratios=[2, 1], layout="constrained")
    linear.draw_dominant_degree(top, 3, beta_max)
    pairs, counts = np.unique([(row["beta"], row["l_measured"]) for row in rows], axis=0, return_counts=True)
    top.scatter(pairs[:, 0], pairs[:, 1], s=60 * counts, facecolors="none", edgecolors="C3", lw=1.5,
                label="winner of the linear phase (area ∝ number of seeds)", zorder=3)
    initial = np.unique([(row["beta"], row["l_initial"]) for row in rows], axis=0)
    top.plot(initial[:, 0], initial[:, 1], "k+", ms=7, label="expected from each run's initial spectrum")
    top.legend(loc="upper left", fontsize=8)
    top.set_title(f"SA on S², white noise 1e-3: simulated winners ({len(rows)} runs) against linear theory")
    top.grid(alpha=0.3)
    betas = np.linspace(0.5, beta_max, 200)
    bottom.plot(betas, [linear.report(b, 3, "SA")["max_growth_rate"] for b in betas], "C0", label="λ_l*(β), theory")
    bottom.plot([row["beta"] for row in rows], [row["rate_measured"] for row in rows], "C3o", mfc="none",
                label="measured (fit over the exponential window)")
    bottom.set_xlabel("inverse temperature β")
    bottom.set_ylabel("growth rate of l*")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the whole example sweep (default: a quick subset)")
    parser.add_argument("--runs", type=Path, default=ROOT / "out" / "phase_diagram")
    parser.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    args = common.arguments(__doc__, "phase_diagram", parser=parser)
    summary = sweep.run(runs(args.full), args.runs, workers=args.workers)
    rows = [{"beta": row["model.beta"], **row} for row in summary]
    bad = [row["run"] for row in rows if row["status"] != "finished" or "" in (row.get("l_measured", ""), row.get("rate_measured", ""))
           or abs(row["rate_measured"] / row["rate_predicted"] - 1) > RATE_TOLERANCE or row["l_measured"] != row["l_initial"]]
    if bad:
        print(f"runs without a measurement, with a rate of l* off by more than {RATE_TOLERANCE:.0%} or a winner "
              f"other than the one expected from their initial spectrum: {', '.join(bad)}", file=sys.stderr)
        return 1
    summary = {"runs": len(rows), "winner_is_l_star": sum(row["l_measured"] == row["l_predicted"] for row in rows),
               "winner_is_expected": sum(row["l_measured"] == row["l_initial"] for row in rows),
               "max_rate_error": max(abs(row["rate_measured"] / row["rate_predicted"] - 1) for row in rows)}
    common.write(args.out, "phase_diagram", table(rows), summary, figure(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
