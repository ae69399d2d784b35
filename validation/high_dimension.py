"""The PDE on S^{d-1} for d up to 1024 (zonal densities): linear theory and tokens in high dimension.

1. Winners. SA, zonal white noise (an independent N(0,1) coefficient per zonal harmonic of degree
   1..lmax, unit L²(σ) norm) of amplitude 1e-8, or less where that is needed for ρ₀ ≥ ½ on the grid
   (in high d the zonal harmonics are huge near the poles, where σ has almost no mass), for d = 4, 8, 16, 64, 256, 1024 and in each of the
   first dominance intervals of l*(β, d) the β where the selectivity λ_l*/λ_next peaks (the β farthest
   from a tie with either neighbour), seeds 0..2: the degree that dominates at the end of the linear
   window (compare.compare_record) against l*(β, d) and against the degree that linear growth from the
   run's own initial spectrum predicts. The switch points β_{l→l+1}(d) are listed.
2. Tokens. SA at β = 2, Q = K = V = I, in d = 64 and 512: n iid tokens drawn from the zonal density
   ρ₀ = von Mises–Fisher about e (κ = d/8, mean s ≈ 1/8), run with the direct (numpy) kernel, RK4
   dt = 0.05, against the zonal PDE (lmax 128 in d = 64, 384 in d = 512) from the same ρ₀ at the saved times
   where it is resolved (min ρ ≥ -1e-6 max ρ on the grid; in d = 512 only up to t = 0.5: the density
   concentrates where σ has mass e^{-26}, and the grid values there carry the tail's error). (A larger β needs far more tokens in high d: the
   self-interaction e^β of each token against the n ĥ_0(β) ≈ n e^{β²/2d} of the others makes the token
   system follow the mean field only once n ≫ e^{β − β²/2d}.) At t = 0, 0.5, 1, 1.5, 2: the zonal coefficients â_l = (1/n) Σ_i Y_l(⟨x_i, e⟩)
   against the PDE's a_l (l = 1..4), in units of their sampling error std(Y_l)/√n, and the
   Kolmogorov–Smirnov distance of s = ⟨x, e⟩ against the PDE's distribution of s, times √n: both O(1)
   at t = 0; later the dynamics amplify each sample's initial deviation, so |z| grows with t alike for all
   n (the n^{-1/2} rate holds when z at fixed t does not grow with n).

Writes high_dimension.md, .json and .png into --out (default validation/results/high_dimension/).
About 6 minutes on 2 cores; --quick (d ≤ 64, one seed, n ≤ 1000) about a minute.

    python validation/high_dimension.py [--quick] [--out DIR]
"""
from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
from linear_vs_pde import selective_betas  # noqa: E402
from spherepde import compare, linear, tokens  # noqa: E402
from spherepde.harmonics import kernel_bandwidth, zonal_harmonics  # noqa: E402
from spherepde.initial import perturbation  # noqa: E402
from spherepde.manifolds import manifold_from_config  # noqa: E402

AMPLITUDE = 1e-8
TOKEN_TIMES = (0.0, 0.5, 1.0, 1.5, 2.0)
TOKEN_BETA = 2.0
TOKEN_DT = 0.05
#: The zonal PDE's lmax for the token comparison: enough to stay resolved to t = 2 (κ = d/8 concentrates with d).
TOKEN_LMAX = {64: 128, 512: 384}
#: A PDE snapshot counts as resolved while min ρ ≥ -RESOLVED_UNDERSHOOT · max ρ on the grid.
RESOLVED_UNDERSHOOT = 1e-6
DEGREES = range(1, 5)


def winner(d: int, beta: float, seed: int) -> dict:
    star = linear.dominant_degree(beta, d, "SA")
    lmax = max(kernel_bandwidth(beta, d, 1e-8), 4 * star, 24)
    M = manifold_from_config(SimpleNamespace(kind="zonal", lmax=lmax, dim=d))
    amplitude = min(AMPLITUDE, 0.5 / np.abs(M.synthesis(perturbation(M, seed=seed))).max())
    t_end = 1.5 * linear.linear_phase_duration(beta, d, "SA", amplitude=amplitude / math.sqrt(lmax))
    run = common.run({"model": {"name": "SA", "beta": beta}, "domain": {"kind": "zonal", "dim": d, "lmax": lmax},
                      "initial": {"kind": "perturbed_uniform", "amplitude": amplitude, "seed": seed},
                      "time": {"t_end": t_end, "save_every": t_end / 60},
                      "numerics": {"on_lost_resolution": "stop"}})
    dominant = compare.compare_record(run)["dominant_degree"]
    return {"d": d, "beta": beta, "seed": seed, "l_star": star, "measured": dominant["measured"],
            "expected": dominant["expected"], "lmax": lmax, "amplitude": amplitude}


