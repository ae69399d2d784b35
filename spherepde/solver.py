"""The run loop: integrate from the initial state to t_end, saving snapshots at the save times,
for the PDE (:class:`Simulation`, state: spectral coefficients of ρ) and for the token system
(:class:`spherepde.tokens.run.TokenSimulation`, state: the n tokens), through one loop
(:func:`_record`) into one of two sinks: a run file (:class:`spherepde.io.RunFile`) or memory
(:class:`spherepde.io.MemoryRun`).

PDE runs: after every accepted step the resolution indicator (``tail_energy``, see
:mod:`spherepde.diagnostics`) is checked; when it exceeds ``[numerics] max_tail_energy`` the run
stops with :class:`NumericalFailure`. Snapshots, diagnostics and a checkpoint are written and
flushed at every save time, and a checkpoint also every ``[numerics] checkpoint_seconds`` of
wall-clock time in between; on a failure or an interruption the last good state is
checkpointed, so ``--resume`` continues where the run stopped.
"""
from __future__ import annotations

import sys
import time as clock
from pathlib import Path
from typing import Any

import numpy as np

from . import config as config_mod
from .config import RunConfig, TokenConfig
from .diagnostics import snapshot, tail_energy
from .dynamics import ContinuityEquation
from .errors import NumericalFailure
from .initial import initial_coefficients
from .integrate import SCHEMES, DeviationNorm, Stepper
from .io import MemoryRun, RunFile, check_writable
from .manifolds import manifold_from_config
from .tokens.run import TokenSimulation


class Simulation:
    """A resolved PDE configuration turned into manifold, model, equation and stepper.

    With :class:`~spherepde.tokens.run.TokenSimulation` it shares the interface `_record` drives:
    times, stepper, initial_state, start, step, diagnostics, fields, saved / restored (the
    checkpointed state), layout (fixed groups and attributes of the run file) and describe (a
    progress line).
    """

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.manifold = manifold_from_config(cfg.domain, cfg.numerics.threads)
        self.kind = self.manifold.kind
        self.model = cfg.attention()
        self.equation = ContinuityEquation(self.manifold, self.model)
        self.modes = getattr(cfg.initial, "modes", None)
        self.times = cfg.time.save_times()
        self.checkpoint_seconds = cfg.numerics.checkpoint_seconds
        tcfg = cfg.time
        scheme = SCHEMES[tcfg.method]
        self.stepper = Stepper(scheme, rtol=tcfg.rtol, dt=tcfg.dt, norm=DeviationNorm(tcfg.rtol),
                               max_step=self.equation.max_step)
        self.guard: ResolutionGuard | None = None

    def initial_state(self) -> np.ndarray:
        return initial_coefficients(self.cfg.initial, self.manifold)

    def start(self, first: dict):
        """Watch the resolution from now on, relative to the diagnostics ``first`` at t = 0."""
        self.guard = ResolutionGuard(self.cfg.numerics, self.manifold, first["tail_energy"])

    def step(self, t: float, c: np.ndarray, t_stop: float) -> tuple[float, np.ndarray]:
        t_new, c_new = self.stepper.step(self.equation, t, c, t_stop)
        assert self.guard is not None, "start() first"
        self.guard.check(t_new, c_new, self.equation.density_range())
        return t_new, c_new

    def diagnostics(self, c: np.ndarray) -> dict:
        diag = snapshot(self.equation, c)
        if self.modes:
            a = self.manifold.real_coefficients(c)
            diag["modes"] = np.array([a[self.manifold.real_index(l, m)] for l, m in self.modes])
        return diag

    def fields(self, c: np.ndarray) -> dict:
        return {"density": self.manifold.synthesis(c)}

    def saved(self, c: np.ndarray) -> dict:
        """The coefficients as real numbers: (…, 2) real and imaginary parts, (…, 1) for real layouts."""
        return {"coefficients": np.stack([c.real, c.imag], axis=-1) if np.iscomplexobj(c) else c[..., None]}

    def restored(self, saved: dict) -> np.ndarray:
        parts = saved["coefficients"]
        return parts[..., 0] + 1j * parts[..., 1] if parts.shape[-1] == 2 else parts[..., 0].copy()

    def layout(self) -> dict:
        M = self.manifold
        return {"attrs": {"manifold": M.kind}, "fixed": {"grid": {**M.grid, "weights": M.weights}}}

    @staticmethod
    def describe(diag: dict) -> str:
        return f"dominant l={diag['dominant_degree']} min rho={diag['min_density']:.3g} tail={diag['tail_energy']:.2g}"


class ResolutionGuard:
    """Stops a run whose solution is no longer resolved by the truncation.

    Two tests after every accepted step: the tail energy exceeds
    max(max_tail_energy, 10 × its value at t = 0) (a band-limited ρ₀ is represented
    exactly whatever its spectrum, so only what the dynamics adds counts), or the
    density undershoots: min ρ < -max_negative_density · max ρ on the grid.
    """

    def __init__(self, numerics, manifold, initial_tail: float):
        self.manifold = manifold
        self.limit = max(numerics.max_tail_energy, 10.0 * initial_tail)
        self.negative = numerics.max_negative_density

    def check(self, t: float, c: np.ndarray, density_range: tuple[float, float]):
        advice = f"rerun with a larger lmax than {self.manifold.lmax}"
        tail = tail_energy(self.manifold.degree_energy(c))
        if tail > self.limit:
            raise NumericalFailure(
                f"the solution outgrew the resolution at t = {t:.6g}: the top 10% of degrees carry "
                f"{tail:.2g} of its energy (limit {self.limit:.2g}); {advice}"
            )
        low, high = density_range
        if low < -self.negative * high:
            raise NumericalFailure(
                f"the solution outgrew the resolution at t = {t:.6g}: the density undershoots to {low:.3g} "
                f"(max {high:.3g}, limit max_negative_density = {self.negative:g} of the max); {advice}"
            )


