"""Parameter sweeps: every combination of the values listed in a ``[sweep]`` table is one run.

A sweep file is a run configuration (the base: the usual sections, see docs/config.md)
plus a table ``[sweep]`` that maps dotted paths ``section.key`` to lists of values::

    [model]
    name = "SA"
    [sweep]
    "model.beta" = [3, 5, 9]
    "initial.seed" = [0, 1, 2]

The runs are the Cartesian product of the lists, in the order written (the last key varies
fastest); a swept value replaces the base's. Every combination is checked like a run's
configuration, initial density included, before any run starts. Each run writes
``DIR/<name>.h5``, named by its swept values (``beta=3_seed=0.h5``), and ``DIR/summary.csv``
holds one row per run (columns in :data:`COLUMNS`), rewritten as runs end.

Combinations with a ``[particles]`` section (from the base, or added by a swept ``particles.*``
key) are token runs, checked by :func:`spherepde.config.resolve_particles`; every combination of a sweep has the same sections, so a
sweep is a token sweep (summary columns :data:`TOKEN_COLUMNS`) or a PDE sweep.

Runs are tasks on a Dask cluster: a local one (one process per worker, one SHTns thread
each) or any scheduler, whose workers must see DIR. Started again on the same DIR, a sweep
skips runs whose file says finished or failed (a failure is deterministic), resumes
interrupted or killed ones from their checkpoint and starts the others.
"""
from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import compare, config, io, linear, solver
from .config import RunConfig, TokenConfig
from .errors import InputError, NumericalFailure
from .initial import initial_coefficients
from .manifolds import manifold_from_config
from .model import AttentionModel
from .tokens.run import initial_points

# Columns of summary.csv after ``run`` and the swept keys: the outcome of each PDE run.
# l_predicted = l*(β) of linear theory with its rate λ_{l*}; empty when linear theory does
# not apply (AttentionModel.linear_theory_gap). l_measured and rate_measured (the fitted growth rate of
# degree l_predicted) come from compare.compare_run over the run's exponential window;
# l_initial is the degree that linear growth from the run's own initial spectrum makes
# dominant. Whenever any of these is empty, linear_note says why. clusters and max_density
# are those of the last saved snapshot.
COLUMNS = (
    "status", "message", "t_final", "l_measured", "l_predicted", "l_initial",
    "rate_measured", "rate_predicted", "linear_note", "clusters", "max_density", "wall_time_s",
)
# The same for a token run: clusters, mean_direction |x̄| and close_pairs (the fraction of
# pairs with ⟨x_i,x_j⟩ > 0.999) of the last saved snapshot (spherepde.particles.diagnostics).
TOKEN_COLUMNS = ("status", "message", "t_final", "clusters", "mean_direction", "close_pairs", "wall_time_s")
SUMMARY = "summary.csv"


@dataclass(frozen=True)
class Run:
    """One combination: its file name (without .h5), swept values and resolved configuration."""

    name: str
    values: dict
    config: RunConfig | TokenConfig

    @property
    def tokens(self) -> bool:
        return isinstance(self.config, TokenConfig)


def parse(raw: dict) -> tuple[dict, dict[str, list]]:
    """Split a sweep file's mapping into the base configuration and the axes {dotted path: values}.

    ``[sweep]`` keys may be quoted paths (``"model.beta" = [...]``) or TOML dotted keys.
    """
    if not isinstance(raw, dict) or "sweep" not in raw:
        raise InputError('the sweep file has no [sweep] table: add one, e.g. [sweep] "model.beta" = [3, 5, 9]')
    base = {k: v for k, v in raw.items() if k != "sweep"}
    table = raw["sweep"]
    if not isinstance(table, dict) or not table:
        raise InputError("[sweep] must be a non-empty table of dotted paths to lists of values")
    axes = {}

    def flatten(prefix: str, table: dict):
        for key, value in table.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                flatten(path, value)
            else:
                axes[path] = value

    flatten("", table)
    for path, values in axes.items():
        if len(path.split(".")) != 2:
            raise InputError(f"sweep key {path!r} is not allowed: use a dotted path section.key, e.g. 'model.beta'")
        if not isinstance(values, list) or not values:
            raise InputError(f"sweep.{path} = {values!r} is not allowed: use a non-empty list of values")
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            raise InputError(f"sweep.{path} lists the value {repeated[0]!r} twice")
    return base, axes


