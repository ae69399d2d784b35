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

import contextlib
import errno
import math
import sys
import time as clock
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from . import config as config_mod
from . import lagrangian
from .config import PointMeasure, RunConfig, TokenConfig
from .diagnostics import cluster_count, energies, find_clusters, snapshot, tail_energy
from .dynamics import ContinuityEquation, grid_degree
from .errors import InputError, NumericalFailure, StorageFailure
from .harmonics import funk_hecke, kernel_bandwidth, log_funk_hecke
from .initial import initial_coefficients, point_measure
from .integrate import CFL, SCHEMES, DeviationNorm, PointwiseNorm, Stepper, normalize_rows
from .io import MemoryRun, RunFile, RunLock, check_output, check_writable, read_grid
from .kernels import DirectVelocity, SpectralVelocity
from .manifolds import Manifold, manifold_from_config, run_threads
from .tokens.run import TokenSimulation


#: The switch to weighted points fires while the spectral state is still clean, far before the guard: when
#: the top 10% of degrees carry more than max(SWITCH_TAIL, 10 × their share at t = 0) of ∫ρ² dσ, or the density
#: undershoots below -SWITCH_NEGATIVE × its maximum (docs/numerics.md, "Past the resolution").
SWITCH_TAIL = 1e-14
SWITCH_NEGATIVE = 1e-9
#: Largest number of pairs per velocity evaluation of weighted points by the direct sum (general B).
MAX_DIRECT_PAIRS = 4 * 10**8
#: How many clusters (the heaviest) are recorded per snapshot (/diagnostics/cluster_masses, cluster_points).
RECORDED_CLUSTERS = 32


