"""Run configuration (TOML): one frozen dataclass per section, checked, every default filled in.

A PDE run is a :class:`RunConfig` (sections ``[model]``, ``[domain]``, ``[initial]``, ``[time]``,
``[numerics]``), a token run a :class:`TokenConfig` (``[model]``, ``[particles]``, ``[time]``,
``[diagnostics]``, ``[numerics]``). ``resolve`` / ``resolve_particles`` turn a user's mapping into
one or raise :class:`InputError` with one line naming the key and what is allowed (the key path
is also the error's ``key``). ``dumps`` writes the resolved configuration as TOML (stored in run
files); ``loads`` reads it back. Every key, default and rule is documented in docs/config.md.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Union

import numpy as np
import tomli_w

from .errors import InputError
from .harmonics import MAX_DIM, check_beta, kernel_bandwidth
from .integrate import SCHEMES, save_times
from .kernels import numba_available, spectral_gap
from .manifolds import MANIFOLDS, manifold_class
from .model import CLOCKS, MODELS, AttentionModel
from .tokens.field import BACKENDS as TOKEN_BACKENDS

#: The kernel must be resolved: |ĥ_l| < KERNEL_TOL · ĥ_0 beyond lmax.
KERNEL_TOL = 1e-8
#: Largest number of snapshots of a run (each is preallocated in the run file).
MAX_SNAPSHOTS = 10**6
#: Largest number of fixed steps (rk4) of a run.
MAX_FIXED_STEPS = 10**9
#: Smallest and (exclusive) largest compaction distance of weighted points, radians.
MERGE_DISTANCE_RANGE = (1e-14, 0.1)

Matrix = tuple  # rows of floats


def _fail(key: str, value, allowed: str):
    raise InputError(f"{key} = {value!r} is not allowed: {allowed}", key)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _vector(key, v):
    if not isinstance(v, (list, tuple)) or not all(_is_number(x) and math.isfinite(x) for x in v):
        _fail(key, v, "use a list of finite real numbers")
    return tuple(float(x) for x in v)


def _rows(key, v):
    if not isinstance(v, (list, tuple)) or not v or not all(isinstance(r, (list, tuple)) for r in v):
        _fail(key, v, "use a list of lists of finite real numbers")
    return tuple(_vector(key, r) for r in v)


def _modes(key, v):
    pair = lambda r: isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in r)  # noqa: E731
    if not isinstance(v, (list, tuple)) or not v or not all(pair(r) for r in v):
        _fail(key, v, "use a non-empty list of [l, m] integer pairs")
    modes = tuple(tuple(r) for r in v)
    repeated = next((list(m) for i, m in enumerate(modes) if m in modes[:i]), None)
    if repeated is not None:
        _fail(key, [list(m) for m in modes], f"it lists the mode {repeated} twice (each harmonic once)")
    return modes


def _beta(key, v):
    if (_is_number(v) and v == math.inf) or v == "inf":
        return math.inf
    if not _is_number(v) or not math.isfinite(v):
        _fail(key, v, 'use a finite real number, or "inf" for the zero-temperature model (SA)')
    return float(v)


def _typed(kind: type, message: str) -> Callable:
    def convert(key, v):
        if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
            _fail(key, v, message)
        return v
    return convert


def _real(key, v):
    if not _is_number(v) or not math.isfinite(v):
        _fail(key, v, "use a finite real number")
    return float(v)


def _text(key, v):
    if not isinstance(v, str):
        _fail(key, v, "use a string")
    return v


_CONVERT: dict[str, Callable] = {
    "str": _text,
    "lower": lambda key, v: _text(key, v).lower(),
    "upper": lambda key, v: _text(key, v).upper(),
    "int": _typed(int, "use an integer"),
    "bool": _typed(bool, "use true or false"),
    "float": _real,
    "beta": _beta,
    "vector": _vector,
    "matrix": _rows,
    "points": _rows,
    "modes": _modes,
}


def option(default: Any = None, *, kind: str, check: Callable | None = None, allowed: str = "", required: bool = False):
    """A configuration key: its value kind (a key of _CONVERT), a range check with the sentence
    saying what is allowed, and whether it must be given."""
    return field(default=default, metadata={"kind": kind, "check": check, "allowed": allowed, "required": required})


def _section(cls, name: str, given, needed_by: str = "") -> Any:
    """The section ``[name]`` of ``given`` as an instance of ``cls``: unknown keys, types and ranges checked."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        _fail(f"[{name}]", given, "it must be a table")
    keys = [f.name for f in fields(cls)]
    unknown = sorted(set(given) - set(keys))
    if unknown:
        _fail(f"{name}.{unknown[0]}", given[unknown[0]], f"the keys of [{name}] are {', '.join(keys)}")
    values = {}
    for f in fields(cls):
        key, meta = f"{name}.{f.name}", f.metadata
        if f.name in given:
            value = _CONVERT[meta["kind"]](key, given[f.name])
            if meta["check"] is not None and not meta["check"](value):
                _fail(key, value, meta["allowed"])
            values[f.name] = value
        elif meta["required"]:
            raise InputError(f"{key} is missing: {needed_by or f'[{name}] needs it'}", key)
    return cls(**values)


