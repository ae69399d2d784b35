"""The main job: the whole life of the mean field, SA at β = 9 from a seeded perturbation of the uniform state,
on S² (lmax 127) and on S¹.

Each run goes through the linear phase (on S² the degree-4 band wins, docs/mathematics.md), the formation of
clusters (where it continues as weighted points), metastable plateaus ended by pairwise merges, to a single
cluster. The demo writes both run files and their figures and prints a summary: predicted and measured growth
rates, the cluster count at formation, the merge times and the contraction rate inside the clusters (the rate
of the final collapse) against its prediction.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import compare, config, io, life, linear, plot, solver
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
t_end = 1e9
save_every = 1.0
save_log_from = 40.0
save_per_decade = 12
rtol = 1e-8
"""

#: The same life on the circle (2·lmax + 1 Fourier modes).
CIRCLE = CONFIG.replace('kind = "sphere"', 'kind = "circle"').replace("lmax = 127", "lmax = 255")


def _times(values) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def summary(path) -> str:
    """A one-screen account of a whole-life run: linear phase against theory, then formation, plateaus,
    merges and the contraction inside the clusters."""
    run = io.read_run(path)
    cfg, t, diag = config.loads(run["config_text"]), run["t"], run["diagnostics"]
    model, domain = cfg.model, cfg.domain
    lines = [f"run {path}: {model.name} beta = {model.beta:g} on the {domain.kind}, lmax = {domain.lmax}, "
             f"t = 0..{t[-1]:g} ({len(t)} snapshots, status {run['status']})"]
    theory = linear.report(model.beta, domain.d, model.name)
    lines.append(f"linear theory: winning degree l* = {theory['dominant_degree']} at rate {theory['max_growth_rate']:.6g}, "
                 f"selectivity lambda_l*/lambda_next = {theory['selectivity']:.4f}")
    try:
        lines.append(compare.format_comparison(compare.compare_record(run, str(path))))
    except Exception as exc:  # the comparison explains itself; the summary still prints
        lines.append(f"comparison with linear theory not available: {exc}")
    acts = life.read(run)
    if acts.onset is not None:
        lines.append(f"clusters appear at t = {acts.onset:.3g}")
    if acts.switch is not None:
        at = int(np.argmax(t == acts.switch))
        lines.append(f"the run continues as {diag['points_active'][at]} weighted points from t = {acts.switch:.3g} "
                     f"(clipped mass {diag['clipped_mass'][-1]:.1e}, W2 moved by merges <= {diag['merged_w2'][-1]:.1e})")
    if acts.plateaus:
        first = acts.plateaus[0]
        lines.append(f"cluster count at formation: {first.clusters} (a metastable plateau from t = {first.start:.3g})")
        lines.append("plateaus (clusters: from .. to): " + "; ".join(
            f"{p.clusters}: {p.start:.3g} .. {p.end:.3g}" for p in acts.plateaus))
    if acts.merges:
        lines.append(f"merges (located to the snapshot spacing): t = {_times(m.t for m in acts.merges)} ("
                     + ", ".join(f"{m.before}->{m.after}" for m in acts.merges) + ")")
    rate = life.measured_contraction(run, path)
    if rate is not None:
        lines.append(f"contraction inside the clusters (the rate of the final collapse): spread ~ e^(-{rate.rate:.4f} t) "
                     f"over t = {rate.t0:.3g}..{rate.t1:.3g} ({rate.snapshots} snapshots); predicted 2c = {rate.predicted:g}")
    energy = diag["energy"]
    monotone = np.all(np.diff(energy) >= -1e-12 * np.abs(energy[:-1]))
    one_point = np.exp(model.beta) / (2 * model.beta)
    lines += [
        f"energy E_beta {energy[0]:.6g} -> {energy[-1]:.6g} ({'nondecreasing' if monotone else 'DECREASED somewhere'}; "
        f"one Dirac mass: e^beta/(2 beta) = {one_point:.6g})",
        f"mass drift max |m(t) - m(0)| = {np.max(np.abs(diag['mass'] - diag['mass'][0])):.2e}",
    ]
    return "\n".join(lines)


def _run(text: str, out: Path, name: str) -> tuple[Path, list[Path], NumericalFailure | None]:
    """One run into ``out/name.h5`` with its config beside it and its figures in ``out``; an earlier demo's run
    file there is replaced (any other file in the way is refused)."""
    io.output_directory(out, "the demo's runs and figures")
    run_file = out / f"{name}.h5"
    io.check_output(run_file, overwrite=True)
    (out / f"{name}.toml").write_text(text)
    try:
        solver.run(config.loads(text), run_file, progress=None, overwrite=True)
        failure = None
    except NumericalFailure as exc:  # the file keeps every snapshot so far: show them, then fail
        failure = exc
    return run_file, plot.plot_run(run_file, out), failure


def main(out: Path):
    """Run the demo into the directory ``out`` (the circle into ``out/circle``) and print its summary."""
    results = [_run(CONFIG, out, "demo"), _run(CIRCLE, out / "circle", "demo")]
    for run_file, figures, _ in results:
        print(summary(run_file))
        print("figures: " + ", ".join(str(f) for f in figures) + "\n")
    for _, _, failure in results:
        if failure is not None:
            raise failure
