"""Cost of one RK4 step of the n-token system: the package's backends against plain references.

    .venv/bin/python benchmarks/bench_particles.py [--start-n 250] [--max-n 1000000] [--max-direct-n 32000] [--max-matrix-n 8000]
        [--max-double-n 500] [--beta 9] [--model SA] [--d 3] [--matrices identity|random]

Velocity fields, the same RK4 step:
- spectral:    `spherepde.tokens`, backend "spectral" (harmonic sums at the kernel's band, O(n + L² log L);
               identity matrices and d = 2, 3 only), up to --max-n;
- numba:       `spherepde.tokens`, backend "numba" (compiled, threads over row blocks; the
               default when numba is installed);
- numpy:       `spherepde.tokens`, backend "numpy" (target rows in cache-sized blocks,
               stabilized softmax; for Q = K = V = I, β ≥ 0 the symmetric half-triangle path);
- row loop:    a Python loop over tokens i with numpy over j, as in published notebooks;
- matrix:      the full n×n attention matrix in one go (memory n²: n ≤ --max-matrix-n);
- double loop: Python loops over i and j, one pair at a time, as the formula reads (n ≤ --max-double-n).
With ``--matrices identity`` (default) B = QᵀK = I, with ``random`` a fixed random Q, K, V
(the general path of both backends). All fields are timed side by side in this run (best of
3 interleaved rounds, so that a change of machine load hits all alike) and checked to agree.
Peak memory of one velocity evaluation (numpy, matrix, spectral) is measured with tracemalloc (numpy
reports its buffers to it; numba's are O(n·d); ducc0's internal buffers are not counted), and the
process's peak resident memory at the end. n doubles from --start-n (1221 reaches 10⁷ on S¹). The cost should grow like n²: ns/pair is the time per
RK4 step over 4n² pairs.
"""
import argparse
import os
import platform
import resource
import time
import tracemalloc

import numpy as np

from spherepde.integrate import normalize_rows as _normalize
from spherepde.kernels import numba_available
from spherepde.tokens import attention_field, initial_tokens


def velocity_row_loop(x, beta, Q, K, V, normalized):
    """ẋ_i = P_{x_i} Σ_j A_ij V x_j, one token i at a time (numpy over j)."""
    n = len(x)
    keys, values = x @ K.T, x @ V.T
    v = np.empty_like(x)
    for i in range(n):
        w = np.exp(beta * (keys @ (Q @ x[i])))
        u = (w @ values) / (w.sum() if normalized else n)
        v[i] = u - (u @ x[i]) * x[i]
    return v


