"""Cost of a right-hand side inside a whole run, per-step overhead included, and the gain of SHTns threads.

For lmax = 127 and 255 on S² (β = 9, SA and USA, white noise 1e-3), side by side in one process:
- the time of one SHTns scalar analysis + synthesis on the run's grid (one thread): the 3/2 grid for SA,
  the smallest grid exact to 2·lmax + L for USA (spherepde.dynamics.grid_degree);
- one bare right-hand side on that grid (the equation called directly);
  both timed over as many calls in a row as the runs below differ by right-hand sides, so that every side of the
  comparison is a stretch of the same length and sees the same disturbances of a shared machine;
- a whole run in memory (spherepde.solver.simulate, as `spherepde run` without the file) with fixed-step
  RK4 (4 right-hand sides per step) of N₁ and N₂ steps (:func:`steps_differenced`) and two snapshots; the difference of the wall
  times over 4(N₂ − N₁) right-hand sides cancels start-up, planning and the snapshots, and keeps all that
  happens per step (the resolution checks, the density range): the RHS cost "in a run"; the per-step
  overhead is 4 × (in a run − bare), shown as a share of the step;
- the same run with `[numerics] threads = 0` (the default: all cores from lmax 127 on): the speed-up;
- then whole runs with DOPRI5, the default method (:func:`adaptive_run`), on one thread and with `threads = 0`, and
  with `threads = 0` but the BLAS threads left on during the run, as before spherepde limited them to one: OpenBLAS'
  threads spin after each norm of the error estimate and take the cores from SHTns' threads.
Times are the least over ``--repeat`` interleaved rounds of all of these (on a shared machine, the least disturbed
one); the share of CPU time the hypervisor took is printed at the end.

    .venv/bin/python benchmarks/bench_run.py [--lmax 127 255] [--repeat 3]
"""
import argparse
import itertools
import time

import numpy as np
from timing import end_line, machine_line, stretch_time, transform_pair

from spherepde import config, solver


