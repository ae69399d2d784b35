"""Cost of one right-hand side on S² relative to the transforms it is made of.

For lmax = 63, 127, 255 (Gauss grid of the 3/2 rule, one SHTns thread), measured
side by side in one run: the time of one SHTns scalar analysis + synthesis, and of
one RHS evaluation -div(ρX[ρ]) for SA and USA. The ratio RHS / (analysis + synthesis)
is the figure of merit (target ≤ 4): an SA RHS needs one 3-component synthesis (ρ and
∇ of the potential), one scalar synthesis (K∗ρ) and one vector analysis.

Usage: python benchmarks/bench_rhs.py [--repeat N]
"""
import argparse
import platform

import numpy as np
from timing import median_time

from spherepde.dynamics import ContinuityEquation
from spherepde.model import AttentionModel
from spherepde.manifolds import Sphere



def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, one SHTns thread")
    print(f"{'lmax':>5} {'grid':>10} {'analys+synth':>13} {'RHS SA':>10} {'RHS USA':>10} {'SA ratio':>9} {'USA ratio':>10}")
    for lmax in (63, 127, 255):
        S = Sphere(lmax)
        rng = np.random.default_rng(0)
        a = np.zeros(S.real_size)
        a[1:] = rng.standard_normal(S.real_size - 1) * 1e-3 / np.sqrt(S.real_size)
        a[0] = 1.0
        c = S.from_real_coefficients(a)
        f = S.synthesis(c)
        pair = median_time(lambda: (S.analysis(f), S.synthesis(c)), args.repeat)
        times = {}
        for name in ("SA", "USA"):
            F = ContinuityEquation(S, AttentionModel(name, 9.0))
            times[name] = median_time(lambda: F(0.0, c), args.repeat)
        grid = "x".join(map(str, S.grid_shape))
        print(f"{lmax:>5} {grid:>10} {pair * 1e3:>10.3f} ms {times['SA'] * 1e3:>7.3f} ms {times['USA'] * 1e3:>7.3f} ms "
              f"{times['SA'] / pair:>9.2f} {times['USA'] / pair:>10.2f}")


if __name__ == "__main__":
    main()
