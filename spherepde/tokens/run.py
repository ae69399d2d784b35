"""The token run (``spherepde particles``): what the run loop of :mod:`spherepde.solver` drives."""
from __future__ import annotations

import os

import numpy as np

from .. import io
from ..config import TokenConfig
from ..errors import InputError
from ..initial import saved_snapshot, snapshot_manifold
from .diagnostics import diagnostics
from .evolve import token_stepper
from .field import TokenField
from .initial import initial_tokens


def initial_points(cfg: TokenConfig) -> np.ndarray:
    """The initial tokens of ``[particles]`` (docs/config.md): uniform, lattice, points, or
    density / quantile (iid samples / quantiles of a PDE run's density)."""
    tokens = cfg.particles
    if tokens.init in ("uniform", "lattice"):
        return initial_tokens(tokens.init, tokens.n, tokens.d, seed=tokens.seed)
    if tokens.init == "points":
        try:
            points = np.load(str(tokens.path))
        except (OSError, ValueError) as exc:
            raise InputError(f"particles.path = {tokens.path!r} cannot be read as a .npy array: {exc}", "particles.path") from None
        try:
            return initial_tokens("points", tokens.n, tokens.d, points=points)
        except InputError as exc:
            raise InputError(f"particles.path = {tokens.path!r}: {exc}", "particles.path") from None
    run, index = saved_snapshot(tokens.path, tokens.time, "particles")
    manifold = snapshot_manifold(run)
    if manifold.d != tokens.d:
        raise InputError(f"particles.path = {tokens.path!r} holds a {manifold.kind} run in R^{manifold.d}: it needs "
                         f"particles.d = {manifold.d}, not {tokens.d}", "particles.d")
    density = io.read_density(tokens.path, index)
    return initial_tokens(tokens.init, tokens.n, tokens.d, seed=tokens.seed, density=density, manifold=manifold)


#: Bytes of memory per token coordinate a run needs: the state, the seven Dormand–Prince stages, the stage
#: point and the error estimate, in float64.
BYTES_PER_COORDINATE = 8 * 10


def physical_memory() -> int:
    """Bytes of physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(n: int, d: int):
    """InputError (before anything is allocated) when n tokens in R^d cannot be held in memory."""
    need, have = n * d * BYTES_PER_COORDINATE, physical_memory()
    if need > have:
        raise InputError(f"particles.n = {n}: {n} tokens in R^{d} need about {need / 1e9:.3g} GB of memory for the "
                         f"state and its Runge-Kutta stages; this machine has {have / 1e9:.3g} GB", "particles.n")


def token_count(cfg: TokenConfig) -> int | None:
    """n: ``[particles] n``, or the rows of the points file (None if it cannot be read: reported when it is)."""
    if cfg.particles.n is not None:
        return cfg.particles.n
    try:
        return int(np.load(str(cfg.particles.path), mmap_mode="r").shape[0])
    except (OSError, ValueError, IndexError):
        return None


class TokenSimulation:
    """A resolved token configuration: n tokens x_i on S^{d-1} under the velocity of
    :class:`spherepde.tokens.field.TokenField` (the interface of :class:`spherepde.solver.Simulation`)."""

    kind = "particles"
    #: BLAS threads as they are: the numpy backend's matrix products are BLAS' work.
    blas_threads: int | None = None

    def __init__(self, cfg: TokenConfig):
        self.cfg = cfg
        if cfg.particles.n is not None:  # (a points file is checked when read)
            check_memory(cfg.particles.n, cfg.particles.d)
        self.model = cfg.attention()
        self.field = TokenField(self.model, cfg.particles.backend, cfg.particles.block, token_count(cfg))
        tcfg = cfg.time
        self.stepper = token_stepper(tcfg.method, tcfg.dt, tcfg.rtol)
        self.times = tcfg.save_times()
        self.checkpoint_seconds = cfg.numerics.checkpoint_seconds

    def initial_state(self) -> np.ndarray:
        return initial_points(self.cfg)

    def start(self, first: dict):
        pass

    def step(self, t: float, x: np.ndarray, t_stop: float) -> tuple[float, np.ndarray]:
        return self.stepper.step(lambda _t, y: self.field(y), t, x, t_stop)

    def diagnostics(self, x: np.ndarray) -> dict:
        """:func:`spherepde.tokens.diagnostics` with the run's matrices (energy NaN unless QᵀK = V = I);
        the cluster threshold ``cluster_delta`` in use is recorded with every snapshot."""
        options, model = self.cfg.diagnostics, self.model
        return diagnostics(x, model.beta, options.lmax, options.cluster_delta, self.cfg.particles.block,
                           Q=model.Q, K=model.K, V=model.V)

    def fields(self, x: np.ndarray) -> dict:
        """The tokens per snapshot, or nothing with ``[particles] save_points = false`` (the final state is
        then the checkpoint's, :func:`spherepde.io.read_points` with index -1)."""
        return {"points": x} if self.cfg.particles.save_points else {}

    def saved(self, x: np.ndarray) -> dict:
        return {"points": x}

    def restored(self, saved: dict) -> np.ndarray:
        return saved["points"]

    def layout(self) -> dict:
        attrs: dict[str, object] = {"manifold": self.kind, "backend": self.field.backend}
        if self.cfg.particles.compress:
            attrs["compress_snapshots"] = 1  # gzip the tokens when the run ends (spherepde.io.RunFile.finish)
        return {"attrs": attrs}

    @staticmethod
    def describe(diag: dict) -> str:
        return f"clusters={diag['clusters']} |mean x|={diag['mean_direction']:.3g} close pairs={diag['close_pairs']:.3g}"
