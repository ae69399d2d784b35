"""Run configuration (TOML, design.md §2): validation, defaults, and the resolved form.

``resolve`` turns a user's mapping into a complete, checked configuration or
raises :class:`InputError` with one line naming the key and what is allowed.
``dumps`` writes the resolved configuration back as TOML (stored in run files).
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path

from .errors import InputError
from .model import AttentionModel, kernel_bandwidth

# The kernel must be resolved: |ĥ_l| < KERNEL_TOL · ĥ_0 beyond lmax.
KERNEL_TOL = 1e-8

# section -> key -> (kind, default); default None means optional without default.
_COMMON = {
    "model": {"name": ("str", "SA"), "beta": ("beta", 9.0), "Q": ("matrix", None), "K": ("matrix", None), "V": ("matrix", None)},
    "domain": {"kind": ("str", "sphere"), "lmax": ("int", 63)},
    "time": {
        "t_end": ("float", 10.0),
        "save_every": ("float", 0.25),
        "rtol": ("float", 1e-8),
        "method": ("str", "dopri5"),
        "dt": ("float", None),
    },
    "numerics": {
        "max_tail_energy": ("float", 1e-5), "max_negative_density": ("float", 1e-3), "threads": ("int", 1),
        "checkpoint_seconds": ("float", 300.0),
    },
}
INITIAL_KINDS = {
    "perturbed_uniform": {"amplitude": ("float", 1e-3), "modes": ("modes", None), "seed": ("int", 0)},
    "von_mises_fisher": {"kappa": ("float", None), "mean": ("vector", None)},
    "von_mises": {"kappa": ("float", None), "psi": ("float", 0.0)},
    "wrapped_cauchy": {"R0": ("float", None), "psi": ("float", 0.0)},
    "particles": {
        "points": ("points", None), "path": ("str", None), "n": ("int", None), "seed": ("int", None),
        "bandwidth": ("float", None),
    },
    "from_file": {"path": ("str", None), "time": ("float", None)},
}
DOMAINS = {"sphere": 3, "circle": 2}
METHODS = ("dopri5", "rk4")


def _fail(key: str, value, allowed: str):
    raise InputError(f"{key} = {value!r} is not allowed: {allowed}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(key: str, kind: str, v):
    if kind == "str":
        if not isinstance(v, str):
            _fail(key, v, "use a string")
        return v
    if kind == "int":
        if not isinstance(v, int) or isinstance(v, bool):
            _fail(key, v, "use an integer")
        return v
    if kind == "float":
        if not _is_number(v) or not math.isfinite(v):
            _fail(key, v, "use a finite real number")
        return float(v)
    if kind == "beta":  # a finite real number, or inf (TOML inf or "inf"): the zero-temperature model
        if _is_number(v) and v == math.inf or v == "inf":
            return math.inf
        if not _is_number(v) or not math.isfinite(v):
            _fail(key, v, 'use a finite real number, or "inf" for the zero-temperature model (SA)')
        return float(v)
    if kind == "vector":
        if not isinstance(v, list) or not all(_is_number(x) and math.isfinite(x) for x in v):
            _fail(key, v, "use a list of finite real numbers")
        return [float(x) for x in v]
    if kind in ("matrix", "points"):
        if not isinstance(v, list) or not v or not all(isinstance(r, list) for r in v):
            _fail(key, v, "use a list of lists of finite real numbers")
        return [_check(key, "vector", r) for r in v]
    if kind == "modes":
        if not isinstance(v, list) or not v or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in r) for r in v
        ):
            _fail(key, v, "use a non-empty list of [l, m] integer pairs")
        return [list(r) for r in v]
    raise AssertionError(kind)


def _section(name: str, given: dict, schema: dict) -> dict:
    if not isinstance(given, dict):
        _fail(f"[{name}]", given, "it must be a table")
    unknown = sorted(set(given) - set(schema))
    if unknown:
        _fail(f"{name}.{unknown[0]}", given[unknown[0]], f"the keys of [{name}] are {', '.join(schema)}")
    out = {}
    for key, (kind, default) in schema.items():
        if key in given:
            out[key] = _check(f"{name}.{key}", kind, given[key])
        elif default is not None:
            out[key] = default
    return out


def resolve(config: dict) -> dict:
    """Check a configuration mapping and fill in every default."""
    _check_sections(config, set(_COMMON) | {"initial"})
    cfg = {name: _section(name, config.get(name, {}), schema) for name, schema in _COMMON.items()}

    model = cfg["model"]
    _check_model_name(model)
    domain = cfg["domain"]
    domain["kind"] = domain["kind"].lower()
    if domain["kind"] not in DOMAINS:
        _fail("domain.kind", domain["kind"], "use 'sphere' or 'circle'")
    if domain["lmax"] < 2:
        _fail("domain.lmax", domain["lmax"], "use an integer >= 2")
    d = DOMAINS[domain["kind"]]
    _check_model(model, domain, d)

    _check_time(cfg["time"])
    _check_numerics(cfg["numerics"])

    initial = config.get("initial", {})
    if not isinstance(initial, dict):
        _fail("[initial]", initial, "it must be a table")
    kind = initial.get("kind", "perturbed_uniform")
    if not isinstance(kind, str) or kind.lower() not in INITIAL_KINDS:
        _fail("initial.kind", kind, f"use one of {', '.join(INITIAL_KINDS)}")
    kind = kind.lower()
    cfg["initial"] = {"kind": kind, **_section("initial", {k: v for k, v in initial.items() if k != "kind"}, INITIAL_KINDS[kind])}
    _check_initial(cfg["initial"], domain["kind"], d)
    return cfg


def _check_sections(config, sections: set):
    if not isinstance(config, dict):
        raise InputError("the configuration must be a TOML table")
    unknown = sorted(set(config) - sections)
    if unknown:
        _fail(f"[{unknown[0]}]", "…", f"the sections are {', '.join(sorted(sections))}")


def _check_model_name(model: dict):
    model["name"] = model["name"].upper()
    if model["name"] not in ("SA", "USA"):
        _fail("model.name", model["name"], "use 'SA' or 'USA'")


def _check_time(time: dict):
    time["method"] = time["method"].lower()
    if time["method"] not in METHODS:
        _fail("time.method", time["method"], "use 'dopri5' (adaptive) or 'rk4' (fixed step)")
    if time["t_end"] <= 0:
        _fail("time.t_end", time["t_end"], "use a positive time")
    if not 0 < time["save_every"] <= time["t_end"]:
        _fail("time.save_every", time["save_every"], f"use a positive time no larger than t_end = {time['t_end']}")
    if not 0 < time["rtol"] < 1:
        _fail("time.rtol", time["rtol"], "use a tolerance between 0 and 1")
    if time["method"] == "rk4":
        if "dt" not in time:
            raise InputError("time.dt is missing: method = 'rk4' needs a fixed step dt")
        if not 0 < time["dt"] <= time["save_every"]:
            _fail("time.dt", time["dt"], f"use a positive step no larger than save_every = {time['save_every']}")
    elif "dt" in time:
        _fail("time.dt", time["dt"], "a fixed step goes with method = 'rk4'; the adaptive method uses rtol")


# [numerics] key -> (valid?, what is allowed); a section may hold a subset of the keys
_NUMERICS_RULES = {
    "max_tail_energy": (lambda v: 0 < v < 1, "use a number between 0 and 1"),
    "max_negative_density": (lambda v: 0 <= v < 1, "use a number in [0, 1)"),
    "checkpoint_seconds": (lambda v: v > 0, "use a positive wall-clock interval in seconds"),
    "threads": (lambda v: v >= 0, "use 0 (all cores) or a positive count"),
}


def _check_numerics(numerics: dict):
    for key, value in numerics.items():
        valid, allowed = _NUMERICS_RULES[key]
        if not valid(value):
            _fail(f"numerics.{key}", value, allowed)


def _check_model(model: dict, domain: dict, d: int):
    """Q, K, V are d×d; the model exists (AttentionModel's rules); lmax resolves the kernel.

    The kernel y ↦ e^{β⟨Bᵀx,y⟩}, B = QᵀK, is a von Mises–Fisher kernel of concentration
    β|Bᵀx| ≤ |β|‖B‖₂, so its bandwidth is that of the identity kernel at |β|‖B‖₂.
    """
    for key in ("Q", "K", "V"):
        if key in model and (len(model[key]) != d or any(len(r) != d for r in model[key])):
            _fail(f"model.{key}", model[key], f"use a {d}x{d} matrix on the {domain['kind']}")
    try:
        attention = AttentionModel.from_config(model, d)
    except InputError as exc:
        raise InputError(f"model.{exc}") from None
    if attention.zero_temperature:
        return
    needed = kernel_bandwidth(attention.concentration, d, KERNEL_TOL)
    if domain["lmax"] < needed:
        _fail(
            "domain.lmax", domain["lmax"],
            f"too small for beta = {model['beta']:g}: the kernel's Funk-Hecke coefficients at |beta| ||Q^T K|| = "
            f"{attention.concentration:g} fall below {KERNEL_TOL:g} of h_0 only from degree {needed} on; "
            f"use lmax >= {needed}",
        )


def _check_initial(ini: dict, domain: str, d: int):
    kind = ini["kind"]
    circle_only, sphere_only = ("von_mises", "wrapped_cauchy"), ("von_mises_fisher",)
    if (kind in circle_only and domain != "circle") or (kind in sphere_only and domain != "sphere"):
        _fail("initial.kind", kind, f"this initial density is not defined on the {domain}")
    need = {"von_mises_fisher": ("kappa", "mean"), "von_mises": ("kappa",), "wrapped_cauchy": ("R0",), "from_file": ("path",), "particles": ("bandwidth",)}
    for key in need.get(kind, ()):
        if key not in ini:
            raise InputError(f"initial.{key} is missing: initial kind '{kind}' needs it")
    if kind == "perturbed_uniform" and ini["amplitude"] < 0:
        _fail("initial.amplitude", ini["amplitude"], "use a non-negative amplitude")
    if "kappa" in ini and ini["kappa"] < 0:
        _fail("initial.kappa", ini["kappa"], "use a non-negative concentration")
    if kind == "von_mises_fisher" and (len(ini["mean"]) != d or not any(ini["mean"])):
        _fail("initial.mean", ini["mean"], f"use a non-zero vector of length {d}")
    if kind == "wrapped_cauchy" and not 0 <= ini["R0"] < 1:
        _fail("initial.R0", ini["R0"], "use 0 <= R0 < 1")
    if kind == "particles":
        if sum(key in ini for key in ("points", "path", "n")) != 1:
            raise InputError(
                "initial kind 'particles' needs exactly one of initial.points (a list), initial.path (a .npy file) "
                "or initial.n (that many iid uniform tokens)"
            )
        if "n" in ini:
            if ini["n"] < 1:
                _fail("initial.n", ini["n"], "use a positive number of tokens")
            ini.setdefault("seed", 0)
        elif "seed" in ini:
            _fail("initial.seed", ini["seed"], "a seed goes with initial.n (random tokens), not with given points")
        if ini["bandwidth"] <= 0:
            _fail("initial.bandwidth", ini["bandwidth"], "use a positive concentration (von Mises–Fisher kappa of each kernel)")
        if "points" in ini and any(len(p) != d for p in ini["points"]):
            _fail("initial.points", ini["points"], f"use points with {d} coordinates")


# The configuration of a token run (`spherepde particles`): [model] and [time] as above,
# [numerics] only for its checkpoint interval.
_PARTICLE_SECTIONS = {
    "model": _COMMON["model"],
    "particles": {
        "n": ("int", None), "d": ("int", 3), "init": ("str", "uniform"), "path": ("str", None),
        "time": ("float", None), "seed": ("int", 0), "block": ("int", None), "backend": ("str", "auto"),
    },
    "time": _COMMON["time"],
    "diagnostics": {"lmax": ("int", 16), "cluster_delta": ("float", None)},
    "numerics": {"checkpoint_seconds": _COMMON["numerics"]["checkpoint_seconds"]},
}
TOKEN_INITS = ("uniform", "lattice", "points", "density", "quantile")
DEFAULT_TOKENS = 1000


def resolve_particles(config: dict) -> dict:
    """Check a token-run configuration mapping and fill in every default.

    [particles] n tokens on S^{d-1} ⊂ R^d from ``init``: "uniform" (iid, ``seed``), "lattice"
    (d = 2, 3), "points" (``path`` of an (n, d) .npy array), "density" (iid from the snapshot
    at ``time`` of the PDE run file ``path``, default its last) or "quantile" (the same density,
    deterministic quantile placement); ``block`` rows of the attention matrix at a time;
    ``backend`` of the velocity ("auto", "numpy", "numba"). [diagnostics] ``lmax`` of the
    empirical spectrum and the ``cluster_delta`` of `particles.cluster_count` (default
    `particles.cluster_threshold`).
    """
    from .particles import _as_backend, attention_field

    _check_sections(config, set(_PARTICLE_SECTIONS))
    cfg = {name: _section(name, config.get(name, {}), schema) for name, schema in _PARTICLE_SECTIONS.items()}
    tokens = cfg["particles"]
    tokens["init"] = tokens["init"].lower()
    init = tokens["init"]
    if init not in TOKEN_INITS:
        _fail("particles.init", init, f"use one of {', '.join(TOKEN_INITS)}")
    if init != "points":
        tokens.setdefault("n", DEFAULT_TOKENS)
    if tokens.get("n", 1) < 1:
        _fail("particles.n", tokens["n"], "use a positive number of tokens")
    if tokens["d"] < 2:
        _fail("particles.d", tokens["d"], "use an ambient dimension d >= 2 (tokens on S^(d-1))")
    if init == "lattice" and tokens["d"] not in (2, 3):
        _fail("particles.d", tokens["d"], "init = 'lattice' exists for d = 2 (equal angles) and d = 3 (Fibonacci)")
    from_file = {"path": ("points", "density", "quantile"), "time": ("density", "quantile")}
    if init in from_file["path"] and "path" not in tokens:
        raise InputError(f"particles.path is missing: init = '{init}' needs a file")
    for key, allowed in from_file.items():
        if key in tokens and init not in allowed:
            _fail(f"particles.{key}", tokens[key], f"it goes with init = {' or '.join(map(repr, allowed))}")
    if tokens.get("block", 1) < 1:
        _fail("particles.block", tokens["block"], "use a positive number of rows per block")
    tokens["backend"] = tokens["backend"].lower()
    try:
        _as_backend(tokens["backend"])
    except InputError as exc:
        raise InputError(f"particles.{exc}") from None

    model = cfg["model"]
    _check_model_name(model)
    try:
        attention_field(model["beta"], model["name"], tokens["d"], model.get("Q"), model.get("K"), model.get("V"),
                        backend="numpy")
    except InputError as exc:
        raise InputError(f"model.{exc}") from None
    _check_time(cfg["time"])
    diagnostics = cfg["diagnostics"]
    if diagnostics["lmax"] < 0:
        _fail("diagnostics.lmax", diagnostics["lmax"], "use a degree >= 0")
    if not 0 < diagnostics.get("cluster_delta", 1.0) < 2:
        _fail("diagnostics.cluster_delta", diagnostics["cluster_delta"], "use 0 < delta < 2 (linked when <x_i,x_j> > 1 - delta)")
    _check_numerics(cfg["numerics"])
    return cfg


def read_toml(path: str | Path, what: str = "config file") -> dict:
    """The TOML table in the file ``path``; InputError naming the file (as ``what``) otherwise."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"{what} {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise InputError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None


def load(path: str | Path, resolver=resolve) -> dict:
    """Read a TOML configuration file and resolve it (``resolver``: `resolve` or `resolve_particles`)."""
    return resolver(read_toml(path))


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") if not math.isnan(v) else "nan"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def dumps(cfg: dict) -> str:
    """The configuration as TOML text (tables of scalars and lists)."""
    lines = []
    for name, table in cfg.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_value(v)}" for key, v in table.items()]
        lines.append("")
    return "\n".join(lines)


def loads(text: str, resolver=resolve) -> dict:
    """Parse TOML text and resolve it (``resolver``: `resolve` or `resolve_particles`)."""
    try:
        return resolver(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"configuration is not valid TOML: {exc}") from None
