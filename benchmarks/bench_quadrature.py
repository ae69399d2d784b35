"""Cost of the quadrature path for general Q, K, V against the exponentials it needs.

The quadrature velocity needs, per evaluation, the N² exponentials e^{β⟨Bᵀx_i, y_j⟩ − s_i} and two
matrix products (exponents: N×(d+1) by (d+1)×N; sums: N×N by N×(d+1)). Measured side by side in one
run, for lmax = 15, 31, 63 on S² (3/2-rule Gauss grid, N nodes):

- quadrature RHS: one right-hand side with a general B (SA, β = 4), blocked as in the package;
- exp floor: N² evaluations of np.exp on a cache-resident block of 2¹⁶ doubles, the cost no
  numpy implementation avoids;
- unblocked: the same two products and exp on one R×N array, scaled by N/R (R = min(N, 4096)
  rows; the full N×N array at lmax 63 would take 2.7 GB): what a plain implementation costs;
- Funk–Hecke RHS: one right-hand side with B = bI (SA, β = 4), which needs no quadrature.

Ratios quadrature / exp floor, quadrature / unblocked and quadrature / Funk–Hecke.

Usage: python benchmarks/bench_quadrature.py [--repeat N]
"""
import argparse

import numpy as np
from timing import end_line, machine_line, median_time

from spherepde.dynamics import ContinuityEquation
from spherepde.model import AttentionModel
from spherepde.manifolds import Sphere



def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ticks = machine_line(f", numpy {np.__version__}")
    print(f"{'lmax':>5} {'N':>7} {'quadrature':>12} {'exp floor':>10} {'unblocked':>10} {'Funk-Hecke':>11} "
          f"{'quad/exp':>9} {'quad/unblk':>10} {'quad/FH':>8}")
    rng = np.random.default_rng(0)
    Q, K = np.linalg.qr(rng.standard_normal((3, 3)))[0] @ np.diag([1.2, 1.0, 0.8]), np.eye(3)
    cached = -rng.random(2**16)
    out = np.empty_like(cached)
    per_exp = median_time(lambda: np.exp(cached, out=out), args.repeat) / cached.size
    for lmax in (15, 31, 63):
        S = Sphere(lmax)
        a = np.zeros(S.real_size)
        a[0], a[1:16] = 1.0, 0.02 * rng.standard_normal(15)
        c = S.from_real_coefficients(a)
        general = ContinuityEquation(S, AttentionModel("SA", 4.0, Q=Q, K=K))
        zonal = ContinuityEquation(S, AttentionModel("SA", 4.0, Q=0.9 * np.eye(3)))
        n = S.weights.size
        rows = min(n, 4096)
        exponents, sources = rng.standard_normal((rows, 4)), rng.standard_normal((4, n))
        block, values, sums = np.empty((rows, n)), rng.standard_normal((n, 4)), np.empty((rows, 4))

        def unblocked():
            np.matmul(exponents, sources, out=block)
            np.exp(block, out=block)
            np.matmul(block, values, out=sums)

        t_quad = median_time(lambda: general(0.0, c), args.repeat)
        t_exp = per_exp * n * n
        t_plain = median_time(unblocked, args.repeat) * n / rows
        t_zonal = median_time(lambda: zonal(0.0, c), args.repeat)
        print(f"{lmax:>5} {n:>7} {t_quad * 1e3:>9.2f} ms {t_exp * 1e3:>7.2f} ms {t_plain * 1e3:>7.2f} ms {t_zonal * 1e3:>8.3f} ms "
              f"{t_quad / t_exp:>9.2f} {t_quad / t_plain:>10.2f} {t_quad / t_zonal:>8.0f}")
    end_line(ticks)


if __name__ == "__main__":
    main()