def _plain(value):
    """A configuration value as TOML data: tuples become lists."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _table(section) -> dict:
    """A section as a TOML table, keys in declaration order, unset (None) keys left out."""
    out = {"kind": section.kind} if isinstance(section, InitialConfig) else {}
    out.update({f.name: _plain(getattr(section, f.name)) for f in fields(section) if getattr(section, f.name) is not None})
    return out


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: the attention model (see :class:`spherepde.model.AttentionModel`)."""

    name: str = option("SA", kind="upper", check=lambda v: v in MODELS, allowed="use 'SA' or 'USA'")
    beta: float = option(9.0, kind="beta")
    Q: Matrix | None = option(kind="matrix")
    K: Matrix | None = option(kind="matrix")
    V: Matrix | None = option(kind="matrix")
    clock: str = option("depth", kind="lower", check=lambda v: v in CLOCKS,
                        allowed="use 'depth' (time = layer index) or 'rescaled' (USA kernel e^(beta(<x,By> - ||B||)))")

    def attention(self, d: int, mean_field: bool = True) -> AttentionModel:
        """The model on S^{d-1}; InputError naming the key (``model.…``) when it does not exist, or
        (``mean_field``) when its mean-field velocities would not fit in double precision."""
        for key in ("Q", "K", "V"):
            value = getattr(self, key)
            if value is not None and (len(value) != d or any(len(row) != d for row in value)):
                _fail(f"model.{key}", _plain(value), f"use a {d}x{d} matrix (points in R^{d})")
        try:
            model = AttentionModel(self.name, self.beta, d, self.Q, self.K, self.V, self.clock)  # matrices as rows
            if mean_field:
                model.check_mean_field()
            else:
                check_beta(self.beta)
            return model
        except InputError as exc:
            raise InputError(f"model.{exc}", "model") from None


@dataclass(frozen=True)
class DomainConfig:
    """``[domain]``: the manifold (a kind of :data:`spherepde.manifolds.MANIFOLDS`) and its truncation."""

    kind: str = option("sphere", kind="lower", check=lambda v: v in MANIFOLDS,
                       allowed=f"use one of {', '.join(map(repr, MANIFOLDS))}")
    lmax: int = option(63, kind="int")
    dim: int | None = option(kind="int", check=lambda v: 3 <= v <= MAX_DIM,
                             allowed=f"use an integer 3 <= dim <= {MAX_DIM} (d = 2 is kind = 'circle')")

    @property
    def d(self) -> int:
        """The ambient dimension of the manifold."""
        return manifold_class(self.kind).dimension(self)


