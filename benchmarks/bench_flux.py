"""Three ways to the flux term of USA, -div(ρ∇φ), side by side: why spherepde analyses a vector field.

For USA with B = bI, V = vI the right-hand side is -div(ρ∇φ), φ the kernel's potential (degree ≤ L, the band).
Three exact formulations on the same grid (the smallest Gauss grid exact to 2·lmax + L), each a whole right-hand
side from the coefficients c of ρ:

- vector (spherepde): ρ by a scalar synthesis, ∇φ at the band, ρ∇φ analysed by SHTns' vector analysis and its
  spheroidal part S turned into div = -l(l+1) S;
- product rule: div(ρ∇φ) = ∇ρ·∇φ + ρΔφ, with ρ and ∇ρ from one SHTns synthesis (``SHqst_to_spat``), ∇φ and Δφ
  at the band, and one scalar analysis;
- Laplacian identity: div(ρ∇φ) = ½[Δ(ρφ) + ρΔφ − φΔρ], with ρ and Δρ by two scalar syntheses, φ and Δφ at the
  band, and two scalar analyses (ρφ, and ρΔφ − φΔρ).

For lmax = 63, 127, 255 (β = 9, one thread): the time of each in SHTns analysis + synthesis pairs on the grid (the
least of ``--rounds`` interleaved rounds), and the largest difference of the other two from spherepde's right-hand
side relative to its largest coefficient (round-off: they are the same polynomial identity on an exact grid).

    .venv/bin/python benchmarks/bench_flux.py [--rounds 5]
"""
import argparse

import numpy as np
from bench_run import configuration
from timing import best_time, end_line, machine_line, transform_pair

from spherepde import solver


def formulations(equation, c):
    """name → a function of no argument returning the right-hand side's coefficients, for the USA ``equation``."""
    attention, sphere = equation.attention, equation.manifold
    band = attention.band
    laplace_full, laplace_band = -sphere.degrees * (sphere.degrees + 1.0), -band.degrees * (band.degrees + 1.0)

    def potential():
        return c[attention.select] * attention.potential

    def product_rule():
        p = potential()
        rho, (rho_t, rho_p) = sphere.scalar_and_gradient(c, c)  # ρ and ∇ρ in one transform
        phi_t, phi_p = band.gradient(p)
        h = rho_t * phi_t
        h += rho_p * phi_p
        h += rho * band.synthesis(laplace_band * p)
        return -sphere.analysis(h)

    def laplacian_identity():
        p = potential()
        rho, laplace_rho = sphere.synthesis(c), sphere.synthesis(laplace_full * c)
        phi, laplace_phi = band.synthesis(p), band.synthesis(laplace_band * p)
        return -0.5 * (laplace_full * sphere.analysis(rho * phi) + sphere.analysis(rho * laplace_phi - phi * laplace_rho))

    return {"vector": lambda: equation(0.0, c), "product rule": product_rule, "Laplacian identity": laplacian_identity}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ticks = machine_line(", one thread, USA, beta = 9")
    names = ("vector", "product rule", "Laplacian identity")
    print(f"{'lmax':>5} {'grid':>9} {'pair ms':>8} " + " ".join(f"{name + ' (pairs)':>24}" for name in names)
          + f" {'largest difference':>19}")
    for lmax in (63, 127, 255):
        sim = solver.Simulation(configuration("USA", lmax, steps=1, threads=1))
        equation, c = sim.equation, sim.initial_state()
        sphere = equation.manifold
        if equation.attention.band is None:
            raise SystemExit(f"lmax {lmax}: the kernel's band is not truncated, the comparison does not apply")
        ways = formulations(equation, c)
        reference = ways["vector"]().copy()
        difference = max(np.max(np.abs(ways[name]() - reference)) for name in names[1:]) / np.max(np.abs(reference))
        timers = {"pair": transform_pair(sphere, c), **ways}
        best = dict.fromkeys(timers, np.inf)
        for _ in range(args.rounds):  # interleaved: a change of load hits all alike
            for key, fn in timers.items():
                best[key] = min(best[key], best_time(fn, 5))
        grid = "x".join(map(str, sphere.grid_shape))
        print(f"{lmax:>5} {grid:>9} {best['pair'] * 1e3:>8.3f} "
              + " ".join(f"{best[name] / best['pair']:>24.2f}" for name in names) + f" {difference:>19.1e}", flush=True)
    end_line(ticks)


if __name__ == "__main__":
    main()
