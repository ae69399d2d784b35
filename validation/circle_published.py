"""The circle experiments of Bruno, Pasqualotto & Agazzi, arXiv 2410.23228 (USA, β = 5 and 7).

From the uniform state perturbed by white noise, the fastest linear mode l*(β) = argmax_k λ_k
(λ_k = k² I_k(β)/β) outgrows the others, and the density gathers into l* clusters at the
maxima of that mode's initial phase, δ_j = (2πj - arg c_{l*}(0))/l*, j = 0..l*-1
(c_k = ∫ρ e^{-ikθ} dσ); the paper shows 3 clusters at β = 5.

Runs of the PDE (K = 1024, USA, rtol = 1e-8), each until the resolution guard stops it (the
clusters keep shrinking like e^{-e^β t}), for seeds 0, 1, 2 of
- white noise: ρ0 = 1 + 0.01 ξ, ξ white (independent N(0,1) on every normalized harmonic of
  wavenumber 1..K, unit L²(σ) norm: 0.01/√(2K) = 2.2e-4 per harmonic);
- tokens: the empirical measure of N = 20 000 iid uniform tokens, smoothed by a von Mises kernel
  of concentration κ = 400 (width 1/√κ = 0.05 rad; it damps wavenumber k by I_k(κ)/I_0(κ) ≈
  e^{-k²/2κ}, 0.98 at k = 4); about 1/√N = 0.007 per harmonic.
Reported: l*(β) and the selectivity λ_{l*}/λ_second; the dominant mode argmax_k E_k when the
pattern reaches max ρ = 2 (end of the linear phase); the clusters found (diagnostics.find_clusters)
in the last resolved snapshot, and their distance to the nearest predicted angle.

Usage: python validation/circle_published.py [--out DIR]   (default validation/results/circle_published/; slow: ~1.5 min)
Writes circle_published.md (table), circle_published.json and circle_published.png (figure).
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (validation/ is the script's directory)
from spherepde import config, linear  # noqa: E402
from spherepde.diagnostics import find_clusters, predicted_cluster_angles  # noqa: E402
from spherepde.initial import initial_coefficients  # noqa: E402
from spherepde.manifolds import Circle  # noqa: E402

K = 1024
SEEDS = (0, 1, 2)
BETAS = (5.0, 7.0)
NOISE = {"kind": "perturbed_uniform", "amplitude": 0.01}
TOKENS = {"kind": "particles", "n": 20_000, "bandwidth": 400.0}
SNAPSHOTS = 60  # per linear-phase duration


def angular_distance(a, b):
    """|a - b| on the circle, elementwise (broadcasting)."""
    return np.abs(np.angle(np.exp(1j * (a - b))))


def simulate(model: str, beta: float, lmax: int, initial: dict, rtol: float = 1e-8) -> dict:
    """A circle run in memory until t_end = 3 t_lin or until the resolution guard stops it (the snapshots so
    far are kept), SNAPSHOTS per t_lin = ln(1/ε)/λ_{l*}, ε = ‖ρ0 - 1‖/√(2 lmax) the initial amplitude per
    harmonic. The run mapping of common.run with the densities under ``density``."""
    raw = {"model": {"name": model, "beta": beta}, "domain": {"kind": "circle", "lmax": lmax}, "initial": initial,
           "numerics": {"on_lost_resolution": "stop"}}
    circle = Circle(lmax)
    eps = np.sqrt(np.sum(circle.degree_energy(initial_coefficients(config.resolve(raw).initial, circle))[1:]) / (2 * lmax))
    rate = linear.growth_rates(beta, 2, model, lmax)[linear.dominant_degree(beta, 2)]
    t_lin = np.log(1 / eps) / rate
    run = common.run({**raw, "time": {"t_end": 3 * t_lin, "save_every": t_lin / SNAPSHOTS, "rtol": rtol}})
    run["density"] = run["fields"]["density"]
    return run


def analyse(name: str, seed: int, beta: float, run: dict) -> dict:
    circle = Circle(K)
    star = linear.dominant_degree(beta, 2)
    rho, t, diag = run["density"], run["t"], run["diagnostics"]
    predicted = predicted_cluster_angles(circle.analysis(rho[0]), star)
    onset = int(np.argmax(diag["max_density"] >= 2.0)) if np.any(diag["max_density"] >= 2.0) else len(t) - 1
    clusters = find_clusters(circle, rho[-1])
    miss = angular_distance(clusters.angles[:, None], predicted[None, :]).min(axis=1)
    return {
        "name": name, "seed": seed, "beta": beta, "star": star, "selectivity": linear.selectivity(beta, 2),
        "onset": t[onset], "dominant_at_onset": int(diag["dominant_degree"][onset]),
        "t_last": t[-1], "max_rho": float(rho[-1].max()), "clusters": clusters, "predicted": predicted, "miss": miss,
        "t": t, "rho": rho, "theta": run["grid"]["theta"], "onset_index": onset,
    }


def markdown(results) -> str:
    lines = [
        f"# Clusters from white noise and from tokens on the circle (USA, K = {K})",
        "",
        "| initial data | seed | β | l*(β) | λ_l*/λ_2nd | dominant mode at max ρ = 2 (t) | last resolved t (max ρ) "
        "| clusters | max distance to predicted δ_j (rad) | cluster masses |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        masses = ", ".join(f"{m:.3f}" for m in np.sort(r["clusters"].masses)[::-1])
        lines.append(
            f"| {r['name']} | {r['seed']} | {r['beta']:g} | {r['star']} | {r['selectivity']:.3f} | {r['dominant_at_onset']} ({r['onset']:.4f}) "
            f"| {r['t_last']:.4f} ({r['max_rho']:.3g}) | {len(r['clusters'])} | {r['miss'].max() if len(r['miss']) else np.nan:.2e} | {masses} |"
        )
    lines += [
        "",
        "Predicted angles δ_j = (2πj − arg c_l*(0))/l*: the maxima of the initial l*-mode; distances are from each",
        "detected cluster (diagnostics.find_clusters: centre of mass of its top half) to the nearest δ_j, which are",
        "2π/l* apart, so a wrong count shows as distances of order π/l*.",
    ]
    for r in results:
        lines.append(f"- {r['name']}, seed {r['seed']}, β = {r['beta']:g}: predicted {np.round(r['predicted'], 4).tolist()}, "
                     f"found {np.round(np.sort(r['clusters'].angles), 4).tolist()}")
    return "\n".join(lines) + "\n"


def figure(results):
    fig, axes = plt.subplots(len(results), 2, figsize=(12, 3.2 * len(results)), squeeze=False)
    for (heat, lines), r in zip(axes, results):
        theta, t, rho = r["theta"], r["t"], r["rho"]
        mesh = heat.pcolormesh(theta, t, np.log10(np.maximum(rho, 1e-3)), cmap="magma", shading="nearest", rasterized=True)
        fig.colorbar(mesh, ax=heat, label="log10 ρ")
        for d in r["predicted"]:
            heat.axvline(d, color="c", ls="--", lw=0.8)
        heat.set(xlabel="θ", ylabel="t", title=f"{r['name']} (seed {r['seed']}), β = {r['beta']:g}: ρ(θ, t), predicted δ_j dashed")
        for i in sorted({0, r["onset_index"], (r["onset_index"] + len(t) - 1) // 2, len(t) - 1}):
            lines.semilogy(theta, np.maximum(rho[i], 1e-3), lw=1, label=f"t = {t[i]:.3f}")
        for d in r["predicted"]:
            lines.axvline(d, color="c", ls="--", lw=0.8)
        lines.plot(r["clusters"].angles, r["clusters"].peaks, "kv", ms=5, label="clusters found")
        lines.set(xlabel="θ", ylabel="ρ (floored at 1e-3)", title=f"l* = {r['star']}: snapshots")
        lines.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def main():
    args = common.arguments(__doc__, "circle_published")
    results = []
    for beta in BETAS:
        for name, initial in (("white noise 0.01", NOISE), ("20 000 tokens, κ = 400", TOKENS)):
            for seed in SEEDS:
                results.append(analyse(name, seed, beta, simulate("USA", beta, K, {**initial, "seed": seed})))
    summary = [{"initial": r["name"], "seed": r["seed"], "beta": r["beta"], "l_star": r["star"], "clusters": len(r["clusters"]),
                "max_miss": float(r["miss"].max()) if len(r["miss"]) else None} for r in results]
    common.write(args.out, "circle_published", markdown(results), {"runs": summary},
                 figure([r for r in results if r["seed"] == SEEDS[0]]))


if __name__ == "__main__":
    main()