@dataclass(frozen=True)
class TimeConfig:
    """``[time]``: end time, snapshot times and the time-stepping scheme (:data:`spherepde.integrate.SCHEMES`)."""

    t_end: float = option(10.0, kind="float", check=lambda v: v > 0, allowed="use a positive time")
    save_every: float = option(0.25, kind="float")
    save_per_decade: int | None = option(kind="int", check=lambda v: v >= 1,
                                         allowed="use a positive number of snapshots per factor 10 in time")
    save_log_from: float | None = option(kind="float", check=lambda v: v > 0,
                                         allowed="use a positive time (log-spaced snapshots from there on)")
    rtol: float = option(1e-8, kind="float", check=lambda v: 1e-14 <= v < 1,
                         allowed="use a tolerance from 1e-14 (round-off) to below 1")
    method: str = option("dopri5", kind="lower", check=lambda v: v in SCHEMES,
                         allowed="use 'dopri5' (adaptive) or 'rk4' (fixed step)")
    dt: float | None = option(kind="float")

    def save_times(self) -> np.ndarray:
        """The snapshot times (:func:`spherepde.integrate.save_times`)."""
        return save_times(self.t_end, self.save_every, self.save_per_decade, self.save_log_from)

    def check(self):
        """The rules between keys: save_every ≤ t_end, dt with rk4 only, bounded snapshot and step counts."""
        if not 0 < self.save_every <= self.t_end:
            _fail("time.save_every", self.save_every, f"use a positive time no larger than t_end = {self.t_end}")
        count = self.t_end / self.save_every if self.save_per_decade is None else None
        if count is not None and count > MAX_SNAPSHOTS:
            _fail("time.save_every", self.save_every, f"t_end / save_every = {count:.3g} snapshots; at most "
                  f"{MAX_SNAPSHOTS:g} are allowed (or use save_per_decade for log-spaced snapshots)")
        if self.method == "rk4":
            if self.dt is None:
                raise InputError("time.dt is missing: method = 'rk4' needs a fixed step dt", "time.dt")
            if not 0 < self.dt <= self.save_every:
                _fail("time.dt", self.dt, f"use a positive step no larger than save_every = {self.save_every}")
            if self.t_end / self.dt > MAX_FIXED_STEPS:
                _fail("time.dt", self.dt, f"t_end / dt = {self.t_end / self.dt:.3g} steps; at most "
                      f"{MAX_FIXED_STEPS:g} are allowed")
        elif self.dt is not None:
            _fail("time.dt", self.dt, "a fixed step goes with method = 'rk4'; the adaptive method uses rtol")
        if self.save_log_from is not None and self.save_per_decade is None:
            _fail("time.save_log_from", self.save_log_from, "it goes with save_per_decade")
        if len(self.save_times()) > MAX_SNAPSHOTS:
            _fail("time.save_per_decade", self.save_per_decade, f"it gives more than {MAX_SNAPSHOTS:g} snapshots")


def _checkpoint_seconds():
    return option(300.0, kind="float", check=lambda v: v > 0, allowed="use a positive wall-clock interval in seconds")


@dataclass(frozen=True)
class NumericsConfig:
    """``[numerics]`` of a PDE run: resolution guard, what happens when it fires, threads, checkpoints."""

    max_tail_energy: float = option(1e-5, kind="float", check=lambda v: 0 < v < 1, allowed="use a number between 0 and 1")
    max_negative_density: float = option(1e-3, kind="float", check=lambda v: 0 <= v < 1, allowed="use a number in [0, 1)")
    # 0: all cores from lmax 127 on, one below (manifolds.run_threads: the best for one run, benchmarks/bench_run.py);
    # a sweep gives each of its runs 1
    threads: int = option(0, kind="int", check=lambda v: v >= 0, allowed="use 0 (all cores) or a positive count")
    checkpoint_seconds: float = _checkpoint_seconds()
    on_lost_resolution: str = option("lagrangian", kind="lower", check=lambda v: v in ("lagrangian", "stop"),
                                     allowed="use 'lagrangian' (continue with weighted points) or 'stop' (exit 1)")
    representation: str = option("eulerian", kind="lower", check=lambda v: v in ("eulerian", "lagrangian"),
                                 allowed="use 'eulerian' (spectral density) or 'lagrangian' (weighted points from t = 0)")
    oversampling: float = option(2.0, kind="float", check=lambda v: 1.0 <= v <= 8.0,
                                 allowed="use a factor from 1 (the exact minimum) to 8")
    merge_distance: float = option(1e-10, kind="float",
                                   check=lambda v: MERGE_DISTANCE_RANGE[0] <= v < MERGE_DISTANCE_RANGE[1],
                                   allowed=f"use a distance in radians from {MERGE_DISTANCE_RANGE[0]:g} to below "
                                           f"{MERGE_DISTANCE_RANGE[1]:g}")