class Simulation:
    """A resolved PDE configuration turned into manifold, model, equation and stepper.

    With :class:`~spherepde.tokens.run.TokenSimulation` it shares the interface `_record` drives:
    times, stepper, initial_state, start, step, diagnostics, fields, saved / restored (the
    checkpointed state), layout (fixed groups and attributes of the run file) and describe (a
    progress line).

    The state is the spectral coefficients of ρ, or, once the run continues past the resolution
    (``[numerics] on_lost_resolution = "lagrangian"``) or from the start (``representation =
    "lagrangian"``), the weighted points of :mod:`spherepde.lagrangian`.
    """

    #: BLAS threads during the run. The PDE's parallel work is SHTns' and ducc0's (``[numerics] threads``); BLAS only
    #: takes norms and diagnostics, and OpenBLAS' threads, spinning after each call, took the cores from SHTns'
    #: threads: a DOPRI5 step of USA at lmax 255 on two threads cost 51 ms with them, 9.6 ms without, 13.8 ms on one
    #: thread (docs/performance.md).
    blas_threads: int | None = 1

    def __init__(self, cfg: RunConfig, grid: dict | None = None):
        self.cfg = cfg
        numerics, tcfg = cfg.numerics, cfg.time
        self.model = cfg.attention()
        threads = run_threads(numerics.threads, cfg.domain.lmax)
        M = manifold_from_config(cfg.domain, threads)
        if grid is not None:  # a resumed run keeps the grid its file was written on
            M = M.on_grid(grid)
        elif (degree := grid_degree(self.model, M.lmax)) is not None:  # the smallest exact grid (USA)
            M = M.exact_to(degree)
        self.manifold = M
        self.kind = M.kind
        self.equation = ContinuityEquation(M, self.model)
        self.modes = getattr(cfg.initial, "modes", None)
        self.times = tcfg.save_times()
        self.checkpoint_seconds = numerics.checkpoint_seconds
        scheme = SCHEMES[tcfg.method]
        self.spectral_stepper = Stepper(scheme, rtol=tcfg.rtol, dt=tcfg.dt, norm=DeviationNorm(tcfg.rtol),
                                        max_step=self.equation.max_step)
        self.guard: ResolutionGuard | None = None
        self.continues = numerics.on_lost_resolution == "lagrangian" or numerics.representation == "lagrangian"
        self.lagrangian = False  # the phase: weighted points from the switch on
        if self.continues:
            if isinstance(cfg.initial, PointMeasure):  # the file's rows are the initial points themselves
                self.nodes, self.initial_weights = point_measure(cfg.initial, M.d)
            else:
                self.nodes = M.quadrature(lagrangian.switch_degree(M, self.model, numerics.oversampling))[0]
            self.velocity = lagrangian.point_velocity(self.model, M, threads)
            self.few_velocity = lagrangian.few_point_velocity(self.model, M)
            if isinstance(self.velocity, DirectVelocity) and len(self.nodes) ** 2 > MAX_DIRECT_PAIRS:
                raise InputError(
                    f"numerics.on_lost_resolution = 'lagrangian' with a general Q^T K sums all pairs of weighted points: "
                    f"{len(self.nodes)} points at lmax = {M.lmax} would be {len(self.nodes)}^2 pairs per velocity, at most "
                    f"{MAX_DIRECT_PAIRS:.0e} ({math.isqrt(MAX_DIRECT_PAIRS)} points) fit: lower domain.lmax or use "
                    "on_lost_resolution = 'stop'", "numerics.on_lost_resolution")
            self.point_stepper = Stepper(scheme, rtol=tcfg.rtol, dt=tcfg.dt,
                                         norm=PointwiseNorm(tcfg.rtol) if scheme.adaptive else None, project=normalize_rows,
                                         time_floor=False)
            self.contraction = lagrangian.contraction_rate(self.model)
            self.smoothing_kappa = smoothing_concentration(M)
            self._no_coefficients = np.zeros_like(_real(M.analysis(M.weights)))  # the checkpoint slot of a spectral state
            self.smoothing = funk_hecke(M.lmax, self.smoothing_kappa, M.d, log_scale=log_funk_hecke(0, self.smoothing_kappa, M.d)[0][0])[M.degrees]

    @property
    def stepper(self) -> Stepper:
        return self.point_stepper if self.lagrangian else self.spectral_stepper

    def initial_state(self):
        if isinstance(self.cfg.initial, PointMeasure):
            self.lagrangian = True
            return lagrangian.Points(self.nodes.copy(), self.initial_weights, np.arange(len(self.nodes)))
        c = initial_coefficients(self.cfg.initial, self.manifold)
        return self._points(c) if self.cfg.numerics.representation == "lagrangian" else c

    def _points(self, c: np.ndarray) -> lagrangian.Points:
        self.lagrangian = True
        degree = lagrangian.switch_degree(self.manifold, self.model, self.cfg.numerics.oversampling)
        return lagrangian.from_density(self.manifold, c, degree)[0]

    def start(self, first: dict):
        """Watch the resolution from now on, relative to the diagnostics ``first`` at t = 0."""
        self.guard = ResolutionGuard(self.cfg.numerics, self.manifold, first["tail_energy"])

    def step(self, t: float, y, t_stop: float):
        if self.lagrangian:
            w = y.w
            cap = 2.0 / self.contraction if lagrangian.crowded(y, self.model) else np.inf
            self.point_stepper.max_step = lambda: cap / CFL  # the engine multiplies by CFL
            velocity = self.few_velocity if self.few_velocity is not None and len(w) <= lagrangian.FEW_POINTS else self.velocity
            t_new, x = self.point_stepper.step(lambda _t, x: velocity(x, w), t, y.x, t_stop)
            return t_new, lagrangian.merge(replace(y, x=x), self.cfg.numerics.merge_distance)
        t_new, c_new = self.spectral_stepper.step(self.equation, t, y, t_stop)
        assert self.guard is not None, "start() first"
        tail, density_range = self.guard.tail(c_new), self.equation.density_range()
        if self.continues and self.guard.switch(tail, density_range):
            return t_new, self._points(c_new)
        self.guard.check(t_new, tail, density_range)
        return t_new, c_new

    def _modes(self, c: np.ndarray) -> dict:
        if not self.modes:
            return {}
        a = self.manifold.real_coefficients(c)
        return {"modes": np.array([a[self.manifold.real_index(l, m)] for l, m in self.modes])}

    def diagnostics(self, y) -> dict:
        if isinstance(y, lagrangian.Points):
            return self._point_diagnostics(y)
        diag = {**snapshot(self.equation, y), **self._modes(y)}
        if self.continues:
            diag.update(lagrangian=0, points_active=0, merged_w2=0.0, clipped_mass=0.0,
                        **self._clusters(self.manifold.synthesis(y)))
        return diag

    def _clusters(self, rho: np.ndarray) -> dict:
        """The heaviest RECORDED_CLUSTERS clusters of the grid density ρ (:func:`spherepde.diagnostics.find_clusters`):
        their masses and centres, NaN-padded."""
        found = find_clusters(self.manifold, rho)
        top = min(len(found), RECORDED_CLUSTERS)
        masses, centres = np.full(RECORDED_CLUSTERS, np.nan), np.full((RECORDED_CLUSTERS, self.manifold.d), np.nan)
        masses[:top], centres[:top] = found.masses[:top], found.points[:top]
        return {"cluster_masses": masses, "cluster_points": centres}

    def _point_diagnostics(self, points: lagrangian.Points) -> dict:
        """The diagnostics of the weighted point measure (docs/file-format.md): its own coefficients up to lmax,
        the exact energy (the kernel's band), clusters of the points, and the bookkeeping of the points."""
        M, model, x, w = self.manifold, self.model, points.x, points.w
        c = M.locate(x).coefficients(w)
        spectrum = M.degree_energy(c)
        if model.has_energy:
            assert isinstance(self.velocity, SpectralVelocity)
            band = self.velocity.manifold
            X, z = self.velocity.evaluate(x, w)
            speed2 = np.sum(X * X, axis=1)
            rate = (np.sum(w * z * speed2) * math.exp(model.kernel_log_scale - abs(model.beta)) if z is not None
                    else np.sum(w * speed2) * math.exp(-abs(model.beta)))
            energy = energies(model, band.degree_energy(band.locate(x).coefficients(w)), float(rate))
        else:
            energy = energies(model, spectrum, math.nan)
        smooth = M.synthesis(self.smoothing * c)
        return {
            "mass": float(np.sum(w)), **energy, "min_density": float(np.min(smooth[M.significant])),
            "max_density": float(np.max(smooth[M.significant])), "spectrum": spectrum, "tail_energy": math.nan,
            "mean_direction": float(np.linalg.norm(w @ x)), "dominant_degree": int(np.argmax(spectrum[1:]) + 1),
            "clusters": cluster_count(M, smooth), **self._modes(c), "lagrangian": 1, "points_active": len(w),
            "merged_w2": points.merged_w2, "clipped_mass": points.clipped, **self._clusters(smooth),
        }

    def fields(self, y) -> dict:
        M = self.manifold
        if isinstance(y, lagrangian.Points):
            positions, weights = y.rows(self.nodes)
            c = M.locate(y.x).coefficients(y.w)
            return {"density": M.synthesis(self.smoothing * c), "points": positions, "weights": weights}
        out = {"density": M.synthesis(y)}
        if self.continues:
            out.update(points=np.full(self.nodes.shape, np.nan), weights=np.full(len(self.nodes), np.nan))
        return out

    def saved(self, y) -> dict:
        """The state as real arrays: the coefficients ((…, 2) real and imaginary parts, (…, 1) for real layouts),
        and for runs that can continue past the resolution the weighted points' rows, owners and bookkeeping."""
        if not self.continues:
            return {"coefficients": _real(y)}
        if isinstance(y, lagrangian.Points):
            positions, weights = y.rows(self.nodes)
            return {"coefficients": self._no_coefficients,
                    "points": positions, "weights": weights, "owner": y.owner.astype(float),
                    "phase": np.array([1.0, y.merged_w2, y.clipped])}
        return {"coefficients": _real(y), "points": np.full(self.nodes.shape, np.nan),
                "weights": np.full(len(self.nodes), np.nan), "owner": np.full(len(self.nodes), -1.0), "phase": np.zeros(3)}

    def restored(self, saved: dict):
        if self.continues and saved["phase"][0] == 1.0:
            self.lagrangian = True
            _, merged_w2, clipped = saved["phase"]
            return lagrangian.Points.from_rows(saved["points"], saved["weights"], saved["owner"], float(merged_w2), float(clipped))
        parts = saved["coefficients"]
        return parts[..., 0] + 1j * parts[..., 1] if parts.shape[-1] == 2 else parts[..., 0].copy()

    def layout(self) -> dict:
        M = self.manifold
        attrs: dict[str, object] = {"manifold": M.kind}
        if self.continues:
            attrs["smoothing_kappa"] = self.smoothing_kappa
        return {"attrs": attrs, "fixed": {"grid": {**M.grid, "weights": M.weights}}}

    @staticmethod
    def describe(diag: dict) -> str:
        if diag.get("lagrangian"):
            return f"points={diag['points_active']} clusters={diag['clusters']} |mean x|={diag['mean_direction']:.6g}"
        return f"dominant l={diag['dominant_degree']} min rho={diag['min_density']:.3g} tail={diag['tail_energy']:.2g}"


