"""The run loop: integrate from the initial state to t_end, saving snapshots at exactly
k·save_every, for the PDE (`run`, state: spectral coefficients of ρ) and for the token
system (`run_particles`, state: the n tokens), through one loop (`_record`) and one file
writer (:class:`spherepde.io.RunFile`).

PDE runs: after every accepted step the resolution indicator (``tail_energy``, see
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
from . import io, particles
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
    """A resolved PDE configuration turned into manifold, model, equation and stepper.

    With `TokenSimulation` it shares the interface `_record` drives: times, stepper,
    initial_state, start, step, diagnostics, fields, saved / restored (the checkpointed state),
    layout (fixed groups and attributes of the run file) and describe (a progress line).
    """

    def __init__(self, cfg: dict):
        self.cfg = cfg
        domain, model = cfg["domain"], cfg["model"]
        self.manifold = discretization(domain["kind"], domain["lmax"], cfg["numerics"]["threads"])
        self.model = AttentionModel.from_config(model, self.manifold.d)
        self.equation = ContinuityEquation(self.manifold, self.model)
        ini = cfg["initial"]
        self.modes = ini.get("modes") if ini["kind"] == "perturbed_uniform" else None
        self.times = save_times(cfg["time"]["t_end"], cfg["time"]["save_every"])
        self.checkpoint_seconds = cfg["numerics"]["checkpoint_seconds"]
        tcfg = cfg["time"]
        if tcfg["method"] == "rk4":
            self.stepper = RK4(tcfg["dt"])
        else:
            self.stepper = DormandPrince(tcfg["rtol"], max_step=self.equation.max_step)
        self.guard = None

    def initial_state(self) -> np.ndarray:
        return initial_coefficients(self.cfg, self.manifold)

    def start(self, first: dict):
        """Watch the resolution from now on, relative to the diagnostics ``first`` at t = 0."""
        self.guard = ResolutionGuard(self.cfg["numerics"], self.manifold, first["tail_energy"])

    def step(self, t: float, c: np.ndarray, t_stop: float) -> tuple[float, np.ndarray]:
        t_new, c_new = self.stepper.step(self.equation, t, c, t_stop)
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
        return {"coefficients": np.stack([c.real, c.imag], axis=-1)}

    def restored(self, saved: dict) -> np.ndarray:
        parts = saved["coefficients"]
        return parts[..., 0] + 1j * parts[..., 1]

    def layout(self) -> dict:
        M = self.manifold
        return {"attrs": {"manifold": M.kind}, "fixed": {"grid": {**M.grid, "weights": M.weights}}}

    @staticmethod
    def describe(diag: dict) -> str:
        return f"dominant l={diag['dominant_degree']} min rho={diag['min_density']:.3g} tail={diag['tail_energy']:.2g}"


class TokenSimulation:
    """A resolved token configuration (:func:`config.resolve_particles`): n tokens x_i on
    S^{d-1} under the velocity of :func:`spherepde.particles.velocity`, the same interface
    as `Simulation`."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        model, tokens, tcfg = cfg["model"], cfg["particles"], cfg["time"]
        self.matrices = {key: model.get(key) for key in ("Q", "K", "V")}
        self.field = particles.attention_field(
            model["beta"], model["name"], tokens["d"], **self.matrices, block=tokens.get("block"),
            backend=tokens["backend"],
        )
        method = "adaptive" if tcfg["method"] == "dopri5" else tcfg["method"]
        self.stepper = particles.TokenStepper(method, tcfg.get("dt"), tcfg["rtol"])
        self.times = save_times(tcfg["t_end"], tcfg["save_every"])
        self.checkpoint_seconds = cfg["numerics"]["checkpoint_seconds"]

    def initial_state(self) -> np.ndarray:
        return initial_points(self.cfg["particles"])

    def start(self, first: dict):
        pass

    def step(self, t: float, x: np.ndarray, t_stop: float) -> tuple[float, np.ndarray]:
        return self.stepper.step(self.field, t, x, t_stop)

    def diagnostics(self, x: np.ndarray) -> dict:
        """`particles.diagnostics` with the run's matrices (energy NaN unless QᵀK = V = I); the
        cluster threshold ``cluster_delta`` in use is recorded with every snapshot."""
        options = self.cfg["diagnostics"]
        return particles.diagnostics(x, self.cfg["model"]["beta"], options["lmax"], options.get("cluster_delta"),
                                     self.cfg["particles"].get("block"), **self.matrices)

    def fields(self, x: np.ndarray) -> dict:
        return {"points": x}

    def saved(self, x: np.ndarray) -> dict:
        return {"points": x}

    def restored(self, saved: dict) -> np.ndarray:
        return saved["points"]

    def layout(self) -> dict:
        return {"attrs": {"manifold": "particles", "backend": self.field.backend}}

    @staticmethod
    def describe(diag: dict) -> str:
        return f"clusters={diag['clusters']} |mean x|={diag['mean_direction']:.3g} close pairs={diag['close_pairs']:.3g}"