# --------------------------------------------------------------------------- initial densities


@dataclass(frozen=True)
class InitialConfig:
    """``[initial]``: one subclass per ``kind`` (docs/config.md)."""

    kind: ClassVar[str]


def _seed(default):
    return option(default, kind="int", check=lambda v: v >= 0, allowed="use a non-negative integer seed")


@dataclass(frozen=True)
class PerturbedUniform(InitialConfig):
    """1 + amplitude · (the listed harmonics, or white noise of unit L²(σ) norm)."""

    kind = "perturbed_uniform"
    amplitude: float = option(1e-3, kind="float", check=lambda v: v >= 0, allowed="use a non-negative amplitude")
    modes: tuple | None = option(kind="modes")
    seed: int = _seed(0)


@dataclass(frozen=True)
class VonMisesFisher(InitialConfig):
    """e^{κ⟨x,μ⟩}/ĥ_0(κ) (sphere: μ ∝ mean; zonal: μ = e, no mean)."""

    kind = "von_mises_fisher"
    kappa: float = option(kind="float", required=True, check=lambda v: v >= 0, allowed="use a non-negative concentration")
    mean: tuple | None = option(kind="vector")


@dataclass(frozen=True)
class VonMises(InitialConfig):
    """e^{κ cos(θ-ψ)}/I_0(κ) on the circle."""

    kind = "von_mises"
    kappa: float = option(kind="float", required=True, check=lambda v: v >= 0, allowed="use a non-negative concentration")
    psi: float = option(0.0, kind="float")


@dataclass(frozen=True)
class WrappedCauchy(InitialConfig):
    """(1 - R0²)/(1 - 2R0 cos(θ-ψ) + R0²) on the circle."""

    kind = "wrapped_cauchy"
    R0: float = option(kind="float", required=True, check=lambda v: 0 <= v < 1, allowed="use 0 <= R0 < 1")
    psi: float = option(0.0, kind="float")


@dataclass(frozen=True)
class PointSource(InitialConfig):
    """Points on the sphere: exactly one of ``points`` (a list), ``path`` (a .npy file) or ``n`` iid uniform
    tokens (with ``seed``, the very tokens of a token run with the same n and seed)."""

    points: Matrix | None = option(kind="points")
    path: str | None = option(kind="str")
    n: int | None = option(kind="int", check=lambda v: v >= 1, allowed="use a positive number of tokens")
    seed: int | None = _seed(None)


@dataclass(frozen=True)
class KernelEstimate(PointSource):
    """The empirical measure of points smoothed by von Mises–Fisher kernels of concentration ``bandwidth``."""

    kind = "particles"
    bandwidth: float = option(kind="float", required=True, check=lambda v: v > 0,
                              allowed="use a positive concentration (von Mises–Fisher kappa of each kernel)")


@dataclass(frozen=True)
class PointMeasure(PointSource):
    """The weighted point measure Σ_i w_i δ_{x_i} itself (equal weights unless ``weights`` are given, rescaled to
    sum 1); a run of weighted points from t = 0 (``[numerics] representation = "lagrangian"``)."""

    kind = "points"
    weights: tuple | None = option(kind="vector", check=lambda v: all(w > 0 for w in v),
                                   allowed="use positive weights, one per point")


@dataclass(frozen=True)
class FromFile(InitialConfig):
    """A saved snapshot of a run file (default its last)."""

    kind = "from_file"
    path: str = option(kind="str", required=True)
    time: float | None = option(kind="float")


INITIAL_KINDS: dict[str, type[InitialConfig]] = {
    cls.kind: cls for cls in (PerturbedUniform, VonMisesFisher, VonMises, WrappedCauchy, KernelEstimate, PointMeasure, FromFile)
}
#: Initial kinds every manifold has; the others are its ``profiles`` (and "particles", "points" where it ``takes_points``).
GENERIC_INITIAL_KINDS = ("perturbed_uniform", "from_file")