def combinations(axes: dict[str, list]) -> list[dict]:
    """Every combination {dotted path: value} of the axes, the last axis varying fastest."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def apply(base: dict, values: dict) -> dict:
    """The base configuration with the swept values set (a new mapping; ``base`` is unchanged)."""
    raw = {section: dict(table) if isinstance(table, dict) else table for section, table in base.items()}
    for path, value in values.items():
        section, key = path.split(".")
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise InputError(f"[{section}] must be a table, not {table!r}")
        table[key] = value
    return raw


def _label(value) -> str:
    if isinstance(value, list):
        return ("+" if any(isinstance(v, list) for v in value) else ",").join(map(_label, value))
    if isinstance(value, float) and float(f"{value:g}") == value:
        return f"{value:g}"
    return re.sub(r"[^\w.,+-]", "-", str(value))


def run_name(values: dict) -> str:
    """``key=value`` pairs joined by ``_``; a key is its last component unless two swept keys share it."""
    last = [path.split(".")[-1] for path in values]
    return "_".join(
        f"{short if last.count(short) == 1 else path}={_label(value)}"
        for (path, value), short in zip(values.items(), last)
    )


def plan(base: dict, axes: dict[str, list]) -> list[Run]:
    """All runs of a sweep, each checked like a run's configuration (InputError naming the combination)."""
    manifolds = {}
    runs = []
    for values in combinations(axes):
        name = run_name(values)
        try:
            raw = apply(base, values)
            cfg = config.resolve_any(raw)
            if isinstance(cfg, RunConfig) and "threads" not in raw.get("numerics", {}):  # N workers share N cores
                cfg = replace(cfg, numerics=replace(cfg.numerics, threads=1))
            if isinstance(cfg, TokenConfig):
                initial_points(cfg)
            else:
                if cfg.domain not in manifolds:
                    manifolds[cfg.domain] = manifold_from_config(cfg.domain)
                initial_coefficients(cfg.initial, manifolds[cfg.domain])
        except InputError as exc:
            where = ", ".join(f"{path} = {value!r}" for path, value in values.items())
            raise InputError(f"sweep combination {where} (run {name}): {exc}") from None
        runs.append(Run(name, values, cfg))
    names = [run.name for run in runs]
    clash = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if clash is not None:
        raise InputError(f"two sweep combinations get the same run name {clash!r}: make the swept values distinct")
    return runs


def load(path: str | Path) -> list[Run]:
    """The checked runs of a sweep file."""
    return plan(*parse(config.read_toml(path, "sweep file")))


def file_state(path: Path, config_text: str) -> str:
    """What a sweep does with a run file: 'new' (start), 'resume' or 'done' (finished or failed).

    InputError when the file is not a run of this configuration: a sweep never overwrites it.
    """
    if not path.exists():
        return "new"
    try:
        run = io.read_run(path)
    except InputError as exc:
        raise InputError(f"{exc}; it is in the way of the sweep's run: remove it or choose another --out") from None
    if run["config_text"] != config_text:
        raise InputError(f"{str(path)!r} holds a run of another configuration: remove it or choose another --out")
    if run["status"] in ("finished", "failed"):
        return "done"
    return "resume" if len(run["t"]) else "new"


def outcome(path: str | Path) -> dict:
    """The outcome columns of summary.csv (all but wall_time_s) read from a run file."""
    run = io.read_run(path)
    diag = run["diagnostics"]
    row = {
        "status": run["status"],
        "message": run["message"],
        "t_final": float(run["t"][-1]),  # a finished or failed run has saved t = 0 at least
        "clusters": int(diag["clusters"][-1]),
    }
    cfg = config.loads(run["config_text"])
    if isinstance(cfg, TokenConfig):
        last = {key: float(diag[key][-1]) for key in ("mean_direction", "close_pairs")}
        return {**row, **last}
    return {**row, "max_density": float(diag["max_density"][-1]), **_linear_columns(path, cfg.attention())}


def _linear_columns(path: str | Path, model: AttentionModel) -> dict:
    """The linear-theory columns of the PDE run ``path`` of ``model``: prediction, measurement, linear_note."""
    theory = model.linear_theory()
    if theory is None:
        return {"linear_note": model.linear_theory_gap()}
    top = linear.dominant_degree(theory.beta, model.d, model.name)
    rate = theory.speed * linear.growth_rates(theory.beta, model.d, model.name, top)[top]
    row = {"l_predicted": top, "rate_predicted": float(rate)}
    try:
        result = compare.compare_run(path)
    except InputError as exc:  # NoExponentialWindow or too few snapshots
        return {**row, "linear_note": str(exc)}
    degrees = {entry["degree"]: entry for entry in result["degrees"]}
    measured = degrees[top]["measured_rate"] if top in degrees else None
    return {
        **row,
        "l_measured": result["dominant_degree"]["measured"],
        "l_initial": result["dominant_degree"]["expected"],
        "rate_measured": "" if measured is None else measured,
        "linear_note": "" if measured is not None else f"degree {top} has no fitted rate in the window",
    }


def execute(cfg: RunConfig | TokenConfig, path: str) -> dict:
    """Run or resume one combination (a task on a worker); its outcome columns."""
    start = time.perf_counter()
    state = file_state(Path(path), config.dumps(cfg))
    if state != "done":
        try:
            solver.run(cfg, path, resume=state == "resume", overwrite=state == "new", progress=False)
        except NumericalFailure:
            pass  # the file says failed, and why
    return {**outcome(path), "wall_time_s": time.perf_counter() - start}


