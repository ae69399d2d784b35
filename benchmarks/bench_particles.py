"""Cost of one RK4 step of the n-token system against plain reference implementations.

    .venv/bin/python benchmarks/bench_particles.py [--max-n 8000] [--beta 9] [--model SA]

Three velocity fields, all with general Q, K, V (here the identity) and the same RK4 step:
- blocked:  `spherepde.particles` (target rows in cache-sized blocks, stabilized softmax);
- loop:     a Python loop over tokens i with numpy over j, as in published notebooks;
- matrix:   the full n×n attention matrix in one go (memory n²).
All three are timed side by side in this run (best of 3 interleaved rounds) and checked to agree.
Peak memory of one velocity evaluation is measured with tracemalloc (numpy reports its
buffers to it). The cost should grow like n²: the last column shows nanoseconds per pair.
"""
import argparse
import os
import platform
import time
import tracemalloc

import numpy as np

from spherepde.particles import _Attention, _normalize, initial_tokens


def velocity_loop(x, beta, Q, K, V, normalized):
    """ẋ_i = P_{x_i} Σ_j A_ij V x_j, one token i at a time."""
    n = len(x)
    keys, values = x @ K.T, x @ V.T
    v = np.empty_like(x)
    for i in range(n):
        w = np.exp(beta * (keys @ (Q @ x[i])))
        u = (w @ values) / (w.sum() if normalized else n)
        v[i] = u - (u @ x[i]) * x[i]
    return v


def velocity_matrix(x, beta, Q, K, V, normalized):
    """ẋ = P_x A V x with the whole attention matrix A."""
    A = np.exp(beta * (x @ Q.T) @ (x @ K.T).T)
    A /= A.sum(axis=1, keepdims=True) if normalized else len(x)
    u = A @ (x @ V.T)
    return u - np.sum(u * x, axis=1, keepdims=True) * x


def rk4_step(f, x, h):
    k1 = f(x)
    k2 = f(x + 0.5 * h * k1)
    k3 = f(x + 0.5 * h * k2)
    k4 = f(x + h * k3)
    return _normalize(x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))


def best_seconds(calls, repeats=3):
    """Best wall time of each call over `repeats` rounds, the calls interleaved in every
    round so that a change of machine load hits all of them alike."""
    best = {name: np.inf for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def peak_megabytes(call):
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def cpu_name():
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=8000)
    parser.add_argument("--beta", type=float, default=9.0)
    parser.add_argument("--model", default="SA", choices=["SA", "USA"])
    parser.add_argument("--d", type=int, default=3)
    args = parser.parse_args()
    d, beta, normalized = args.d, args.beta, args.model == "SA"
    Q = K = V = np.eye(d)
    blocked = _Attention.build(beta, args.model, d, Q, K, V, None)
    fields = {
        "blocked": lambda y: blocked(_normalize(y)),
        "loop": lambda y: velocity_loop(y, beta, Q, K, V, normalized),
        "matrix": lambda y: velocity_matrix(y, beta, Q, K, V, normalized),
    }
    print(f"# {cpu_name()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# {args.model}, beta = {beta}, d = {d}: seconds per RK4 step (4 velocity evaluations)")
    print(f"{'n':>6} {'blocked s':>10} {'loop s':>9} {'matrix s':>9} {'loop/blk':>9} {'matrix/blk':>10} "
          f"{'blk ns/pair':>11} {'blk MB':>7} {'matrix MB':>9} {'max |diff|':>10}")
    n = 250
    while n <= args.max_n:
        x = initial_tokens("uniform", n, d, seed=0)
        h = 1e-3
        times = best_seconds({name: (lambda f=f: rk4_step(f, x, h)) for name, f in fields.items()})
        diff = max(np.abs(fields[name](x) - fields["blocked"](x)).max() for name in ("loop", "matrix"))
        memory = {name: peak_megabytes(lambda f=fields[name]: f(x)) for name in ("blocked", "matrix")}
        print(f"{n:>6} {times['blocked']:>10.4f} {times['loop']:>9.4f} {times['matrix']:>9.4f} "
              f"{times['loop'] / times['blocked']:>9.2f} {times['matrix'] / times['blocked']:>10.2f} "
              f"{times['blocked'] / (4 * n * n) * 1e9:>11.2f} {memory['blocked']:>7.1f} "
              f"{memory['matrix']:>9.1f} {diff:>10.1e}")
        n *= 2


if __name__ == "__main__":
    main()