def token_comparison(d: int, ns: list[int]) -> list[dict]:
    beta, kappa = TOKEN_BETA, d / 8
    lmax = max(kernel_bandwidth(beta, d, 1e-8), TOKEN_LMAX[d])
    raw = {"model": {"name": "SA", "beta": beta}, "domain": {"kind": "zonal", "dim": d, "lmax": lmax},
           "initial": {"kind": "von_mises_fisher", "kappa": kappa},
           "time": {"t_end": TOKEN_TIMES[-1], "save_every": 0.5, "rtol": 1e-10},
           "numerics": {"on_lost_resolution": "stop"}}
    pde = common.run(raw)
    M = manifold_from_config(SimpleNamespace(kind="zonal", lmax=lmax, dim=d))
    densities = pde["fields"]["density"]
    rows = []
    for n in ns:
        x0 = M.sample(densities[0], n, np.random.default_rng(n))
        for t, x in tokens.trajectory(x0, beta, "SA", save_times=list(TOKEN_TIMES), method="rk4", dt=TOKEN_DT,
                                      backend="numpy"):
            saved = np.flatnonzero(np.isclose(pde["t"], t, rtol=0, atol=1e-9))
            diag = pde["diagnostics"]
            if not saved.size or diag["min_density"][saved[0]] < -RESOLVED_UNDERSHOOT * diag["max_density"][saved[0]]:
                # the PDE stopped before t, or its grid values undershoot (they carry the tail's error where σ is
                # tiny, which the distribution of s integrates): no resolved density to compare with
                print(f"d={d} n={n} t={t:g}: the PDE at lmax {lmax} is not resolved there", file=sys.stderr)
                continue
            k = int(saved[0])
            s = x[:, -1]
            Y = zonal_harmonics(s, max(DEGREES), d)
            a = M.analysis(densities[k])
            z = [(Y[l].mean() - a[l]) / (Y[l].std() / math.sqrt(n)) for l in DEGREES]
            grid, F = M.distribution(densities[k])
            empirical = np.searchsorted(np.sort(s), grid, side="right") / n
            ks = float(np.max(np.abs(empirical - F)))
            rows.append({"d": d, "n": n, "t": t, "z": z, "ks_root_n": ks * math.sqrt(n), "mean_s": float(s.mean()),
                         "pde_mean_s": float(a[1] / math.sqrt(d))})
            print(f"d={d} n={n} t={t:g}: z = {np.round(z, 2).tolist()}, KS·√n = {ks * math.sqrt(n):.2f}",
                  file=sys.stderr, flush=True)
    return rows


