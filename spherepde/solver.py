"""The run loop: integrate from ρ₀ to t_end, saving snapshots at exactly k·save_every.

After every accepted step the resolution indicator (``tail_energy``, see
:mod:`spherepde.diagnostics`) is checked; when it exceeds
``[numerics] max_tail_energy`` the run stops with :class:`NumericalFailure`.
Snapshots, diagnostics and a checkpoint are written and flushed at every save
time, and a checkpoint also every ``[numerics] checkpoint_seconds`` of wall-clock
time in between; on a failure or an interruption the last good state is
checkpointed, so ``--resume`` continues where the run stopped.
"""
from __future__ import annotations

import math
import sys
import time as clock
from pathlib import Path

import numpy as np

from . import config as config_mod
from .diagnostics import snapshot, tail_energy
from .dynamics import ContinuityEquation
from .errors import InputError, NumericalFailure
from .initial import initial_coefficients
from .integrate import RK4, DormandPrince
from .io import RunFile, check_writable
from .model import AttentionModel


def discretization(kind: str, lmax: int, threads: int = 1):
    """The manifold object for ``[domain] kind``: Sphere (SHTns) or Circle (FFT)."""
    if kind == "sphere":
        from .sphere import Sphere

        return Sphere(lmax, nthreads=threads)
    if kind == "circle":
        from .circle import Circle

        return Circle(lmax)
    raise InputError(f"domain.kind = {kind!r} is not allowed: use 'sphere' or 'circle'")


def save_times(t_end: float, save_every: float) -> np.ndarray:
    """0, Δ, 2Δ, … up to t_end (computed as k·Δ, not by accumulation), with t_end last."""
    n = math.floor(t_end / save_every * (1 + 1e-12))
    times = save_every * np.arange(n + 1)
    if t_end - times[-1] > 1e-9 * save_every:
        times = np.append(times, t_end)
    else:
        times[-1] = t_end
    return times


class Simulation:
    """A resolved configuration turned into manifold, model, equation and stepper."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        domain, model = cfg["domain"], cfg["model"]
        self.manifold = discretization(domain["kind"], domain["lmax"], cfg["numerics"]["threads"])
        self.model = AttentionModel(model["name"], model["beta"], self.manifold.d)
        self.equation = ContinuityEquation(self.manifold, self.model)
        ini = cfg["initial"]
        self.modes = ini.get("modes") if ini["kind"] == "perturbed_uniform" else None
        self.times = save_times(cfg["time"]["t_end"], cfg["time"]["save_every"])

    def initial_state(self) -> np.ndarray:
        return initial_coefficients(self.cfg, self.manifold)

    def stepper(self):
        tcfg = self.cfg["time"]
        if tcfg["method"] == "rk4":
            return RK4(tcfg["dt"])
        return DormandPrince(tcfg["rtol"], max_step=self.equation.max_step)

    def diagnostics(self, c: np.ndarray) -> dict:
        diag = snapshot(self.equation, c)
        if self.modes:
            a = self.manifold.real_coefficients(c)
            diag["modes"] = np.array([a[self.manifold.real_index(l, m)] for l, m in self.modes])
        return diag


class ResolutionGuard:
    """Stops a run whose solution is no longer resolved by the truncation.

    Two tests after every accepted step: the tail energy exceeds
    max(max_tail_energy, 10 × its value at t = 0) (a band-limited ρ₀ is represented
    exactly whatever its spectrum, so only what the dynamics adds counts), or the
    density undershoots: min ρ < -max_negative_density · max ρ on the grid.
    """

    def __init__(self, numerics: dict, manifold, initial_tail: float):
        self.manifold = manifold
        self.limit = max(numerics["max_tail_energy"], 10.0 * initial_tail)
        self.negative = numerics["max_negative_density"]

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
    True: always the bar; False: silent."""

    def __init__(self, t0: float, t_end: float, mode: bool | None):
        self.t_end = t_end
        self.t = t0
        self.silent = mode is False
        self.bar = None
        if mode or (mode is None and sys.stderr.isatty()):
            from tqdm import tqdm

            self.bar = tqdm(total=t_end, initial=t0, unit="t", bar_format="{l_bar}{bar}| t={n:.3g}/{total:.3g} [{elapsed}<{remaining}{postfix}]")

    def update(self, t: float, diag: dict, steps: int):
        info = f"dominant l={diag['dominant_degree']} min rho={diag['min_density']:.3g} tail={diag['tail_energy']:.2g}"
        if self.bar is not None:
            self.bar.update(t - self.t)
            self.bar.set_postfix_str(info, refresh=False)
        elif not self.silent:
            print(f"t = {t:.6g} / {self.t_end:g}  steps {steps}  {info}", file=sys.stderr, flush=True)
        self.t = t

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run(cfg: dict, out: str | Path, resume: bool = False, progress: bool | None = False) -> dict:
    """Run the configuration ``cfg`` (resolved, see :func:`config.resolve`) into the file ``out``.

    ``progress``: None shows a bar on a terminal and a log line per snapshot otherwise, True
    always the bar, False nothing. Returns a summary (status, final time, snapshots, steps,
    wall time). Raises InputError
    before anything is written when the input is invalid, NumericalFailure (after saving)
    when the solution cannot be continued faithfully.
    """
    start = clock.perf_counter()
    text = config_mod.dumps(cfg)
    sim = Simulation(cfg)
    stepper = sim.stepper()
    if resume:
        file = RunFile.reopen(out, text, len(sim.times))
        t, c, state = file.read_checkpoint()
        stepper.restore(state)
        initial_tail = file.initial_diagnostic("tail_energy")
    else:
        check_writable(out)
        c = sim.initial_state()
        t = 0.0
        first = sim.diagnostics(c)
        file = RunFile.create(out, sim.manifold, text, len(sim.times), first, c.size, stepper.state().keys())
        initial_tail = first["tail_energy"]
    n_saved = file.n_saved
    guard = ResolutionGuard(cfg["numerics"], sim.manifold, initial_tail)
    bar = _Progress(t, sim.times[-1], progress)
    steps = 0
    interval, last_checkpoint = cfg["numerics"]["checkpoint_seconds"], clock.monotonic()
    try:
        for target in sim.times[n_saved:]:
            while t < target:
                t_new, c_new = stepper.step(sim.equation, t, c, target)
                guard.check(t_new, c_new, sim.equation.density_range())
                t, c = t_new, c_new
                steps += 1
                if clock.monotonic() - last_checkpoint > interval:
                    file.checkpoint(t, c, stepper.state())
                    last_checkpoint = clock.monotonic()
            diag = sim.diagnostics(c)
            file.append(t, sim.manifold.synthesis(c), diag)
            file.checkpoint(t, c, stepper.state())
            last_checkpoint = clock.monotonic()
            bar.update(t, diag, steps)
    except NumericalFailure as exc:
        file.checkpoint(t, c, stepper.state())
        file.finish("failed", str(exc))
        raise
    except KeyboardInterrupt:
        file.checkpoint(t, c, stepper.state())
        file.finish("interrupted", f"interrupted at t = {t:.6g}; continue with --resume")
        raise
    else:
        file.finish("finished")
    finally:
        bar.close()
    return {
        "status": "finished",
        "t": t,
        "snapshots": len(sim.times),
        "steps": steps,
        "wall_time": clock.perf_counter() - start,
    }
