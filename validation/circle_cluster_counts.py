"""Cluster counts on the circle from random data against the dominant linear mode l*(β).

From noise the metastable state has about l*(β) = argmax_k λ_k equally spaced
clusters; near the switch points β_{l→l+1}, where λ_l = λ_{l+1}, the two modes grow almost
equally fast and the initial amplitudes decide. For β = 1.5 … 18 and seeds 0..4: SA (the
same l* as USA, on time scales of order one), K = 256, white noise of amplitude 1e-3
(independent N(0,1) per normalized harmonic, unit norm: 4.4e-5 per harmonic), rtol = 1e-6,
each run until 3 t_lin or until the resolution guard stops it. Counted with
diagnostics.find_clusters in the last resolved snapshot (clusters have formed and shrink
like e^{-t}; merging takes times growing like e^{cβ}); also the dominant mode argmax_k E_k
when max ρ first reaches 2 (end of the linear phase).

Usage: python validation/circle_cluster_counts.py [--out DIR]
       (default validation/results/circle_cluster_counts/; slow: about 1.5 min)
Writes circle_cluster_counts.md (table), circle_cluster_counts.json and circle_cluster_counts.png (figure).
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (validation/ is the script's directory)
from circle_published import simulate  # noqa: E402
from spherepde import linear  # noqa: E402
from spherepde.manifolds import Circle  # noqa: E402
from spherepde.diagnostics import find_clusters  # noqa: E402

K = 256
BETAS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 6.5, 7.0, 8.0, 9.0, 10.0, 11.0, 12.5, 14.0, 16.0, 18.0)
SEEDS = (0, 1, 2, 3, 4)
NOISE = {"kind": "perturbed_uniform", "amplitude": 1e-3}
# Where λ_{l*}/λ_second is below this, neighbouring modes compete.
COMPETITION = 1.05


def measure(beta: float, seed: int) -> dict:
    run = simulate("SA", beta, K, {**NOISE, "seed": seed}, rtol=1e-6)
    diag = run["diagnostics"]
    formed = np.flatnonzero(diag["max_density"] >= 2.0)
    clusters = find_clusters(Circle(K), run["density"][-1])
    spacing = np.diff(np.sort(clusters.angles), append=np.min(clusters.angles) + 2 * np.pi) if len(clusters) else []
    return {
        "count": len(clusters),
        "onset_mode": int(diag["dominant_degree"][formed[0]]) if formed.size else 0,
        "t": float(run["t"][-1]),
        "max_rho": float(diag["max_density"][-1]),
        "spacing": float(np.std(spacing) / np.mean(spacing)) if len(clusters) > 1 else 0.0,
    }


def markdown(rows) -> str:
    lines = [
        f"# Cluster counts from white noise (SA, K = {K}, amplitude {NOISE['amplitude']:g}, seeds {list(SEEDS)})",
        "",
        "| β | l*(β) | λ_l*/λ_2nd | clusters per seed | agree | dominant mode at max ρ = 2 | last resolved t (max ρ, min..max) "
        "| spacing spread |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["measured"]
        counts = [x["count"] for x in m]
        lines.append(
            f"| {r['beta']:g} | {r['star']} | {r['selectivity']:.3f}{' (competing)' if r['selectivity'] < COMPETITION else ''} "
            f"| {', '.join(map(str, counts))} | {sum(c == r['star'] for c in counts)}/{len(counts)} "
            f"| {', '.join(str(x['onset_mode']) for x in m)} "
            f"| {np.mean([x['t'] for x in m]):.3g} ({min(x['max_rho'] for x in m):.3g}..{max(x['max_rho'] for x in m):.3g}) "
            f"| {max(x['spacing'] for x in m):.2f} |"
        )
    agree = [x["count"] == r["star"] for r in rows for x in r["measured"]]
    clear = [x["count"] == r["star"] for r in rows for x in r["measured"] if r["selectivity"] >= COMPETITION]
    onset = [x["onset_mode"] == r["star"] for r in rows for x in r["measured"]]
    switches = ", ".join(f"{b:.2f} ({lo}→{hi})" for b, lo, hi in linear.switch_points(2, max(BETAS)))
    lines += [
        "",
        f"- cluster count = l*(β): {sum(agree)}/{len(agree)} runs; where λ_l*/λ_2nd ≥ {COMPETITION}: {sum(clear)}/{len(clear)}.",
        f"- dominant mode at the end of the linear phase = l*(β): {sum(onset)}/{len(onset)} runs.",
        f"- switch points β_(l→l+1) on the circle: {switches}.",
        "- spacing spread: largest std/mean of the gaps between neighbouring clusters (0 = equally spaced).",
    ]
    return "\n".join(lines) + "\n"


def figure(rows):
    fig, ax = plt.subplots(figsize=(9, 4.5))
    fine = np.linspace(min(BETAS), max(BETAS), 400)
    ax.step(fine, [linear.dominant_degree(b, 2) for b in fine], where="post", color="k", lw=1, label="l*(β) = argmax λ_k")
    offsets = np.linspace(-0.15, 0.15, len(SEEDS))
    for r in rows:
        counts = [x["count"] for x in r["measured"]]
        onset = [x["onset_mode"] for x in r["measured"]]
        ax.plot(r["beta"] + offsets, counts, "o", color="C0", ms=4, label="clusters (per seed)" if r is rows[0] else None)
        ax.plot(r["beta"] + offsets, np.array(onset) + 0.15, "x", color="C3", ms=4,
                label="dominant mode at max ρ = 2 (shifted up)" if r is rows[0] else None)
    for b, _, _ in linear.switch_points(2, max(BETAS)):
        ax.axvline(b, color="0.7", ls=":", lw=0.8)
    ax.set(xlabel="β", ylabel="count / mode", title=f"SA on the circle from white noise (K = {K}); dotted: switch points")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def main():
    args = common.arguments(__doc__, "circle_cluster_counts")
    rows = []
    for beta in BETAS:
        measured = [measure(beta, seed) for seed in SEEDS]
        rows.append({"beta": beta, "star": linear.dominant_degree(beta, 2), "selectivity": linear.selectivity(beta, 2),
                     "measured": measured})
        print(f"beta = {beta:g}: l* = {rows[-1]['star']}, counts {[x['count'] for x in measured]}", flush=True)
    clear = [x["count"] == r["star"] for r in rows for x in r["measured"] if r["selectivity"] >= COMPETITION]
    summary = {"competition": COMPETITION, "agree_away_from_switch_points": sum(clear), "runs_away_from_switch_points": len(clear),
               "rows": [{"beta": r["beta"], "l_star": r["star"], "counts": [x["count"] for x in r["measured"]]} for r in rows]}
    common.write(args.out, "circle_cluster_counts", markdown(rows), summary, figure(rows))


if __name__ == "__main__":
    main()
