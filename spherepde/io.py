"""Run files (HDF5, design.md §2).

Layout: ``/t`` (n_t,), ``/density`` (n_t, *grid), ``/grid/theta`` [, ``/grid/phi``],
``/grid/weights`` (grid, summing to 1), ``/diagnostics/<name>`` (n_t, …), root
attributes ``config`` (resolved TOML), ``version``, ``manifold``. The state
needed by ``--resume`` is in ``/checkpoint`` (``coefficients`` as (n, 2) real
and imaginary parts; attributes ``t``, ``n_saved``, stepper state). The file is
flushed after every snapshot, so an interrupted run leaves every snapshot
written so far readable.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .errors import InputError


def check_writable(path: str | Path):
    """Raise InputError unless a file can be created at ``path``."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"output path {str(path)!r} is a directory: name a file, e.g. run.h5")
    if not parent.is_dir():
        raise InputError(f"output path {str(path)!r} cannot be written: directory {str(parent)!r} does not exist")
    probe = parent / f".{path.name}.probe"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InputError(f"output path {str(path)!r} cannot be written: {exc.strerror}") from None


class RunFile:
    """Writer of one run file; snapshots are appended and flushed one at a time."""

    def __init__(self, path: str | Path, h5: h5py.File):
        self.path = Path(path)
        self._h5 = h5

    @classmethod
    def create(cls, path, manifold, config_text: str) -> "RunFile":
        check_writable(path)
        h5 = h5py.File(path, "w")
        h5.attrs["config"] = config_text
        h5.attrs["version"] = __version__
        h5.attrs["manifold"] = manifold.kind
        grid = h5.create_group("grid")
        for name, values in manifold.grid.items():
            grid[name] = values
        grid["weights"] = manifold.weights
        h5.create_dataset("t", shape=(0,), maxshape=(None,), dtype=float)
        h5.create_dataset(
            "density", shape=(0, *manifold.grid_shape), maxshape=(None, *manifold.grid_shape),
            dtype=float, chunks=(1, *manifold.grid_shape),
        )
        h5.create_group("diagnostics")
        h5.flush()
        return cls(path, h5)

    @classmethod
    def reopen(cls, path, config_text: str) -> "RunFile":
        """Open an existing run for ``--resume``; the configuration must be the one it was started with."""
        try:
            h5 = h5py.File(path, "r+")
        except (OSError, FileNotFoundError) as exc:
            raise InputError(f"cannot resume {str(path)!r}: it is not a readable run file ({exc})") from None
        if h5.attrs.get("config") != config_text:
            h5.close()
            raise InputError(f"cannot resume {str(path)!r}: it was started with a different configuration")
        if "checkpoint" not in h5:
            h5.close()
            raise InputError(f"cannot resume {str(path)!r}: it holds no checkpoint")
        return cls(path, h5)

    def append(self, t: float, density: np.ndarray, diagnostics: dict):
        h5 = self._h5
        n = h5["t"].shape[0]
        h5["t"].resize((n + 1,))
        h5["t"][n] = t
        h5["density"].resize((n + 1, *h5["density"].shape[1:]))
        h5["density"][n] = density
        group = h5["diagnostics"]
        for name, value in diagnostics.items():
            value = np.asarray(value)
            if name not in group:
                group.create_dataset(name, shape=(0, *value.shape), maxshape=(None, *value.shape), dtype=value.dtype)
            group[name].resize((n + 1, *value.shape))
            group[name][n] = value

    def checkpoint(self, t: float, coefficients: np.ndarray, stepper_state: dict):
        """Store the state that ``--resume`` continues from, then flush the file."""
        h5 = self._h5
        parts = np.stack([coefficients.real, coefficients.imag], axis=-1)
        if "checkpoint" not in h5:
            h5.create_dataset("checkpoint/coefficients", data=parts)
        else:
            h5["checkpoint/coefficients"][...] = parts
        attrs = h5["checkpoint"].attrs
        attrs["t"] = t
        attrs["n_saved"] = h5["t"].shape[0]
        for key, value in stepper_state.items():
            attrs[f"stepper_{key}"] = value
        h5.flush()

    def read_checkpoint(self) -> tuple[float, np.ndarray, dict, int]:
        group = self._h5["checkpoint"]
        parts = group["coefficients"][...]
        state = {k[len("stepper_"):]: v for k, v in group.attrs.items() if k.startswith("stepper_")}
        n_saved = int(group.attrs["n_saved"])
        self.truncate(n_saved)
        return float(group.attrs["t"]), parts[..., 0] + 1j * parts[..., 1], state, n_saved

    def initial_diagnostic(self, name: str) -> float:
        """The diagnostic ``name`` of the first snapshot (t = 0)."""
        return float(self._h5["diagnostics"][name][0])

    def truncate(self, n: int):
        """Drop snapshots after the n-th (written after the checkpoint that resume starts from)."""
        h5 = self._h5
        for ds in [h5["t"], h5["density"], *h5["diagnostics"].values()]:
            if ds.shape[0] > n:
                ds.resize((n, *ds.shape[1:]))

    def set_status(self, status: str, message: str = ""):
        self._h5.attrs["status"] = status
        self._h5.attrs["message"] = message
        self._h5.flush()

    def close(self):
        self._h5.close()


def _open(path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise InputError(f"run file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise InputError(f"{str(path)!r} is not a readable HDF5 run file ({exc})") from None


def read_run(path) -> dict:
    """Everything of a run file but the densities: t, config (dict), grid, diagnostics, attributes."""
    with _open(path) as h5:
        if "t" not in h5 or "config" not in h5.attrs:
            raise InputError(f"{str(path)!r} is not a spherepde run file (no /t or no config)")
        return {
            "t": h5["t"][...],
            "config": tomllib.loads(h5.attrs["config"]),
            "config_text": h5.attrs["config"],
            "grid": {k: v[...] for k, v in h5["grid"].items()},
            "diagnostics": {k: v[...] for k, v in h5["diagnostics"].items()},
            "status": h5.attrs.get("status", ""),
            "message": h5.attrs.get("message", ""),
            "version": h5.attrs.get("version", ""),
        }


def read_density(path, index: int) -> np.ndarray:
    """The density snapshot number ``index`` (negative counts from the end)."""
    with _open(path) as h5:
        return h5["density"][index]
