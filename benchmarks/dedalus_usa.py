"""The USA equation ∂ₜρ = −div(ρ ∇φ), φ = Σ_l μ_l ρ_l (the kernel's multipliers, one per degree l), in Dedalus 3.

Run by benchmarks/bench_dedalus.py under a Python that has Dedalus (it imports nothing of spherepde):

    python benchmarks/dedalus_usa.py time  LMAX MULTIPLIERS.npy STEPS   → {"per_rhs": seconds}
    python benchmarks/dedalus_usa.py check LMAX MULTIPLIERS.npy         → the RHS of ρ = 1 + x/10 + xy/5 + z²/10
                                                                            on the Dedalus grid (physics check)

SphereBasis with Lmax = LMAX (2(LMAX+1) × (LMAX+1) grid), dealias 3/2, RK443 (4 stages: per RHS = step / 4),
one thread. φ is a GeneralFunction multiplying ρ's coefficients per degree (Dedalus has no zonal
convolution operator; the multiplication is a few microseconds beside the transforms).
"""
import json
import logging
import sys
import time

import numpy as np

import dedalus.public as d3

logging.getLogger().setLevel(logging.ERROR)


def problem(lmax: int, multipliers: np.ndarray):
    coords = d3.S2Coordinates("phi", "theta")
    dist = d3.Distributor(coords, dtype=np.float64)
    basis = d3.SphereBasis(coords, (2 * (lmax + 1), lmax + 1), radius=1, dealias=3 / 2, dtype=np.float64)
    rho = dist.Field(name="rho", bases=basis)
    by_coefficient = np.zeros(rho["c"].shape)
    for ell, m_slice, ell_slice in basis.ell_maps(dist):
        by_coefficient[m_slice, ell_slice] = multipliers[ell]

    def potential(f):
        f.change_layout("c")
        return by_coefficient * f.data

    phi = d3.GeneralFunction(dist, rho.domain, (), np.float64, "c", potential, args=[rho])
    ivp = d3.IVP([rho], namespace={"rho": rho, "phi": phi, "div": d3.div, "grad": d3.grad, "dt": d3.dt})
    ivp.add_equation("dt(rho) = -div(rho*grad(phi))")
    return ivp, rho, dist, basis, -d3.div(rho * d3.grad(phi))


def main():
    mode, lmax, multipliers = sys.argv[1], int(sys.argv[2]), np.load(sys.argv[3])
    ivp, rho, dist, basis, rhs = problem(lmax, multipliers)
    if mode == "check":
        phi, theta = dist.local_grids(basis)
        x, y, z = np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta) + 0 * phi
        rho["g"] = 1 + x / 10 + x * y / 5 + z * z / 10
        value = rhs.evaluate()
        value.change_scales(1)
        print(json.dumps({"theta": np.broadcast_to(theta, value["g"].shape).ravel().tolist(),
                          "phi": np.broadcast_to(phi, value["g"].shape).ravel().tolist(), "rhs": value["g"].ravel().tolist()}))
        return
    steps = int(sys.argv[4])
    solver = ivp.build_solver(d3.RK443)
    rho["g"] = 1 + 1e-3 * np.random.default_rng(0).standard_normal(rho["g"].shape)
    for _ in range(3):  # planning and first-call costs out of the timing
        solver.step(1e-6)
    start = time.perf_counter()
    for _ in range(steps):
        solver.step(1e-6)
    print(json.dumps({"per_rhs": (time.perf_counter() - start) / (4 * steps)}))


if __name__ == "__main__":
    main()
