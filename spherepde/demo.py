"""The main job: SA at β = 9 on S² from a seeded random perturbation of the uniform state.

Runs through the linear phase (the degree-4 band wins, docs/mathematics.md) into the
formation of clusters, writes the run file and figures, and prints a summary
comparing the run with linear theory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import compare, config, io, linear, plot, solver
from .errors import NumericalFailure

CONFIG = """\
[model]
name = "SA"
beta = 9.0

[domain]
kind = "sphere"
lmax = 127

[initial]
kind = "perturbed_uniform"
amplitude = 1e-3
seed = 0

[time]
t_end = 16.0
save_every = 0.5
rtol = 1e-8
"""


def summary(path) -> str:
    """A one-screen text summary of a run next to the linear prediction."""
    run = io.read_run(path)
    cfg, t, diag = config.loads(run["config_text"]), run["t"], run["diagnostics"]
    model, domain = cfg.model, cfg.domain
    theory = linear.report(model.beta, domain.d, model.name)
    lines = [
        f"run {path}: {model.name} beta = {model.beta:g} on the {domain.kind}, lmax = {domain.lmax}, "
        f"t = 0..{t[-1]:g} ({len(t)} snapshots, status {run['status']})",
        f"linear theory: winning degree l* = {theory['dominant_degree']} at rate {theory['max_growth_rate']:.6g}, "
        f"selectivity lambda_l*/lambda_next = {theory['selectivity']:.4f}",
        "",
    ]
    try:
        result = compare.compare_run(path)
        lines.append(compare.format_comparison(result))
    except Exception as exc:  # the comparison explains itself; the summary still prints
        lines.append(f"comparison with linear theory not available: {exc}")
    energy = diag["energy"]
    lines += [
        "",
        "dominant degree over time: " + " ".join(f"{x:g}:{l}" for x, l in zip(t[::4], diag["dominant_degree"][::4])),
        f"mass drift max |m(t) - m(0)| = {np.max(np.abs(diag['mass'] - diag['mass'][0])):.2e}",
        f"energy E_beta {energy[0]:.6g} -> {energy[-1]:.6g} "
        f"({'nondecreasing' if np.all(np.diff(energy) >= -1e-12 * np.abs(energy[:-1])) else 'DECREASED somewhere'})",
        f"density range at the end: {diag['min_density'][-1]:.3g} .. {diag['max_density'][-1]:.3g} "
        f"(resolution indicator {diag['tail_energy'][-1]:.2g})",
    ]
    return "\n".join(lines)


def main(out: Path):
    """Run the demo into the directory ``out`` and print its summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo.toml").write_text(CONFIG)
    run_file = out / "demo.h5"
    try:
        solver.run(config.loads(CONFIG), run_file, progress=None)
        failure = None
    except NumericalFailure as exc:  # the file keeps every snapshot so far: show them, then fail
        failure = exc
    figures = plot.plot_run(run_file, out)
    print(summary(run_file))
    print("\nfigures: " + ", ".join(str(f) for f in figures))
    if failure is not None:
        raise failure