@contextlib.contextmanager
def client(scheduler: str | None = None, workers: int | None = None):
    """A Dask client of the scheduler at ``scheduler``, else of a local cluster of ``workers``
    processes with one thread each (default: one per core)."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with _connect(scheduler) as remote:
            yield remote
        return
    with LocalCluster(
        n_workers=workers or os.cpu_count(), threads_per_worker=1, processes=True,
        dashboard_address=None, silence_logs=logging.ERROR,
    ) as local, Client(local) as local_client:
        yield local_client


#: Seconds within which a Dask scheduler must answer.
SCHEDULER_TIMEOUT = 10.0


def _connect(scheduler: str, timeout: float = SCHEDULER_TIMEOUT):
    """A client of the scheduler at ``scheduler``, or InputError within about ``timeout`` seconds: the connection
    is made in a daemon thread, so that a server that accepts and never answers cannot hang the sweep, and any
    failure (an HTTP server answering garbage raises MemoryError deep in the protocol) is one line."""
    from distributed import Client

    outcome: dict = {}

    def connect():
        try:
            outcome["client"] = Client(scheduler, timeout=f"{timeout}s")
        except BaseException as exc:  # noqa: BLE001 - reported below as one line
            outcome["error"] = exc

    thread = threading.Thread(target=connect, daemon=True, name="spherepde-connect")
    thread.start()
    thread.join(timeout + 2.0)
    if "client" in outcome:
        return outcome["client"]
    why = "no answer" if thread.is_alive() else f"{type(outcome['error']).__name__}: {outcome['error']}"
    raise InputError(f"cannot reach the Dask scheduler {scheduler!r} within {timeout:g} s ({why})")


def _make_directory(out: Path):
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output directory {str(out)!r} cannot be created: {exc.strerror}") from None


def _log(line: str):
    print(line, file=sys.stderr, flush=True)


def run(runs: list[Run], out: str | Path, scheduler: str | None = None, workers: int | None = None, log=_log) -> list[dict]:
    """Execute a sweep's runs into the directory ``out`` on Dask; the rows of summary.csv.

    ``log`` gets one line per run as it ends. Raises InputError before any run starts when
    ``out`` holds a file in the way of a run (see :func:`file_state`).
    """
    out = Path(out).resolve()  # workers may run elsewhere: absolute paths
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file: name a directory for the run files and {SUMMARY}")
    paths = {job.name: out / f"{job.name}.h5" for job in runs}
    states = {job.name: file_state(paths[job.name], config.dumps(job.config)) for job in runs}
    earlier = _wall_times(out / SUMMARY)
    columns = ["run", *runs[0].values, *(TOKEN_COLUMNS if runs[0].tokens else COLUMNS)]
    rows = {}

    def record(job: Run, result: dict, how: str):
        rows[job.name] = {"run": job.name, **job.values, **result}
        _write_csv(out / SUMMARY, columns, [rows[j.name] for j in runs if j.name in rows])
        log(f"[{len(rows)}/{len(runs)}] {job.name}: {how}{_describe(rows[job.name])}")

    for job in runs:
        if states[job.name] == "done":
            record(job, {**outcome(paths[job.name]), "wall_time_s": earlier.get(job.name, "")}, "earlier run, ")
    todo = [job for job in runs if states[job.name] != "done"]
    if todo:
        from distributed import as_completed

        with client(scheduler, min(workers or os.cpu_count() or 1, len(todo))) as dask:
            _make_directory(out)  # only once the scheduler answers: a refused sweep leaves no empty directory
            futures = {dask.submit(execute, job.config, str(paths[job.name]), pure=False): job for job in todo}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # whatever a task raised, on whatever worker: that run failed, the rest go on
                    result = {"status": "failed", "message": f"{type(exc).__name__}: {exc}"}
                record(job, result, "resumed, " if states[job.name] == "resume" else "")
    return [rows[job.name] for job in runs]


def _describe(row: dict) -> str:
    if row["status"] != "finished":
        return f"{row['status']}: {row['message']}"
    wall = f" in {row['wall_time_s']:.1f} s" if isinstance(row["wall_time_s"], float) else ""
    done = f"finished at t = {row['t_final']:g}{wall}; "
    if "mean_direction" in row:
        return (done + f"{row['clusters']} cluster(s), |mean x| = {row['mean_direction']:.3g}, "
                f"close pairs {row['close_pairs']:.3g} at the end")
    measured, predicted = (row.get(key, "") for key in ("l_measured", "l_predicted"))
    return (done + f"dominant degree measured {'-' if measured == '' else measured}, "
            f"predicted {'-' if predicted == '' else predicted}; {row['clusters']} cluster(s) at the end")


def _write_csv(path: Path, columns: list[str], rows: list[dict]):
    """Write the table to a temporary file and rename it: a reader never sees half a table."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _wall_times(path: Path) -> dict[str, float]:
    """Wall times of the runs listed in an earlier summary.csv (none when there is none)."""
    try:
        with open(path, newline="") as fh:
            return {row["run"]: float(row["wall_time_s"]) for row in csv.DictReader(fh) if row.get("wall_time_s")}
    except (OSError, KeyError, ValueError):
        return {}
