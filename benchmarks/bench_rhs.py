"""Cost of one right-hand side on S² relative to the transforms it is made of.

For lmax = 63, 127, 255 (one SHTns thread), measured side by side in one run: the time of one
SHTns scalar analysis + synthesis and of one RHS evaluation -div(ρX[ρ]), for SA on the Gauss grid
of the 3/2 rule and for USA on the smallest grid exact to 2·lmax + L (the grid a run uses,
spherepde.dynamics.grid_degree). The ratio RHS / (analysis + synthesis on the same grid) is the
figure of merit: at full size an RHS is one scalar synthesis (ρ) and one vector analysis (the flux);
the kernel's fields (∇ of the potential, K∗ρ for SA) are synthesized at the kernel's band L.

Usage: python benchmarks/bench_rhs.py [--repeat N]
"""
import argparse

import numpy as np
from timing import end_line, machine_line, median_time, transform_pair

from bench_run import configuration

from spherepde import solver


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ticks = machine_line(", one SHTns thread")
    print(f"{'lmax':>5} {'model':>5} {'grid':>9} {'analys+synth':>13} {'RHS':>10} {'RHS/pair':>9}")
    for lmax in (63, 127, 255):
        for name in ("SA", "USA"):
            sim = solver.Simulation(configuration(name, lmax, 1, 1))  # the grid and equation of a run, one thread
            S, F = sim.manifold, sim.equation
            rng = np.random.default_rng(0)
            a = np.zeros(S.real_size)
            a[1:] = rng.standard_normal(S.real_size - 1) * 1e-3 / np.sqrt(S.real_size)
            a[0] = 1.0
            c = S.from_real_coefficients(a)
            pair = median_time(transform_pair(S, c), args.repeat)
            rhs = median_time(lambda: F(0.0, c), args.repeat)
            grid = "x".join(map(str, S.grid_shape))
            print(f"{lmax:>5} {name:>5} {grid:>9} {pair * 1e3:>10.3f} ms {rhs * 1e3:>7.3f} ms {rhs / pair:>9.2f}", flush=True)
    end_line(ticks)


if __name__ == "__main__":
    main()
