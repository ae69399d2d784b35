"""Time to measure the dominant growth rate λ_{l*} within 1%: the PDE against token runs.

    .venv/bin/python benchmarks/bench_meanfield.py [--target 0.01] [--max-n 1048576] [--seeds 6]

SA, β = 9, d = 3 (S²): l* = 4, λ_4 = 0.703145 (docs/mathematics.md).
- PDE: ρ₀ = 1 + 10⁻⁶ Y_40 at lmax = 20 (the kernel's bandwidth at 10⁻⁸), DOPRI5 rtol 10⁻¹⁰,
  t ≤ 6/λ_4 (amplitude ≤ 10⁻³: linear), λ_4 = the least-squares slope of log|a_40(t)|, as in
  validation/linear_vs_pde.py. Timed twice, before and after the token runs (machine load).
- Tokens: one run = n iid uniform tokens (harmonic sums from 1024 tokens on: cost ∝ n), RK4 dt = 0.25 to t = 1, the energy per degree E_4(t)
  of the empirical measure (harmonics at the tokens) at t = 0, 0.25, …, 1; λ_4 = the slope of
  ½ log E_4. A run's error is random, about C/√n: the quadratic terms of the token dynamics are
  O(1/n) against O(n^{-1/2}) amplitudes from t = 0 on (a longer window does not help, measured),
  plus a bias of order 1/n (the self-interaction in the SA normalization: −17/n at β = 9).
  The accuracy at n is the RMS relative error of single runs over --seeds samples, n doubling
  from 1000 to --max-n or until it is within --target. If the target is not reached, C is fitted
  to RMS = C/√n over the ladder, n₁ = (C/target)², and one run at n₁ is timed (and its error shown).
All timings in this one process, side by side.
"""
import argparse
import os
import sys
import time

import numpy as np

from spherepde import config, linear, meanfield, solver, tokens
from spherepde.manifolds import Sphere

BETA, D, STAR, DT, T_END = 9.0, 3, 4, 0.25, 1.0


def pde_rate() -> tuple[float, float]:
    """(λ_4 measured by a PDE run, wall seconds)."""
    lam = linear.growth_rates(BETA, D, "SA", STAR)[STAR]
    t_end = 6.0 / lam
    cfg = config.resolve({"model": {"name": "SA", "beta": BETA}, "domain": {"lmax": 20},
                          "initial": {"kind": "perturbed_uniform", "amplitude": 1e-6, "modes": [[STAR, 0]]},
                          "time": {"t_end": t_end, "save_every": t_end / 12, "rtol": 1e-10}})
    start = time.perf_counter()
    run = solver.simulate(cfg)
    rate = np.polyfit(run["t"], np.log(np.abs(run["diagnostics"]["modes"][:, 0])), 1)[0]
    return float(rate), time.perf_counter() - start


def token_rate(n: int, seed: int) -> tuple[float, float]:
    """(λ_4 measured by one run of n iid uniform tokens, wall seconds)."""
    times = np.arange(0.0, T_END + 1e-9, DT)
    M = Sphere(STAR)
    start = time.perf_counter()
    x0 = tokens.initial_tokens("uniform", n, D, seed=seed)
    energy = np.array([np.sum(meanfield.empirical_coefficients(x, M)[M.real_degrees == STAR] ** 2)
                       for _, x in tokens.trajectory(x0, BETA, "SA", save_times=times, method="rk4", dt=DT)])
    seconds = time.perf_counter() - start
    return float(np.polyfit(times, 0.5 * np.log(energy), 1)[0]), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.01, help="relative accuracy (default 1%%)")
    parser.add_argument("--max-n", type=int, default=1048576)
    parser.add_argument("--seeds", type=int, default=6, help="samples per n (RMS error over them)")
    args = parser.parse_args()
    lam = linear.growth_rates(BETA, D, "SA", STAR)[STAR]
    print(f"# {os.cpu_count()} cores, numpy {np.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"# SA, beta = {BETA:g}, d = {D}: lambda_{STAR} = {lam:.6f}, target {args.target:.1%}")
    rate, before = pde_rate()
    print(f"PDE: lambda = {rate:.6f} (error {rate / lam - 1:+.2e}), {before:.2f} s", flush=True)
    print(f"{'n':>6} {'seeds':>5} {'mean error':>10} {'RMS error':>9} {'s per run':>9}  single-run errors")
    ladder, n = [], 1000
    while n <= args.max_n:
        runs = [token_rate(n, seed) for seed in range(args.seeds)]
        errors = np.array([r / lam - 1 for r, _ in runs])
        rms, seconds = float(np.sqrt(np.mean(errors**2))), float(np.mean([s for _, s in runs]))
        ladder.append((n, rms, seconds))
        print(f"{n:>6} {args.seeds:>5} {errors.mean():>+10.2%} {rms:>9.2%} {seconds:>9.1f}  "
              + " ".join(f"{e:+.2%}" for e in errors), flush=True)
        if rms <= args.target:
            break
        n *= 2
    ns, rms = np.array([r[0] for r in ladder], float), np.array([r[1] for r in ladder])
    slope = np.polyfit(np.log(ns), np.log(rms), 1)[0] if len(ns) > 1 else float("nan")
    C = float(np.exp(np.mean(np.log(rms * np.sqrt(ns)))))
    print(f"RMS error ~ n^{slope:.2f} (free fit); with n^-1/2: C = {C:.2f}", flush=True)
    if rms[-1] <= args.target:
        needed, seconds = int(ns[-1]), ladder[-1][2]
        how = "measured on the ladder"
    else:
        needed = int(1000 * np.ceil((C / args.target) ** 2 / 1000))
        rate, seconds = token_rate(needed, 12345)
        how = f"from C/sqrt(n) = {args.target:.0%}; one run there has error {rate / lam - 1:+.2%}"
    rate, after = pde_rate()
    pde_seconds = 0.5 * (before + after)
    print(f"PDE again: {after:.2f} s; mean {pde_seconds:.2f} s")
    print(f"tokens: n = {needed} for an RMS error of {args.target:.0%} ({how}): {seconds:.1f} s per run, "
          f"{seconds / pde_seconds:.3g} x the PDE")


if __name__ == "__main__":
    sys.exit(main())