class _Progress:
    """mode None: a tqdm bar on a terminal, otherwise one log line per snapshot on stderr;
    True: always the bar; False: silent. ``describe(diagnostics)`` is the line's tail."""

    def __init__(self, t0: float, t_end: float, mode: bool | None, describe):
        self.t_end = t_end
        self.t = t0
        self.describe = describe
        self.silent = mode is False
        self.bar = None
        if mode or (mode is None and sys.stderr.isatty()):
            from tqdm import tqdm

            self.bar = tqdm(total=t_end, initial=t0, unit="t", bar_format="{l_bar}{bar}| t={n:.3g}/{total:.3g} [{elapsed}<{remaining}{postfix}]")

    def update(self, t: float, diag: dict, steps: int):
        info = self.describe(diag)
        if self.bar is not None:
            self.bar.update(t - self.t)
            self.bar.set_postfix_str(info, refresh=False)
        elif not self.silent:
            print(f"t = {t:.6g} / {self.t_end:g}  steps {steps}  {info}", file=sys.stderr, flush=True)
        self.t = t

    def close(self):
        if self.bar is not None:
            self.bar.close()


def simulation(cfg: RunConfig | TokenConfig):
    """The simulation a resolved configuration describes: the PDE or the token system."""
    return TokenSimulation(cfg) if isinstance(cfg, TokenConfig) else Simulation(cfg)


def run(cfg: RunConfig | TokenConfig, out: str | Path, resume: bool = False, progress: bool | None = False) -> dict:
    """Run the resolved configuration ``cfg`` (a PDE or token run, see :mod:`spherepde.config`) into
    the file ``out``.

    ``progress``: None shows a bar on a terminal and a log line per snapshot otherwise, True
    always the bar, False nothing. Returns a summary (status, final time, snapshots, steps,
    wall time). Raises InputError before anything is written when the input is invalid,
    NumericalFailure (after saving) when the solution cannot be continued faithfully.
    """
    sim = simulation(cfg)
    text = config_mod.dumps(cfg)
    if resume:
        sink = RunFile.reopen(out, text, len(sim.times))
    else:
        check_writable(out)
        sink = RunFile(out)
    return _record(sim, text, sink, resume, progress)


def run_particles(cfg: TokenConfig, out: str | Path, resume: bool = False, progress: bool | None = False) -> dict:
    """:func:`run` for a token configuration (kept for symmetry with ``spherepde particles``)."""
    return run(cfg, out, resume, progress)


def simulate(cfg: RunConfig | TokenConfig, progress: bool | None = False) -> dict:
    """Run ``cfg`` in memory: the mapping :func:`spherepde.io.read_run` gives for a run file, plus
    every per-snapshot field under ``fields`` and the summary under ``summary``. A numerical
    failure still returns what was computed, with status "failed" and the reason in ``message``."""
    sink = MemoryRun()
    try:
        summary = _record(simulation(cfg), config_mod.dumps(cfg), sink, False, progress)
    except NumericalFailure:
        summary = None
    return {**sink.result(), "summary": summary}


def _record(sim, text: str, sink: Any, resume: bool, progress: bool | None) -> dict:
    """Step ``sim`` through its save times, writing snapshots, diagnostics and checkpoints to ``sink``.

    A checkpoint follows every snapshot, and every ``sim.checkpoint_seconds`` of wall-clock
    time in between; on a numerical failure or an interruption the last good state is
    checkpointed and the sink records why the run stopped.
    """
    start = clock.perf_counter()
    if resume:
        t, saved, stepper_state = sink.read_checkpoint()
        y = sim.restored(saved)
        sim.stepper.restore(stepper_state)
        sim.start(sink.initial_diagnostics())
    else:
        t, y = 0.0, sim.initial_state()
        first = sim.diagnostics(y)
        sim.start(first)
        sink.create(text, len(sim.times), sim.fields(y), first, sim.saved(y), sim.stepper.state().keys(), **sim.layout())
    bar = _Progress(t, sim.times[-1], progress, sim.describe)
    steps = 0
    last_checkpoint = clock.monotonic()
    try:
        for target in sim.times[sink.n_saved:]:
            while t < target:
                t, y = sim.step(t, y, target)
                steps += 1
                if clock.monotonic() - last_checkpoint > sim.checkpoint_seconds:
                    sink.checkpoint(t, sim.saved(y), sim.stepper.state())
                    last_checkpoint = clock.monotonic()
            diag = sim.diagnostics(y)
            sink.append(t, sim.fields(y), diag)
            sink.checkpoint(t, sim.saved(y), sim.stepper.state())
            last_checkpoint = clock.monotonic()
            bar.update(t, diag, steps)
    except NumericalFailure as exc:
        sink.checkpoint(t, sim.saved(y), sim.stepper.state())
        sink.finish("failed", str(exc))
        raise
    except KeyboardInterrupt:
        sink.checkpoint(t, sim.saved(y), sim.stepper.state())
        sink.finish("interrupted", f"interrupted at t = {t:.6g}; continue with --resume")
        raise
    else:
        sink.finish("finished")
    finally:
        bar.close()
    return {
        "status": "finished",
        "t": t,
        "snapshots": len(sim.times),
        "steps": steps,
        "wall_time": clock.perf_counter() - start,
    }
