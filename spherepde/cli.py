"""The ``spherepde`` command (docs/cli.md).

Exit codes: 0 success, 2 invalid input (one line on stderr), 1 numerical failure
(the run file keeps the last good state), 130 interrupted (checkpoint kept).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from . import __version__
from .errors import InputError, NumericalFailure, StorageFailure


def _cmd_run(args) -> int:
    from . import config, solver

    resolver = config.resolve_particles if args.command == "particles" else config.resolve
    if args.resume and args.overwrite:
        raise InputError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    summary = solver.run(config.load(args.config, resolver), args.out, resume=args.resume,
                         progress=False if args.quiet else None, overwrite=args.overwrite, reads=[args.config])
    print(f"finished: t = {summary['t']:g}, {summary['snapshots']} snapshots, {summary['steps']} steps, "
          f"{summary['wall_time']:.1f} s -> {args.out}", file=sys.stderr)
    return 0


def _cmd_linear(args) -> int:
    from . import linear

    if args.phase_diagram:
        if args.out is None or args.beta_max is None:
            raise InputError("--phase-diagram needs --beta-max B and --out FIG")
        if args.beta_max <= 0:
            raise InputError(f"--beta-max {args.beta_max:g} is not allowed: the diagram runs over 0 < beta <= beta-max, "
                             "use a positive value")
        linear.plot_phase_diagram(args.dim, args.beta_max, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
        return 0
    if args.beta is None:
        raise InputError("--beta B is required (or use --phase-diagram)")
    report = linear.report(args.beta, args.dim, args.model, lmax=args.lmax, kappa=args.kappa)
    if args.json and report["rate_exponent"]:  # growth_rates must be the rates themselves
        raise InputError(
            f"--json cannot give the USA growth rates at beta = {args.beta:g}: they exceed the double range "
            f"(about e^{report['rate_exponent']:g}); use --model SA (the same dominant degree, rates divided by h_0) "
            f"or the text output, which prints them in units of e^{report['rate_exponent']:g}"
        )
    print(json.dumps(report) if args.json else linear.format_report(report))
    return 0


def _cmd_compare(args) -> int:
    from . import compare, io

    if args.plot:
        io.check_figure_path(args.plot)  # before the run file is read
    result = compare.compare_run(args.run)
    if args.plot:
        compare.plot_comparison(result, args.plot)
    print(json.dumps(result) if args.json else compare.format_comparison(result))
    return 0


def _cmd_plot(args) -> int:
    from . import plot

    for path in plot.plot_run(args.run, args.out):
        print(path)
    return 0


def _cmd_sweep(args) -> int:
    from . import sweep

    if args.scheduler is not None and args.workers is not None:
        raise InputError("--workers goes with the local cluster; a --scheduler brings its own workers")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers} is not allowed: use a positive number")
    runs = sweep.load(args.sweep)
    try:
        rows = sweep.run(runs, args.out, scheduler=args.scheduler, workers=args.workers)
    except KeyboardInterrupt:
        print("spherepde: sweep interrupted; start it again to resume the unfinished runs", file=sys.stderr)
        return 130
    failed = sum(row["status"] != "finished" for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} runs finished -> {Path(args.out) / sweep.SUMMARY}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_demo(args) -> int:
    from . import demo

    demo.main(Path(args.out))
    return 0


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use a finite number")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), as for every other invalid input."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spherepde", description="Mean-field PDE of self-attention dynamics on S², S¹ and S^(d-1) (zonal).")
    parser.add_argument("--version", action="version", version=f"spherepde {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, what, sections in (("run", "a simulation", ""), ("particles", "the n-token system", ": [model], [particles], [time], [diagnostics]")):
        p = sub.add_parser(name, help=f"run {what} from a TOML config into an HDF5 file")
        p.add_argument("config", help=f"configuration file (TOML{sections})")
        p.add_argument("--out", required=True, help="output run file (HDF5)")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
        p.add_argument("--overwrite", action="store_true", help="replace an existing run file at --out (never any other file)")
        p.add_argument("--quiet", action="store_true", help="no progress output")
        p.set_defaults(func=_cmd_run)

    p = sub.add_parser("linear", help="linear theory around the uniform state: growth rate per degree")
    p.add_argument("--beta", type=_finite, help="inverse temperature β")
    p.add_argument("--dim", type=int, default=3, help="ambient dimension d of S^(d-1) (default 3)")
    p.add_argument("--model", default="SA", type=str.upper, help="SA or USA (default SA)")
    p.add_argument("--lmax", type=int, help="largest degree listed")
    p.add_argument("--kappa", type=_finite, help="add diffusion (1/κ)Δ (noisy tokens)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--phase-diagram", action="store_true", help="plot the dominant degree l*(β) with its switch points")
    p.add_argument("--beta-max", type=_finite, help="with --phase-diagram: largest β")
    p.add_argument("--out", help="with --phase-diagram: figure file")
    p.set_defaults(func=_cmd_linear)

    p = sub.add_parser("compare", help="measured vs predicted growth rates of a run")
    p.add_argument("run", help="run file (HDF5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", help="also draw the comparison into this figure file")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("plot", help="figures of a run")
    p.add_argument("run", help="run file (HDF5)")
    p.add_argument("--out", required=True, help="directory for the figures")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("sweep", help="every combination of the values in a [sweep] table, on Dask")
    p.add_argument("sweep", help="sweep file: a base configuration plus a [sweep] table (TOML)")
    p.add_argument("--out", required=True, help="directory for the run files and summary.csv")
    p.add_argument("--scheduler", help="address of a Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per core)")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("demo", help="the main job: SA at β = 9 on S², figures and a summary")
    p.add_argument("--out", default="out/demo", help="directory for the run file and figures (default out/demo)")
    p.set_defaults(func=_cmd_demo)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _after_interrupt(args) -> str:
    """What an interruption left: a run file to resume, or nothing."""
    if args.command not in ("run", "particles"):
        return "nothing was lost"
    from .io import run_status

    if run_status(args.out) is None:
        return f"stopped before the run file {args.out!r} was written (start it again)"
    return f"the run file {args.out!r} keeps a checkpoint (continue with --resume)"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"spherepde: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except NumericalFailure as exc:
        print(f"spherepde: numerical failure: {exc}", file=sys.stderr)
        return exc.exit_code
    except StorageFailure as exc:
        print(f"spherepde: storage failure: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"spherepde: interrupted; {_after_interrupt(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def console():
    """Entry point of the installed ``spherepde`` script."""
    sys.exit(main())
