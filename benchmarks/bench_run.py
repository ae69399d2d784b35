"""Cost of a right-hand side inside a whole run, per-step overhead included, and the gain of SHTns threads.

For lmax = 127 and 255 on S² (β = 9, SA and USA, white noise 1e-3), side by side in one process:
- the time of one SHTns scalar analysis + synthesis on the run's grid (one thread);
- a whole run in memory (spherepde.solver.simulate, as `spherepde run` without the file) with fixed-step
  RK4 (4 right-hand sides per step) of N₁ and N₂ steps and two snapshots; the difference of the wall
  times over 4(N₂ − N₁) right-hand sides cancels start-up, planning and the snapshots, and keeps all that
  happens per step (the resolution checks, the density range, the CFL speed): the RHS cost "in a run";
- the same with `[numerics] threads = 0` (all cores): the speed-up of the threaded transforms.

    .venv/bin/python benchmarks/bench_run.py [--lmax 127 255] [--steps 20 60]
"""
import argparse
import os
import platform
import time

import numpy as np
from timing import median_time

from spherepde import config, solver
from spherepde.manifolds import Sphere


def run_seconds(name: str, lmax: int, steps: int, threads: int) -> float:
    dt = 1e-3
    cfg = config.resolve({"model": {"name": name, "beta": 9.0}, "domain": {"lmax": lmax},
                          "initial": {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": 0},
                          "time": {"t_end": steps * dt, "save_every": steps * dt, "method": "rk4", "dt": dt},
                          "numerics": {"threads": threads}})
    start = time.perf_counter()
    solver.simulate(cfg)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lmax", type=int, nargs="+", default=[127, 255])
    parser.add_argument("--steps", type=int, nargs=2, default=[20, 60])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n1, n2 = args.steps
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{'lmax':>5} {'model':>5} {'pair ms':>8} {'RHS in run ms':>14} {'RHS/pair':>9} {'threads=0 speed-up':>19}")
    for lmax in args.lmax:
        S = Sphere(lmax)
        c = S.from_real_coefficients(np.eye(1, S.real_size)[0])
        f = S.synthesis(c)
        pair = median_time(lambda: (S.analysis(f), S.synthesis(c)), 7)
        for name in ("SA", "USA"):
            per_rhs = {}
            for threads in (1, 0):
                t1 = min(run_seconds(name, lmax, n1, threads) for _ in range(args.repeat))
                t2 = min(run_seconds(name, lmax, n2, threads) for _ in range(args.repeat))
                per_rhs[threads] = (t2 - t1) / (4 * (n2 - n1))
            print(f"{lmax:>5} {name:>5} {pair * 1e3:>8.3f} {per_rhs[1] * 1e3:>14.3f} {per_rhs[1] / pair:>9.2f} "
                  f"{per_rhs[1] / per_rhs[0]:>19.2f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
