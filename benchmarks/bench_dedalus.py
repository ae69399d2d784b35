"""spherepde against Dedalus 3 on the same USA equation on S² (β = 9), per right-hand side, in one run.

For lmax = 63, 127, 255, one thread each, side by side:
- Dedalus: benchmarks/dedalus_usa.py (SphereBasis, dealias 3/2, RK443: a step is 4 right-hand sides);
- spherepde: whole fixed-step RK4 runs of N₁ and N₂ steps differenced (bench_run.rhs_in_run: start-up
  cancels, the per-step checks stay in), on the grid a run uses (exact to 2·lmax + L for USA);
and the ratio. First, both compute the RHS of ρ = 1 + x/10 + xy/5 + z²/10 on Dedalus' grid: they must
agree to 1e-10 of its largest value, or the timings would compare different equations.

Dedalus is never a dependency of spherepde. Install it in a venv of its own (it builds against MPI and
FFTW; on Debian, as root):

    apt-get install -y libopenmpi-dev openmpi-bin libfftw3-mpi-dev
    python3 -m venv /opt/dedalus
    /opt/dedalus/bin/pip install cython numpy
    MPI_PATH=/usr/lib/x86_64-linux-gnu/openmpi FFTW_PATH=/usr CC=mpicc /opt/dedalus/bin/pip install dedalus

then run

    .venv/bin/python benchmarks/bench_dedalus.py --dedalus-python /opt/dedalus/bin/python

(or set DEDALUS_PYTHON). Without Dedalus the script says so and exits 0.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_run import rhs_in_run
from timing import end_line, machine_line

from spherepde.dynamics import ContinuityEquation
from spherepde.manifolds import Sphere
from spherepde.model import AttentionModel

HERE = Path(__file__).parent
BETA = 9.0


def dedalus(python: str, *args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    done = subprocess.run([python, str(HERE / "dedalus_usa.py"), *map(str, args)], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"Dedalus failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def find_python(given: str | None) -> str | None:
    """The Python with Dedalus: --dedalus-python, $DEDALUS_PYTHON, or this one if it imports dedalus."""
    if given or os.environ.get("DEDALUS_PYTHON"):
        return given or os.environ["DEDALUS_PYTHON"]
    found = subprocess.run([sys.executable, "-c", "import dedalus"], capture_output=True).returncode == 0
    return sys.executable if found else None


def same_equation(python: str, multipliers_file: str, lmax: int, multipliers: np.ndarray, model) -> float:
    """Largest difference of the two right-hand sides of one smooth ρ on Dedalus' grid, relative to their largest."""
    got = dedalus(python, "check", lmax, multipliers_file)
    theta, phi, theirs = (np.array(got[k]) for k in ("theta", "phi", "rhs"))
    S = Sphere(lmax)
    x, y, z = np.moveaxis(S.points(), -1, 0)
    c = S.analysis(1 + x / 10 + x * y / 5 + z * z / 10)
    ours_c = ContinuityEquation(S, model)(0.0, c)
    points = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)
    ours = S.locate(points).synthesis(ours_c)
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dedalus-python", default=None)
    parser.add_argument("--lmax", type=int, nargs="+", default=[63, 127, 255])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    python = find_python(args.dedalus_python)
    if python is None:
        print("Dedalus is not installed: see the docstring of benchmarks/bench_dedalus.py (skipped)")
        return
    ticks = machine_line(f"; USA, beta = {BETA:g}, one thread each")
    print(f"{'lmax':>5} {'same RHS to':>12} {'Dedalus ms':>11} {'spherepde ms':>13} {'ratio':>7}")
    model = AttentionModel("USA", BETA)
    with tempfile.TemporaryDirectory() as tmp:
        for lmax in args.lmax:
            _, g, prefactor = model.multipliers(lmax)
            multipliers = prefactor * g  # φ = Σ μ_l ρ_l: X = ∇φ (V = I)
            path = f"{tmp}/multipliers{lmax}.npy"
            np.save(path, multipliers)
            agreement = same_equation(python, path, lmax, multipliers, model)
            if agreement > 1e-10:
                raise SystemExit(f"lmax {lmax}: Dedalus and spherepde differ by {agreement:.2e}: not the same equation")
            theirs = min(dedalus(python, "time", lmax, path, 10 if lmax >= 255 else 40)["per_rhs"] for _ in range(args.repeat))
            ours = rhs_in_run("USA", lmax, 1, args.repeat)
            print(f"{lmax:>5} {agreement:>12.1e} {theirs * 1e3:>11.3f} {ours * 1e3:>13.3f} {theirs / ours:>7.1f}", flush=True)
    end_line(ticks)


if __name__ == "__main__":
    main()
