"""Cost of one velocity evaluation of n weighted points, and the wall time of the whole-life run.

    .venv/bin/python benchmarks/bench_points.py [--max-n 1000000] [--max-direct-n 32000] [--circle-max-n 10000000]
        [--beta 9] [--threads 1] [--whole-life]

1. S², SA at β (default 9), Q = K = V = I, n iid uniform points with random positive weights, n = 10³ … --max-n:
   - spectral: kernels.SpectralVelocity, the harmonic sums at the kernel's band (ducc0's non-uniform transforms,
     ``--threads``), the path of the Lagrangian phase and of the token backend "spectral";
   - direct: kernels.DirectVelocity (numba when installed, else numpy), O(n²), up to --max-direct-n; beyond, the
     n² extrapolation from the largest measured n, marked "extrapolated";
   - pairwise: kernels.PairwiseVelocity (projected terms, O(n² d) memory) up to 1024 points, its range of use.
   Each is checked against the direct sum where both ran (max deviation relative to the largest speed).
2. S¹, the same model, n up to --circle-max-n (ducc0's non-uniform FFT): spectral only past 32 000.
3. --whole-life: the wall time of the demo's S² run (SA β = 9, lmax 127, noise to one cluster at t = 1e9),
   in memory, and how it splits into the spectral and the Lagrangian phases.

Timings are medians of repeated batches (benchmarks/timing.py), side by side in this run.
"""
import argparse
import time
import tomllib

import numpy as np
from timing import end_line, machine_line, median_time

from spherepde import config, demo, solver
from spherepde.kernels import DirectVelocity, PairwiseVelocity, SpectralVelocity, direct_backend, spectral_degree
from spherepde.lagrangian import FEW_POINTS
from spherepde.manifolds import for_points
from spherepde.model import AttentionModel


def sample(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.uniform(0.5, 1.5, n)
    return x, w / w.sum()


def table(model: AttentionModel, band, sizes, max_direct: int, repeat: int, pairwise: bool) -> list[str]:
    spectral = SpectralVelocity(model, band)
    backend = direct_backend("auto")
    direct = DirectVelocity(model, backend)
    rows = ["| n | spectral | direct (" + backend + ") | spectral / direct | pairwise | max deviation / max speed |",
            "|---|---|---|---|---|---|"]
    last = None
    for n in sizes:
        x, w = sample(n, model.d)
        t_spec = median_time(lambda: spectral(x, w), repeat)
        deviation = ""
        if n <= max_direct:
            t_dir = median_time(lambda: direct(x, w), repeat)
            last = (n, t_dir)
            reference = direct(x, w)
            deviation = f"{np.abs(spectral(x, w) - reference).max() / np.abs(reference).max():.1e}"
            direct_text = f"{t_dir * 1e3:.3g} ms"
        else:
            assert last is not None
            t_dir = last[1] * (n / last[0]) ** 2
            direct_text = f"{t_dir * 1e3:.3g} ms (extrapolated)"
        t_pair = ""
        if pairwise and n <= FEW_POINTS:
            t_pair = f"{median_time(lambda: PairwiseVelocity(model)(x, w), repeat) * 1e3:.3g} ms"
        rows.append(f"| {n} | {t_spec * 1e3:.3g} ms | {direct_text} | {t_spec / t_dir:.2g} | {t_pair} | {deviation} |")
        print(rows[-1], flush=True)
    return rows


def whole_life() -> list[str]:
    cfg = config.resolve(tomllib.loads(demo.CONFIG))
    start = time.perf_counter()
    run = solver.simulate(cfg)
    wall = time.perf_counter() - start
    diag, t = run["diagnostics"], run["t"]
    switch = float(t[np.argmax(diag["lagrangian"] == 1)])
    return [f"whole life, SA beta = 9 on S^2, lmax 127, t = 0..{t[-1]:g}: {wall:.1f} s wall ({len(t)} snapshots, "
            f"status {run['status']}, switch to points at t = {switch:.3g}, {diag['points_active'][-1]} point(s) at the end)"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=1_000_000)
    parser.add_argument("--max-direct-n", type=int, default=32_000)
    parser.add_argument("--circle-max-n", type=int, default=10_000_000)
    parser.add_argument("--beta", type=float, default=9.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--whole-life", action="store_true")
    args = parser.parse_args()
    ticks = machine_line(f", numpy {np.__version__}")
    model = AttentionModel("SA", args.beta, 3)
    L = spectral_degree(model)
    print(f"\nS², SA beta = {args.beta:g}: kernel band L = {L} (spectral sums to degree L)")
    sizes = [n for n in (1000, 4000, 16_000, 32_000, 100_000, 300_000, 1_000_000, 3_000_000) if n <= args.max_n]
    table(model, for_points(3, L, args.threads), sizes, args.max_direct_n, args.repeat, pairwise=True)
    circle_model = AttentionModel("SA", args.beta, 2)
    L1 = spectral_degree(circle_model)
    print(f"\nS¹, SA beta = {args.beta:g}: kernel band L = {L1}")
    sizes = [n for n in (1000, 32_000, 1_000_000, 10_000_000) if n <= args.circle_max_n]
    table(circle_model, for_points(2, L1, args.threads), sizes, args.max_direct_n, max(3, args.repeat // 2), pairwise=False)
    if args.whole_life:
        print()
        print("\n".join(whole_life()))
    end_line(ticks)


if __name__ == "__main__":
    main()