def _real(c: np.ndarray) -> np.ndarray:
    """Coefficients as real numbers: (…, 2) real and imaginary parts of a complex layout, (…, 1) of a real one."""
    return np.stack([c.real, c.imag], axis=-1) if np.iscomplexobj(c) else c[..., None]


def smoothing_concentration(manifold: Manifold) -> float:
    """The largest κ (to 1%) whose von Mises–Fisher kernel the manifold resolves: |ĥ_l(κ)| < 1e-8 ĥ_0(κ) beyond
    lmax. The /density of weighted points is their measure smoothed by it: positive and resolved."""
    low, high = 0.0, 1.0
    while kernel_bandwidth(high, manifold.d, 1e-8) <= manifold.lmax:
        low, high = high, 2 * high
    while high - low > 0.01 * high:
        middle = 0.5 * (low + high)
        low, high = (middle, high) if kernel_bandwidth(middle, manifold.d, 1e-8) <= manifold.lmax else (low, middle)
    return low


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
        self.switch_tail = max(SWITCH_TAIL, 10.0 * initial_tail)

    def tail(self, c: np.ndarray) -> float:
        """The share of ∫ρ² dσ carried by the top 10% of degrees of the coefficients c (once per step: both tests
        below take it)."""
        return tail_energy(self.manifold.degree_energy(c))

    def switch(self, tail: float, density_range: tuple[float, float]) -> bool:
        """Whether to continue with weighted points now: the tail share (:meth:`tail`) or the undershoot has passed
        the switch thresholds (SWITCH_TAIL, SWITCH_NEGATIVE), far below the guard's."""
        low, high = density_range
        return tail > self.switch_tail or low < -SWITCH_NEGATIVE * high

    def check(self, t: float, tail: float, density_range: tuple[float, float]):
        """NumericalFailure when the tail share (:meth:`tail`) or the undershoot exceeds the guard's limits."""
        advice = f"rerun with a larger lmax than {self.manifold.lmax}"
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


