"""What every validation script shares: its command line, in-memory runs, and its result files.

Each script writes ``<name>.md`` (the table a reader looks at), ``<name>.json`` (the numbers the
slow tests check) and ``<name>.png`` into ``--out`` (default validation/results/<name>/).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from spherepde import config, solver

RESULTS = Path(__file__).resolve().parent / "results"


def arguments(doc: str, name: str, quick: str | None = None, parser: argparse.ArgumentParser | None = None):
    """The parsed command line: ``--out DIR`` (created) and, when ``quick`` describes it, ``--quick``."""
    parser = parser or argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / name, help=f"result directory (default results/{name})")
    if quick:
        parser.add_argument("--quick", action="store_true", help=quick)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def run(raw: dict) -> dict:
    """A PDE or token run of the configuration mapping ``raw``, in memory (spherepde.solver.simulate):
    the mapping io.read_run gives for a run file, the per-snapshot fields under ``fields``; a run that
    fails keeps its snapshots (status "failed")."""
    return solver.simulate(config.resolve_any(raw))


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def write(out: Path, name: str, markdown: str, summary: dict, figure=None):
    """``name``.md, ``name``.json (``summary``, numpy values made plain) and ``name``.png (``figure``, a matplotlib figure)."""
    (out / f"{name}.md").write_text(markdown)
    (out / f"{name}.json").write_text(json.dumps(_plain(summary), indent=1) + "\n")
    if figure is not None:
        figure.savefig(out / f"{name}.png", dpi=110)
    print(markdown)