def configuration(name: str, lmax: int, steps: int, threads: int):
    # USA grows like e^β: 1e-3 noise reaches O(1) after ≈ 0.1 time units at β = 9, and the run would go on as
    # weighted points; steps of 1e-6 keep the whole USA run in its linear phase
    dt = 1e-3 if name == "SA" else 1e-6
    return config.resolve({"model": {"name": name, "beta": 9.0}, "domain": {"lmax": lmax},
                           "initial": {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": 0},
                           "time": {"t_end": steps * dt, "save_every": steps * dt, "method": "rk4", "dt": dt},
                           "numerics": {"threads": threads}})


def run_seconds(name: str, lmax: int, steps: int, threads: int) -> float:
    cfg = configuration(name, lmax, steps, threads)
    start = time.perf_counter()
    result = solver.simulate(cfg)
    seconds = time.perf_counter() - start
    if result["status"] != "finished" or np.any(result["diagnostics"]["lagrangian"]):
        raise SystemExit(f"{name} at lmax {lmax} did not stay spectral: {result['message']}")
    return seconds


def adaptive_run(name: str, lmax: int, threads: int, blas_threads: int | None) -> tuple[float, int]:
    """(seconds, steps) of a whole run with DOPRI5, the default method, at rtol 1e-13 (a few hundred steps), with
    ``blas_threads`` BLAS threads during the run (spherepde's choice is 1, :attr:`solver.Simulation.blas_threads`;
    None leaves them as they are, as before that choice)."""
    t_end = 0.01 if name == "USA" else 1.0
    cfg = config.resolve({"model": {"name": name, "beta": 9.0}, "domain": {"lmax": lmax},
                          "initial": {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": 0},
                          "time": {"t_end": t_end, "save_every": t_end, "rtol": 1e-13}, "numerics": {"threads": threads}})
    chosen, solver.Simulation.blas_threads = solver.Simulation.blas_threads, blas_threads
    try:
        start = time.perf_counter()
        result = solver.simulate(cfg)
        return time.perf_counter() - start, result["summary"]["steps"]
    finally:
        solver.Simulation.blas_threads = chosen


def steps_differenced(lmax: int) -> tuple[int, int]:
    """N₁ = 40 k and N₂ = 240 k RK4 steps with k = (256/(lmax+1))², so that the difference of the two runs is 1–2 s at
    every lmax (with 40 steps of difference at lmax 255, 0.3 s, the start-up's jitter alone moved the result by 20 %)."""
    k = max(1, round((256 / (lmax + 1)) ** 2))
    return 40 * k, 240 * k


def rhs_in_run(name: str, lmax: int, threads: int, repeat: int) -> float:
    """Seconds per right-hand side in a whole run: runs of N₁ and N₂ RK4 steps (:func:`steps_differenced`)
    differenced, the least of ``repeat``."""
    n1, n2 = steps_differenced(lmax)
    t1 = min(run_seconds(name, lmax, n1, threads) for _ in range(repeat))
    t2 = min(run_seconds(name, lmax, n2, threads) for _ in range(repeat))
    return (t2 - t1) / (4 * (n2 - n1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lmax", type=int, nargs="+", default=[127, 255])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ticks = machine_line()
    print(f"{'lmax':>5} {'model':>5} {'grid':>9} {'pair ms':>8} {'bare RHS ms':>12} {'RHS in run ms':>14} {'RHS/pair':>9} "
          f"{'overhead/step':>14} {'threads=0 speed-up':>19}")
    for lmax in args.lmax:
        for name in ("SA", "USA"):
            sim = solver.Simulation(configuration(name, lmax, 1, 1))
            S, F = sim.manifold, sim.equation
            c = sim.initial_state()
            pair_of_transforms = transform_pair(S, c)
            n1, n2 = steps_differenced(lmax)
            best = dict.fromkeys(["pair", "bare", (1, n1), (1, n2), (0, n1), (0, n2)], np.inf)
            for _ in range(args.repeat):  # interleaved: a change of load or of stolen time hits all alike
                best["pair"] = min(best["pair"], stretch_time(pair_of_transforms, 4 * (n2 - n1)))
                best["bare"] = min(best["bare"], stretch_time(lambda: F(0.0, c), 4 * (n2 - n1)))
                for threads, steps in itertools.product((1, 0), (n1, n2)):
                    best[threads, steps] = min(best[threads, steps], run_seconds(name, lmax, steps, threads))
            pair, bare = best["pair"], best["bare"]
            per_rhs = {threads: (best[threads, n2] - best[threads, n1]) / (4 * (n2 - n1)) for threads in (1, 0)}
            overhead = (per_rhs[1] - bare) / per_rhs[1]
            grid = "x".join(map(str, S.grid_shape))
            print(f"{lmax:>5} {name:>5} {grid:>9} {pair * 1e3:>8.3f} {bare * 1e3:>12.3f} {per_rhs[1] * 1e3:>14.3f} "
                  f"{per_rhs[1] / pair:>9.2f} {overhead:>14.1%} {per_rhs[1] / per_rhs[0]:>19.2f}", flush=True)
    print(f"\nWhole DOPRI5 runs (rtol 1e-13), the best of {args.repeat} interleaved rounds:")
    print(f"{'lmax':>5} {'model':>5} {'steps':>6} {'1 thread s':>11} {'threads=0 s':>12} {'speed-up':>9} "
          f"{'threads=0, BLAS threads left on s':>34}")
    for lmax in args.lmax:
        for name in ("SA", "USA"):
            variants = {"one": (1, 1), "all": (0, 1), "all, BLAS on": (0, None)}
            best = dict.fromkeys(variants, np.inf)
            for _ in range(args.repeat):
                for key, (threads, blas) in variants.items():
                    seconds, steps = adaptive_run(name, lmax, threads, blas)
                    best[key] = min(best[key], seconds)
            print(f"{lmax:>5} {name:>5} {steps:>6} {best['one']:>11.2f} {best['all']:>12.2f} {best['one'] / best['all']:>9.2f} "
                  f"{best['all, BLAS on']:>34.2f}", flush=True)
    end_line(ticks)


if __name__ == "__main__":
    main()
