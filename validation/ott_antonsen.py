"""Ott–Antonsen check of the circle solver: the one closed-form solution of the nonlinear PDE.

At β = 0 (SA = USA, X = P_x ∫ y ρ dσ) a wrapped-Cauchy density
(1 - R²)/(1 - 2R cos(θ - ψ) + R²) stays wrapped Cauchy about ψ with Ṙ = R(1 - R²)/2,

    R(t)² = R0² eᵗ / (1 - R0² + R0² eᵗ)          (docs/mathematics.md, "Exact and limiting solutions"),

R = |∫ e^{iθ} ρ dσ| (= |c_1| for c_k = ∫ ρ e^{-ikθ} dσ). The density concentrates like
(1 + R)/(1 - R), so a run at wavenumber K stays resolved only until R^K is no longer
negligible; the solver's resolution guard then stops it. For K = 32 … 512 this script
runs R0 = 0.2, ψ = 0.7 to t = 12 (rtol = 1e-10) and reports the largest error of R(t) and
of the profile over the resolved snapshots.

Usage: python validation/ott_antonsen.py [--out DIR]     (default validation/results/ott_antonsen/; ~10 s)
Writes ott_antonsen.md (table), ott_antonsen.json (the numbers) and ott_antonsen.png (figure).
"""
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (validation/ is the script's directory)

R0, PSI, T_END, SAVE_EVERY, RTOL = 0.2, 0.7, 12.0, 0.1, 1e-10
WAVENUMBERS = (32, 64, 128, 256, 512)
TARGET = 1e-6


def exact_radius(t, R0=R0):
    grow = R0**2 * np.exp(t)
    return np.sqrt(grow / (1 - R0**2 + grow))


def wrapped_cauchy(theta, R, K=None, psi=PSI):
    """1 + 2 Σ_{k≥1} R^k cos k(θ-ψ) in closed form; with K, its band-K part (the tail
    2 Re Σ_{k>K} R^k e^{ikx} = 2 Re R^{K+1} e^{i(K+1)x}/(1 - R e^{ix}) removed)."""
    x = theta - psi
    rho = (1 - R**2) / (1 - 2 * R * np.cos(x) + R**2)
    if K is not None:
        rho -= 2 * np.real(R ** (K + 1) * np.exp(1j * (K + 1) * x) / (1 - R * np.exp(1j * x)))
    return rho


def run(K: int) -> dict:
    """One run at wavenumber K, in memory; the snapshots up to the guard's stop (if any) are kept."""
    start = time.perf_counter()
    result = common.run({
        "model": {"name": "SA", "beta": 0.0},
        "domain": {"kind": "circle", "lmax": K},
        "initial": {"kind": "wrapped_cauchy", "R0": R0, "psi": PSI},
        "time": {"t_end": T_END, "save_every": SAVE_EVERY, "rtol": RTOL},
        "numerics": {"on_lost_resolution": "stop"},
    })
    stop = "t_end" if result["status"] == "finished" else "resolution guard"
    rho = result["fields"]["density"]
    theta, w = result["grid"]["theta"], result["grid"]["weights"]
    t = result["t"]
    R = np.abs(rho @ (w * np.exp(1j * theta)))
    exact = [wrapped_cauchy(theta, Rt) for Rt in exact_radius(t)]
    banded = [wrapped_cauchy(theta, Rt, K) for Rt in exact_radius(t)]
    return {
        "K": K, "n": len(theta), "t": t, "R": R, "error": np.abs(R - exact_radius(t)),
        "profile": np.array([np.max(np.abs(r - e)) / np.max(e) for r, e in zip(rho, exact)]),
        "band_profile": np.array([np.max(np.abs(r - b)) / np.max(b) for r, b in zip(rho, banded)]),
        "stop": stop, "wall": time.perf_counter() - start,
    }


def markdown(runs) -> str:
    lines = [
        f"# Ott–Antonsen solution (β = 0, R0 = {R0}, ψ = {PSI}, rtol = {RTOL:g}, snapshots every {SAVE_EVERY})",
        "",
        "| K | grid n | resolved until t | R there | max ρ = (1+R)/(1-R) | max error of R | max profile error / max ρ "
        "| same, vs band-K part | stopped by | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        R = r["R"][-1]
        lines.append(
            f"| {r['K']} | {r['n']} | {r['t'][-1]:.1f} | {R:.6f} | {(1 + R) / (1 - R):.3g} | {r['error'].max():.2e} "
            f"| {r['profile'].max():.2e} | {r['band_profile'].max():.2e} | {r['stop']} | {r['wall']:.1f} s |"
        )
    worst = max(r["error"].max() for r in runs)
    lines += ["", f"Largest error of R(t) over all resolved snapshots: {worst:.2e} "
              f"({'within' if worst <= TARGET else 'ABOVE'} the target {TARGET:g}).",
              "The profile error against the exact density includes its band truncation 2R^(K+1)/(1-R); against the "
              "exact density's band-K part it shows what the truncated dynamics adds (the dropped coupling of "
              "wavenumbers K and K+1).", "The run stops where the top 10% of wavenumbers carry 1e-5 of the "
              "energy (`[numerics] max_tail_energy`)."]
    return "\n".join(lines) + "\n"


def figure(runs):
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4))
    fine = np.linspace(0, T_END, 400)
    a.plot(fine, exact_radius(fine), "k-", lw=1, label="closed form")
    for r in runs:
        a.plot(r["t"][::5], r["R"][::5], "o", ms=3, label=f"K = {r['K']}")
        b.semilogy(r["t"], np.maximum(r["error"], 1e-17), label=f"K = {r['K']}")
        c.semilogy(r["t"], np.maximum(r["band_profile"], 1e-17), label=f"K = {r['K']}")
    b.axhline(TARGET, color="k", ls="--", lw=0.8, label="target 1e-6")
    a.set(xlabel="t", ylabel="R(t) = |∫ e^{iθ} ρ dσ|", title="order parameter")
    b.set(xlabel="t", ylabel="|R − R_exact|", title="error of R while resolved")
    c.set(xlabel="t", ylabel="max|ρ − ρ_exact,K| / max ρ", title="profile error vs the exact band-K part")
    for ax in (a, b, c):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main():
    args = common.arguments(__doc__, "ott_antonsen")
    runs = [run(K) for K in WAVENUMBERS]
    summary = {"target": TARGET, "max_error": max(r["error"].max() for r in runs),
               "runs": [{"K": r["K"], "t_resolved": r["t"][-1], "max_error": r["error"].max(), "stop": r["stop"]} for r in runs]}
    common.write(args.out, "ott_antonsen", markdown(runs), summary, figure(runs))


if __name__ == "__main__":
    main()