def velocity_double_loop(x, beta, Q, K, V, normalized):
    """The token velocity as written: for every i, for every j, e^{β⟨Qx_i,Kx_j⟩} V x_j (no stabilization)."""
    n, d = x.shape
    v = np.empty_like(x)
    for i in range(n):
        query = Q @ x[i]
        numerator, denominator = np.zeros(d), 0.0
        for j in range(n):
            w = np.exp(beta * np.dot(query, K @ x[j]))
            numerator += w * (V @ x[j])
            denominator += w
        u = numerator / (denominator if normalized else n)
        v[i] = u - np.dot(u, x[i]) * x[i]
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
    """Best wall time of each call over `repeats` rounds, the calls interleaved in every round."""
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
    parser.add_argument("--start-n", type=int, default=250)
    parser.add_argument("--max-n", type=int, default=1_000_000)
    parser.add_argument("--max-direct-n", type=int, default=32000, help="largest n for the O(n²) package backends")
    parser.add_argument("--max-matrix-n", type=int, default=8000, help="largest n for the n×n matrix")
    parser.add_argument("--max-double-n", type=int, default=500, help="largest n for the double loop")
    parser.add_argument("--beta", type=float, default=9.0)
    parser.add_argument("--model", default="SA", choices=["SA", "USA"])
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--matrices", default="identity", choices=["identity", "random"])
    args = parser.parse_args()
    d, beta, normalized = args.d, args.beta, args.model == "SA"
    if args.matrices == "identity":
        Q = K = V = np.eye(d)
    else:  # entries N(0, 1/d): ⟨Qx, Ky⟩ = O(1)
        Q, K, V = np.random.default_rng(0).standard_normal((3, d, d)) / np.sqrt(d)
    fields = {}
    if args.matrices == "identity" and d in (2, 3):
        spectral = attention_field(beta, args.model, d, Q, K, V, backend="spectral")
        fields["spectral"] = lambda y: spectral(_normalize(y))
    if numba_available():
        compiled = attention_field(beta, args.model, d, Q, K, V, backend="numba")
        fields["numba"] = lambda y: compiled(_normalize(y))
    blocked = attention_field(beta, args.model, d, Q, K, V, backend="numpy")
    fields["numpy"] = lambda y: blocked(_normalize(y))
    fields["row loop"] = lambda y: velocity_row_loop(y, beta, Q, K, V, normalized)
    fields["matrix"] = lambda y: velocity_matrix(y, beta, Q, K, V, normalized)
    fields["double loop"] = lambda y: velocity_double_loop(y, beta, Q, K, V, normalized)
    base = "numba" if numba_available() else "numpy"  # the fastest direct backend
    print(f"# {cpu_name()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}, numba {'yes' if numba_available() else 'not installed'}")
    print(f"# {args.model}, beta = {beta}, d = {d}, {args.matrices} Q, K, V: seconds per RK4 step "
          f"(4 velocity evaluations); ratios are times over the {base} time")
    names = list(fields)
    print(f"{'n':>6} " + " ".join(f"{name + ' s':>13}" for name in names) + " "
          + " ".join(f"{name + '/' + base:>18}" for name in names if name != base)
          + f" {base + ' ns/pair':>16} {'numpy ns/pair':>13} {'MB numpy':>8} {'MB matrix':>9} {'MB spectral':>11} {'max |diff|':>10}")
    n = args.start_n
    while n <= args.max_n:
        x = initial_tokens("uniform", n, d, seed=0)
        h = 1e-3
        limits = {"double loop": args.max_double_n, "matrix": args.max_matrix_n, "numba": args.max_direct_n,
                  "numpy": args.max_direct_n, "row loop": args.max_direct_n}
        timed = {name: f for name, f in fields.items() if n <= limits.get(name, n)}
        times = best_seconds({name: (lambda f=f: rk4_step(f, x, h)) for name, f in timed.items()},
                             repeats=3 if n <= args.max_direct_n else 1)
        if base in times:
            last_direct = (n, times[base], times["numpy"])
            reference = fields[base](x)
            diff = max((np.abs(f(x) - reference).max() for name, f in timed.items() if name != base), default=0.0)
        else:  # beyond --max-direct-n: the direct backends' n² extrapolation, marked with *
            diff = np.nan
        n0, base_time, numpy_time = last_direct
        base_time, numpy_time = (base_time * (n / n0) ** 2, numpy_time * (n / n0) ** 2)
        mark = "" if base in times else "*"
        memory = {name: peak_megabytes(lambda f=fields[name]: f(x)) if name in timed else np.nan
                  for name in ("numpy", "matrix", "spectral")}
        cells = [f"{times[name]:>13.4f}" if name in times else f"{'—':>13}" for name in names]
        ratios = [f"{times[name] / base_time:>17.3g}{mark}" if name in times else f"{'—':>18}"
                  for name in names if name != base]
        print(f"{n:>7} " + " ".join(cells) + " " + " ".join(ratios)
              + f" {base_time / (4 * n * n) * 1e9:>15.2f}{mark} {numpy_time / (4 * n * n) * 1e9:>13.2f}"
              + f" {memory['numpy']:>8.1f} {memory['matrix']:>9.1f} {memory['spectral']:>11.1f} {diff:>10.1e}", flush=True)
        n *= 2
    print(f"# * extrapolated like n² from n = {last_direct[0]} (the direct backends are not run beyond --max-direct-n)")
    print(f"# peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB")
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