def simulation(cfg: RunConfig | TokenConfig, grid: dict | None = None):
    """The simulation a resolved configuration describes: the PDE (on ``grid``, a run file's ``/grid``, when
    given) or the token system."""
    return TokenSimulation(cfg) if isinstance(cfg, TokenConfig) else Simulation(cfg, grid)


def run(cfg: RunConfig | TokenConfig, out: str | Path, resume: bool = False, progress: bool | None = False,
        overwrite: bool = False, reads=()) -> dict:
    """Run the resolved configuration ``cfg`` (a PDE or token run, see :mod:`spherepde.config`) into
    the file ``out``.

    ``progress``: None shows a bar on a terminal and a log line per snapshot otherwise, True
    always the bar, False nothing. Returns a summary (status, final time, snapshots, steps,
    wall time). Raises InputError before anything is written when the input is invalid — including
    an output path that would destroy something (:func:`spherepde.io.check_output`: ``overwrite``
    allows replacing an existing run; ``reads`` names further files the caller reads, e.g. the config)
    or that another process is writing (:class:`spherepde.io.RunLock`, held for the whole run);
    NumericalFailure (after saving) when the solution cannot be continued faithfully, StorageFailure
    when the file cannot be written on.
    """
    text = config_mod.dumps(cfg)
    check_writable(out)
    with RunLock(out):
        check_output(out, reads=[*reads, *_inputs(cfg)], resume=resume, overwrite=overwrite)
        sim = simulation(cfg, read_grid(out) if resume and isinstance(cfg, RunConfig) else None)
        sink = RunFile.reopen(out, text, len(sim.times)) if resume else RunFile(out)
        return _record(sim, text, sink, resume, progress)


def _inputs(cfg: RunConfig | TokenConfig) -> list:
    """The files a configuration reads (an initial condition's source)."""
    source = cfg.particles if isinstance(cfg, TokenConfig) else cfg.initial
    return [getattr(source, "path", None)]


def run_particles(cfg: TokenConfig, out: str | Path, resume: bool = False, progress: bool | None = False,
                  overwrite: bool = False) -> dict:
    """:func:`run` for a token configuration (kept for symmetry with ``spherepde particles``)."""
    return run(cfg, out, resume, progress, overwrite)


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
    """Step ``sim`` through its save times, writing snapshots, diagnostics and checkpoints to ``sink``, with
    at most ``sim.blas_threads`` BLAS threads (None: as they are).

    A checkpoint follows every snapshot, and every ``sim.checkpoint_seconds`` of wall-clock
    time in between; on a numerical failure or an interruption the last good state is
    checkpointed and the sink records why the run stopped.
    """
    with threadpool_limits(limits=sim.blas_threads, user_api="blas"):
        return _step_through(sim, text, sink, resume, progress)


def _step_through(sim, text: str, sink: Any, resume: bool, progress: bool | None) -> dict:
    """The loop of :func:`_record`."""
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
    except OSError as exc:  # the file cannot be written on: its last checkpoint stays valid
        why = "the disk is full" if exc.errno == errno.ENOSPC or "No space left" in str(exc) else f"I/O error: {exc}"
        message = f"{why} at t = {t:.6g}; the file keeps {sink.n_saved} snapshots: free space, then continue with --resume"
        with contextlib.suppress(Exception):
            sink.finish("failed", message)
        raise StorageFailure(message) from None
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