def markdown(winners, switches, token_rows, quick) -> str:
    lines = ["# The PDE on S^{d-1}: zonal densities in high dimension", "",
             f"Generated by `validation/high_dimension.py{' --quick' if quick else ''}`.", "",
             "## Switch points β_(l→l+1)(d) of linear theory", "",
             "| d | " + " | ".join(f"{l}→{l + 1}" for l in range(1, 5)) + " |", "|---|" + "---|" * 4]
    for d, points in switches.items():
        lines.append(f"| {d} | " + " | ".join(f"{b:.4g}" for b, _, _ in points[:4]) + " |")
    lines += ["", f"## Winners of the linear phase from zonal white noise (amplitude {AMPLITUDE:g}), SA", "",
              "| d | β | l*(β, d) | lmax | amplitude | winners (by seed) | = l* | predicted from ρ₀ | = prediction |",
              "|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for w in winners:
        groups.setdefault((w["d"], w["beta"]), []).append(w)
    for (d, beta), rows in groups.items():
        wins, expected = [r["measured"] for r in rows], [r["expected"] for r in rows]
        lines.append(f"| {d} | {beta:.4g} | {rows[0]['l_star']} | {rows[0]['lmax']} | {min(r['amplitude'] for r in rows):.1e} | "
                     f"{', '.join(map(str, wins))} | "
                     f"{sum(w == rows[0]['l_star'] for w in wins)}/{len(wins)} | {', '.join(map(str, expected))} | "
                     f"{sum(a == b for a, b in zip(wins, expected))}/{len(wins)} |")
    agree = sum(w["measured"] == w["l_star"] for w in winners)
    agree_expected = sum(w["measured"] == w["expected"] for w in winners)
    lines += ["", f"Winner = l*(β, d) in {agree}/{len(winners)} runs; = the prediction from each run's initial spectrum in "
              f"{agree_expected}/{len(winners)}.", "",
              f"## Tokens against the zonal PDE (SA, β = {TOKEN_BETA:g}, ρ₀ = vMF about e with κ = d/8)", "",
              "z_l = (â_l − a_l)/(std Y_l/√n): the tokens' zonal coefficient against the PDE's in units of its sampling "
              "error; KS·√n: Kolmogorov–Smirnov distance of s = ⟨x, e⟩ times √n. At t = 0 both are O(1) (iid sampling). "
              "Later the dynamics amplify each sample's initial deviation (the density concentrates), so |z| grows with t; "
              "the tokens follow the mean field at the n^{-1/2} rate when, at each t, z does not grow with n.", "",
              "| d | n | t | z_1 | z_2 | z_3 | z_4 | KS·√n | mean s tokens | mean s PDE |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in token_rows:
        lines.append(f"| {r['d']} | {r['n']} | {r['t']:g} | " + " | ".join(f"{v:+.2f}" for v in r["z"])
                     + f" | {r['ks_root_n']:.2f} | {r['mean_s']:.4f} | {r['pde_mean_s']:.4f} |")
    return "\n".join(lines) + "\n"


def figure(winners, dims, token_rows):
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for i, d in enumerate(dims):
        mine = [w for w in winners if w["d"] == d]
        top = 1.1 * max(w["beta"] for w in mine)
        points = linear.switch_points(d, top)
        edges = [0.0, *[b for b, _, _ in points], top]
        left.stairs(np.arange(1, len(edges)), np.array(edges) / d, color=f"C{i}", label=f"l*(β), d = {d}")
        left.plot([w["beta"] / d for w in mine], [w["measured"] + 0.05 * (w["seed"] - 1) for w in mine], "o",
                  color=f"C{i}", mfc="none")
    left.set(xlabel="β / d", ylabel="degree", title="dominant degree of the linear phase: theory (steps), zonal PDE (circles)")
    left.legend(fontsize=7)
    for i, d in enumerate(sorted({r["d"] for r in token_rows})):
        for n in sorted({r["n"] for r in token_rows if r["d"] == d}):
            rows = [r for r in token_rows if r["d"] == d and r["n"] == n]
            right.plot([r["t"] for r in rows], [r["ks_root_n"] for r in rows], "o-", color=f"C{i}",
                       alpha=0.4 + 0.6 * n / max(r["n"] for r in token_rows), label=f"d = {d}, n = {n}")
    right.axhline(1.36, color="k", ls=":", lw=0.8, label="KS 95% quantile for iid samples")
    right.set(xlabel="t", ylabel="KS distance of s = ⟨x, e⟩ × √n", title="tokens against the zonal PDE")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main() -> int:
    args = common.arguments(__doc__, "high_dimension", quick="d ≤ 64, one seed, n ≤ 1000")
    dims = (4, 16, 64) if args.quick else (4, 8, 16, 64, 256, 1024)
    seeds = range(1) if args.quick else range(3)
    switches = {d: linear.switch_points(d, 4000.0) for d in dims}
    winners = []
    for d in dims:
        betas = selective_betas(d, switches[d][2][0] if len(switches[d]) > 2 else 4000.0)
        for beta, star, _ in betas:
            for seed in seeds:
                winners.append(winner(d, beta, seed))
                w = winners[-1]
                print(f"d={d} beta={beta:.4g}: l*={star}, winner {w['measured']}, from rho0 {w['expected']}", file=sys.stderr, flush=True)
    token_rows = []
    for d, ns in ((64, [250, 1000] if args.quick else [500, 2000, 8000]), *(() if args.quick else ((512, [500, 2000]),))):
        token_rows += token_comparison(d, ns)
    summary = {"winners": winners, "winner_is_l_star": sum(w["measured"] == w["l_star"] for w in winners),
               "winner_is_expected": sum(w["measured"] == w["expected"] for w in winners), "runs": len(winners),
               "switch_points": {str(d): [b for b, _, _ in p[:4]] for d, p in switches.items()},
               "tokens": token_rows, "max_abs_z": max(max(abs(v) for v in r["z"]) for r in token_rows),
               "max_ks_root_n": max(r["ks_root_n"] for r in token_rows)}
    common.write(args.out, "high_dimension", markdown(winners, switches, token_rows, args.quick), summary,
                 figure(winners, dims, token_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