# --------------------------------------------------------------------------- a PDE run


class _Sections:
    """A whole configuration: its sections as TOML tables."""

    def to_dict(self) -> dict:
        return {f.name: _table(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class RunConfig(_Sections):
    """A PDE run (``spherepde run``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)
    initial: InitialConfig = field(default_factory=PerturbedUniform)
    time: TimeConfig = field(default_factory=TimeConfig)
    numerics: NumericsConfig = field(default_factory=NumericsConfig)

    def attention(self) -> AttentionModel:
        return self.model.attention(self.domain.d)


def _sections(config, sections: tuple[str, ...]):
    if not isinstance(config, dict):
        raise InputError("the configuration must be a TOML table")
    unknown = sorted(set(config) - set(sections))
    if unknown:
        _fail(f"[{unknown[0]}]", "…", f"the sections are {', '.join(sorted(sections))}")


def _initial(raw, manifold) -> InitialConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail("[initial]", raw, "it must be a table")
    kind = raw.get("kind", "perturbed_uniform")
    if not isinstance(kind, str) or kind.lower() not in INITIAL_KINDS:
        _fail("initial.kind", kind, f"use one of {', '.join(INITIAL_KINDS)}")
    kind = kind.lower()
    available = (*GENERIC_INITIAL_KINDS, *manifold.profiles, *(("particles", "points") if manifold.takes_points else ()))
    if kind not in available:
        _fail("initial.kind", kind, f"this initial density is not defined on the {manifold.kind}: use one of {', '.join(available)}")
    return _section(INITIAL_KINDS[kind], "initial", {k: v for k, v in raw.items() if k != "kind"},
                    f"initial kind '{kind}' needs it")


def _check_initial(ini: InitialConfig, domain: DomainConfig):
    d = domain.d
    if isinstance(ini, VonMisesFisher):
        if domain.kind == "zonal":
            if ini.mean is not None:
                _fail("initial.mean", list(ini.mean), "zonal densities are about the axis e: leave mean out")
        elif ini.mean is None:
            raise InputError("initial.mean is missing: initial kind 'von_mises_fisher' needs it", "initial.mean")
        elif len(ini.mean) != d or not any(ini.mean):
            _fail("initial.mean", list(ini.mean), f"use a non-zero vector of length {d}")
    if isinstance(ini, PointSource):
        if sum(getattr(ini, key) is not None for key in ("points", "path", "n")) != 1:
            raise InputError(
                f"initial kind '{ini.kind}' needs exactly one of initial.points (a list), initial.path (a .npy file) "
                "or initial.n (that many iid uniform tokens)", "initial")
        if ini.n is None and ini.seed is not None:
            _fail("initial.seed", ini.seed, "a seed goes with initial.n (random tokens), not with given points")
        if ini.points is not None and any(len(p) != d for p in ini.points):
            _fail("initial.points", _plain(ini.points), f"use points with {d} coordinates")
    if isinstance(ini, PointMeasure) and ini.weights is not None:
        count = len(ini.points) if ini.points is not None else ini.n
        if count is not None and len(ini.weights) != count:
            _fail("initial.weights", f"{len(ini.weights)} weights", f"use one weight per point ({count})")


def _check_kernel(attention: AttentionModel, domain: DomainConfig):
    """lmax resolves the kernel y ↦ e^{β⟨Bᵀx,y⟩}, a von Mises–Fisher kernel of concentration
    β|Bᵀx| ≤ |β|‖B‖₂: its bandwidth is that of the identity kernel at |β|‖B‖₂."""
    if attention.zero_temperature:
        return
    needed = kernel_bandwidth(attention.concentration, attention.d, KERNEL_TOL)
    if domain.lmax < needed:
        _fail("domain.lmax", domain.lmax,
              f"too small for beta = {attention.beta:g}: the kernel's Funk-Hecke coefficients at |beta| ||Q^T K|| = "
              f"{attention.concentration:g} fall below {KERNEL_TOL:g} of h_0 only from degree {needed} on; "
              f"use lmax >= {needed}")


def resolve(config: dict) -> RunConfig:
    """Check a PDE configuration mapping and fill in every default."""
    _sections(config, ("model", "domain", "initial", "time", "numerics"))
    model = _section(ModelConfig, "model", config.get("model"))
    domain = _section(DomainConfig, "domain", config.get("domain"))
    manifold = manifold_class(domain.kind)
    manifold.check_lmax(domain.lmax)
    if (domain.dim is None) != (domain.kind != "zonal"):
        if domain.dim is None:
            raise InputError("domain.dim is missing: kind = 'zonal' needs the ambient dimension d (3 <= d <= 4096)", "domain.dim")
        _fail("domain.dim", domain.dim, f"the dimension is fixed on the {domain.kind} (dim goes with kind = 'zonal')")
    attention = model.attention(domain.d)
    if domain.kind == "zonal" and (attention.linear_theory() is None and not attention.zero_temperature):
        _fail("model", "…", "zonal densities stay zonal only for Q^T K = bI and V = vI: use such matrices "
              "or kind = 'sphere'")
    _check_kernel(attention, domain)
    time = _section(TimeConfig, "time", config.get("time"))
    time.check()
    numerics = _section(NumericsConfig, "numerics", config.get("numerics"))
    initial = _initial(config.get("initial"), manifold)
    _check_initial(initial, domain)
    if isinstance(initial, PointMeasure) and numerics.representation != "lagrangian":
        _fail("initial.kind", "points", "a point measure has no density on the grid: set [numerics] representation = "
              "'lagrangian' to run the points themselves, or use kind = 'particles' for their smoothed density")
    return RunConfig(model, domain, initial, time, numerics)


# --------------------------------------------------------------------------- a token run

TOKEN_INITS = ("uniform", "lattice", "points", "density", "quantile")
DEFAULT_TOKENS = 1000


@dataclass(frozen=True)
class ParticlesConfig:
    """``[particles]``: n tokens on S^{d-1} ⊂ R^d, their initial positions and the velocity backend."""

    n: int | None = option(kind="int", check=lambda v: v >= 1, allowed="use a positive number of tokens")
    d: int = option(3, kind="int", check=lambda v: 2 <= v <= MAX_DIM,
                    allowed=f"use an ambient dimension 2 <= d <= {MAX_DIM} (tokens on S^(d-1))")
    init: str = option("uniform", kind="lower", check=lambda v: v in TOKEN_INITS, allowed=f"use one of {', '.join(TOKEN_INITS)}")
    path: str | None = option(kind="str")
    time: float | None = option(kind="float")
    seed: int = _seed(0)
    block: int | None = option(kind="int", check=lambda v: v >= 1, allowed="use a positive number of rows per block")
    backend: str = option("auto", kind="lower", check=lambda v: v in TOKEN_BACKENDS,
                          allowed=f"use one of {', '.join(map(repr, TOKEN_BACKENDS))}")
    save_points: bool = option(True, kind="bool")
    compress: bool = option(False, kind="bool")


@dataclass(frozen=True)
class TokenDiagnosticsConfig:
    """``[diagnostics]`` of a token run: degree of the empirical spectrum, cluster threshold."""

    lmax: int = option(16, kind="int", check=lambda v: 0 <= v <= 2047, allowed="use a degree from 0 to 2047")
    cluster_delta: float | None = option(kind="float", check=lambda v: 0 < v < 2,
                                         allowed="use 0 < delta < 2 (linked when <x_i,x_j> > 1 - delta)")


@dataclass(frozen=True)
class TokenNumericsConfig:
    """``[numerics]`` of a token run: only the checkpoint interval."""

    checkpoint_seconds: float = _checkpoint_seconds()


@dataclass(frozen=True)
class TokenConfig(_Sections):
    """A token run (``spherepde particles``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    particles: ParticlesConfig = field(default_factory=ParticlesConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    diagnostics: TokenDiagnosticsConfig = field(default_factory=TokenDiagnosticsConfig)
    numerics: TokenNumericsConfig = field(default_factory=TokenNumericsConfig)

    def attention(self) -> AttentionModel:
        return self.model.attention(self.particles.d, mean_field=False)


def resolve_particles(config: dict) -> TokenConfig:
    """Check a token-run configuration mapping and fill in every default (docs/config.md)."""
    _sections(config, ("model", "particles", "time", "diagnostics", "numerics"))
    model = _section(ModelConfig, "model", config.get("model"))
    tokens = _section(ParticlesConfig, "particles", config.get("particles"))
    if tokens.init != "points" and tokens.n is None:
        tokens = ParticlesConfig(**{**_table(tokens), "n": DEFAULT_TOKENS})
    if tokens.init == "lattice" and tokens.d not in (2, 3):
        _fail("particles.d", tokens.d, "init = 'lattice' exists for d = 2 (equal angles) and d = 3 (Fibonacci)")
    from_file = {"path": ("points", "density", "quantile"), "time": ("density", "quantile")}
    if tokens.init in from_file["path"] and tokens.path is None:
        raise InputError(f"particles.path is missing: init = '{tokens.init}' needs a file", "particles.path")
    for key, allowed in from_file.items():
        if getattr(tokens, key) is not None and tokens.init not in allowed:
            _fail(f"particles.{key}", getattr(tokens, key), f"it goes with init = {' or '.join(map(repr, allowed))}")
    if tokens.backend == "numba" and not numba_available():
        _fail("particles.backend", tokens.backend, "numba is not installed (pip install 'spherepde[numba]'); use 'auto' or 'numpy'")
    if model.beta == math.inf:
        _fail("model.beta", model.beta, "use a finite real number (tokens have no zero-temperature model)")
    attention = model.attention(tokens.d, mean_field=False)
    gap = spectral_gap(attention) if tokens.backend == "spectral" else ""
    if gap:
        _fail("particles.backend", tokens.backend, f"harmonic sums do not apply ({gap}): use 'numpy', "
              "'numba' or 'auto'")
    time = _section(TimeConfig, "time", config.get("time"))
    time.check()
    diagnostics = _section(TokenDiagnosticsConfig, "diagnostics", config.get("diagnostics"))
    numerics = _section(TokenNumericsConfig, "numerics", config.get("numerics"))
    return TokenConfig(model, tokens, time, diagnostics, numerics)


# --------------------------------------------------------------------------- files and text

AnyConfig = Union[RunConfig, TokenConfig]


def resolve_any(config: dict) -> AnyConfig:
    """`resolve_particles` for a mapping with a [particles] section (a token run), else `resolve`."""
    return resolve_particles(config) if isinstance(config, dict) and "particles" in config else resolve(config)


def read_toml(path: str | Path, what: str = "config file") -> dict:
    """The TOML table in the file ``path``; InputError naming the file (as ``what``) otherwise."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} {str(path)!r} is a directory, not a TOML file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start}): TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise InputError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None


def load(path: str | Path, resolver: Callable[[dict], Any] = resolve) -> Any:
    """Read a TOML configuration file and resolve it (``resolver``: `resolve`, `resolve_particles`, `resolve_any`)."""
    return resolver(read_toml(path))


def dumps(cfg: AnyConfig) -> str:
    """The resolved configuration as TOML text (as stored in run files)."""
    return tomli_w.dumps(cfg.to_dict())


def loads(text: str, resolver: Callable[[dict], Any] = resolve_any) -> Any:
    """Parse TOML text and resolve it (default: a PDE or token configuration, by its sections)."""
    try:
        return resolver(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"configuration is not valid TOML: {exc}") from None


__all__ = [
    "RunConfig", "TokenConfig", "ModelConfig", "DomainConfig", "TimeConfig", "NumericsConfig", "InitialConfig",
    "PerturbedUniform", "VonMisesFisher", "VonMises", "WrappedCauchy", "KernelEstimate", "FromFile",
    "ParticlesConfig", "TokenDiagnosticsConfig", "TokenNumericsConfig", "resolve", "resolve_particles",
    "resolve_any", "read_toml", "load", "loads", "dumps", "KERNEL_TOL", "INITIAL_KINDS",
]