def initial_points(tokens: dict) -> np.ndarray:
    """The initial tokens of ``[particles]`` (see docs/config.md): uniform, lattice, points, or
    density / quantile (iid samples / quantiles of a PDE run's density)."""
    init, n, d = tokens["init"], tokens.get("n"), tokens["d"]
    if init in ("uniform", "lattice"):
        return particles.initial_tokens(init, n, d, seed=tokens["seed"])
    if init == "points":
        try:
            points = np.load(tokens["path"])
        except (OSError, ValueError) as exc:
            raise InputError(f"particles.path = {tokens['path']!r} cannot be read as a .npy array: {exc}") from None
        try:
            return particles.initial_tokens("points", n, d, points=points)
        except InputError as exc:
            raise InputError(f"particles.path = {tokens['path']!r}: {exc}") from None
    from .initial import saved_snapshot

    run, index = saved_snapshot(tokens["path"], tokens.get("time"), "particles")
    kind = run["config"]["domain"]["kind"]
    grid = (run["grid"]["theta"],) if kind == "circle" else (run["grid"]["theta"], run["grid"]["phi"])
    if len(grid) + 1 != d:
        raise InputError(f"particles.path = {tokens['path']!r} holds a {kind} run: it needs particles.d = {len(grid) + 1}, not {d}")
    density = io.read_density(tokens["path"], index)
    return particles.initial_tokens(init, n, d, seed=tokens["seed"], density=density, grid=grid)


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


def run(cfg: dict, out: str | Path, resume: bool = False, progress: bool | None = False) -> dict:
    """Run the PDE configuration ``cfg`` (resolved, see :func:`config.resolve`) into the file ``out``.

    ``progress``: None shows a bar on a terminal and a log line per snapshot otherwise, True
    always the bar, False nothing. Returns a summary (status, final time, snapshots, steps,
    wall time). Raises InputError
    before anything is written when the input is invalid, NumericalFailure (after saving)
    when the solution cannot be continued faithfully.
    """
    return _record(Simulation(cfg), config_mod.dumps(cfg), out, resume, progress)


def run_particles(cfg: dict, out: str | Path, resume: bool = False, progress: bool | None = False) -> dict:
    """Run the token configuration ``cfg`` (resolved, see :func:`config.resolve_particles`)
    into the file ``out``; arguments, summary and errors as for :func:`run`."""
    return _record(TokenSimulation(cfg), config_mod.dumps(cfg), out, resume, progress)


def _record(sim, text: str, out: str | Path, resume: bool, progress: bool | None) -> dict:
    """Step ``sim`` through its save times, writing snapshots, diagnostics and checkpoints to ``out``.

    A checkpoint follows every snapshot, and every ``sim.checkpoint_seconds`` of wall-clock
    time in between; on a numerical failure or an interruption the last good state is
    checkpointed and the file records why the run stopped.
    """
    start = clock.perf_counter()
    if resume:
        file = RunFile.reopen(out, text, len(sim.times))
        t, saved, stepper_state = file.read_checkpoint()
        y = sim.restored(saved)
        sim.stepper.restore(stepper_state)
        sim.start(file.initial_diagnostics())
    else:
        check_writable(out)
        t, y = 0.0, sim.initial_state()
        first = sim.diagnostics(y)
        sim.start(first)
        file = RunFile.create(out, text, len(sim.times), sim.fields(y), first, sim.saved(y),
                              sim.stepper.state().keys(), **sim.layout())
    bar = _Progress(t, sim.times[-1], progress, sim.describe)
    steps = 0
    last_checkpoint = clock.monotonic()
    try:
        for target in sim.times[file.n_saved:]:
            while t < target:
                t, y = sim.step(t, y, target)
                steps += 1
                if clock.monotonic() - last_checkpoint > sim.checkpoint_seconds:
                    file.checkpoint(t, sim.saved(y), sim.stepper.state())
                    last_checkpoint = clock.monotonic()
            diag = sim.diagnostics(y)
            file.append(t, sim.fields(y), diag)
            file.checkpoint(t, sim.saved(y), sim.stepper.state())
            last_checkpoint = clock.monotonic()
            bar.update(t, diag, steps)
    except NumericalFailure as exc:
        file.checkpoint(t, sim.saved(y), sim.stepper.state())
        file.finish("failed", str(exc))
        raise
    except KeyboardInterrupt:
        file.checkpoint(t, sim.saved(y), sim.stepper.state())
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
