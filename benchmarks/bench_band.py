"""The kernel's band on a large Gauss grid: ducc0's Legendre sums + one inverse FFT per latitude (spherepde's
``Sphere.truncated`` from BAND_POINTS grid points on) against SHTns' transform truncated at the same degree.

For lmax = 63, 127, 255 (β = 9, one thread unless ``--threads`` says otherwise), on the grid the run uses (the 3/2
grid for SA, the smallest exact grid for USA), in interleaved rounds (the least time of each): the band's synthesis
and gradient both ways, and one whole right-hand side with either band, as a multiple of one SHTns analysis +
synthesis pair at lmax; then where the time of a right-hand side with the run's own band goes, in pairs: the
synthesis of ρ, the kernel's band fields (the gradient, and K̃∗ρ for SA), the analysis of the flux ρX (SHTns' vector
analysis) and the rest (the pointwise products and quotients, the copies): the first three are the transforms the
scheme cannot do without.

With ``--threads 0`` (all cores) the spheres run SHTns on them and SHTns' band does too, while ducc0's stays on one
thread (``_Band``): the comparison behind spherepde's choice of SHTns' band for a sphere on several threads.

    .venv/bin/python benchmarks/bench_band.py [--rounds 5] [--threads 1]
"""
import argparse

import numpy as np
from bench_run import configuration
from timing import best_time, end_line, machine_line, transform_pair

from spherepde import solver
from spherepde.manifolds.sphere import Sphere, _Band


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="SHTns threads, 0: all cores (default 1)")
    args = parser.parse_args()
    ticks = machine_line(f", SHTns threads = {args.threads}")
    print(f"{'lmax':>5} {'model':>5} {'grid':>9} {'L':>3} {'synth ducc0/SHTns':>18} {'grad ducc0/SHTns':>17}"
          f" {'RHS/pair SHTns band':>20} {'RHS/pair ducc0 band':>20} {'parts: rho':>11} {'band':>5} {'flux':>5} {'rest':>5}")
    for lmax in (63, 127, 255):
        for name in ("SA", "USA"):
            sim = solver.Simulation(configuration(name, lmax, steps=1, threads=args.threads))
            equation, c = sim.equation, sim.initial_state()
            attention, sphere = equation.attention, equation.manifold
            L, shape = attention.band.lmax, sphere.grid_shape
            bands = {"SHTns": Sphere(L, sphere.threads, shape), "ducc0": _Band(L, 1, shape)}
            p = c[attention.select] * attention.potential

            def rhs(band):
                attention.band = band
                return equation(0.0, c)

            own = attention.band
            X = tuple(x.copy() for x in equation.velocity(c)[1])
            timers = {"pair": transform_pair(sphere, c),
                      "rho": lambda: sphere.synthesis(c), "flux": lambda: sphere.divergence(X),
                      "band": lambda: (own.gradient(p), own.synthesis(p) if name == "SA" else None),
                      "rhs": lambda: rhs(own)}
            for label, band in bands.items():
                timers[f"synth {label}"] = lambda band=band: band.synthesis(p)
                timers[f"grad {label}"] = lambda band=band: band.gradient(p)
                timers[f"rhs {label}"] = lambda band=band: rhs(band)
            best = dict.fromkeys(timers, np.inf)
            for _ in range(args.rounds):  # interleaved: a change of load hits all alike
                for key, fn in timers.items():
                    best[key] = min(best[key], best_time(fn, 5))
            print(f"{lmax:>5} {name:>5} {shape[0]:>4}x{shape[1]:<4} {L:>3} {best['synth ducc0'] / best['synth SHTns']:>18.2f}"
                  f" {best['grad ducc0'] / best['grad SHTns']:>17.2f} {best['rhs SHTns'] / best['pair']:>20.2f}"
                  f" {best['rhs ducc0'] / best['pair']:>20.2f} {best['rho'] / best['pair']:>11.2f} {best['band'] / best['pair']:>5.2f}"
                  f" {best['flux'] / best['pair']:>5.2f} {(best['rhs'] - best['rho'] - best['band'] - best['flux']) / best['pair']:>5.2f}",
                  flush=True)
    end_line(ticks)


if __name__ == "__main__":
    main()
