"""Run files (HDF5, docs/file-format.md), written so that a crash never leaves an unreadable file.

One writer for both kinds of run. Layout: ``/t`` (n_t,); the per-snapshot fields at the root,
``/density`` ``(n_t, *grid)`` of a PDE run or ``/points`` (n_t, n, d) of a token run;
``/diagnostics/<name>`` (n_t, …); fixed groups written once, e.g. ``/grid/theta`` [,
``/grid/phi``], ``/grid/weights`` (grid, summing to 1); root attributes ``config`` (resolved
TOML), ``version``, ``manifold`` (sphere, circle or particles); ``/status`` and ``/message``
(byte strings: running, finished, failed, interrupted, and why); ``/checkpoint`` (what
``--resume`` needs: the state, e.g. ``coefficients`` or ``points``, in two slots, and ``meta``).
Every root dataset but ``/status`` and ``/message``, and every dataset in ``/diagnostics``,
has one row per save time; every other group is fixed.

Crash safety. Every dataset is allocated at full size when the file is created, so that
while a run goes on only raw data is written in place and the HDF5 structure (metadata)
never changes. The checkpoint has two slots; a snapshot counts as saved once the slot
holding the state after it is complete and the one-word pointer ``/checkpoint/current``
names that slot, the last write of every snapshot. Changes of structure (creating the file,
trimming a stopped run to its saved snapshots, growing it again for ``--resume``) are made
in a temporary file that then replaces the run file (``os.replace``), its disk blocks reserved
up front (``posix_fallocate``) so that a full disk is found before the run starts. Readers use the
saved count of the current slot: entries of an unfinished file beyond it are not data; they open
files without HDF5's file lock, so a running file can be read, while writers hold an exclusive
lock (:class:`RunLock`) for the whole run.

Safety of what is already on disk (:func:`check_output`): a run never writes over a file that is not
a spherepde run file, over a file the command reads, or over an existing run without ``overwrite``.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tomllib
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .errors import InputError

_MESSAGE_BYTES = 1024


def check_writable(path: str | Path):
    """Raise InputError unless a file can be created at ``path``."""
    raw = os.fspath(path)
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or raw.endswith(("/", os.sep)):
        raise InputError(f"output path {raw!r} is a directory: name a file, e.g. {raw.rstrip('/')}/run.h5")
    if not parent.is_dir():
        raise InputError(f"output path {str(path)!r} cannot be written: directory {str(parent)!r} does not exist")
    probe = parent / f".{path.name}.probe"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InputError(f"output path {str(path)!r} cannot be written: {exc.strerror}") from None


def _is_run(h5: h5py.File) -> bool:
    """Whether an open HDF5 file is a spherepde run file (it has /t and the config attribute)."""
    return "t" in h5 and "config" in h5.attrs


def run_status(path: str | Path) -> str | None:
    """The ``/status`` of the spherepde run file at ``path``; None if it is not one (or unreadable)."""
    try:
        with h5py.File(path, "r", locking=False) as h5:
            if not _is_run(h5):
                return None
            return h5["status"][()].decode(errors="replace") if "status" in h5 else "unknown"
    except (OSError, KeyError, ValueError):
        return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def check_output(path: str | Path, *, reads=(), resume: bool = False, overwrite: bool = False):
    """Refuse (InputError, before any write) to write a run to ``path`` when that would destroy something:
    a directory, a file the command reads (``reads``: the config, an initial-condition file), anything that
    is not a spherepde run file, or — unless ``overwrite`` — an existing run (``resume`` continues it); also a
    foreign file where the run keeps its temporary file (``path`` + ".tmp")."""
    path = Path(path)
    check_writable(path)
    for other in reads:
        if other is not None and _same_file(path, Path(other)):
            raise InputError(f"output path {str(path)!r} is {str(other)!r}, which this run reads: choose another output file")
    tmp = _temporary(path)
    if tmp.exists() and run_status(tmp) is None:
        raise InputError(f"{str(tmp)!r} exists and is not a spherepde file: spherepde keeps its temporary file "
                         "there while it writes; move it away")
    if resume:
        if not path.exists():
            raise InputError(f"cannot resume {str(path)!r}: it does not exist (start the run without --resume)")
        return
    if path.exists():
        status = run_status(path)
        if status is None:
            raise InputError(f"output path {str(path)!r} exists and is not a spherepde run file: refusing to replace it "
                             "(choose another output file)")
        if not overwrite:
            raise InputError(f"output path {str(path)!r} holds a spherepde run (status {status}): use --overwrite to "
                             "replace it or --resume to continue it")


class RunLock:
    """An exclusive lock on writing the run file ``path`` for the life of a run (``fcntl.flock`` on the hidden
    file ``.<name>.lock`` beside it, which names the holder's process id). The operating system releases it
    when the holder exits, however it exits, so a lock left by a dead process never blocks."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path.with_name(f".{path.name}.lock")
        self.run_file = path
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(f"{str(self.run_file)!r} is being written by another spherepde process (pid {holder}): "
                             "wait for it to end, or write to another file") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self._fd)  # releases the lock
            self._fd = None


def _format_bytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _reserve(path: Path, size: int, what: str):
    """Allocate the disk blocks of the file ``path`` (apparent size ``size``) now: InputError if they do not fit."""
    free = shutil.disk_usage(path.parent if str(path.parent) else ".").free
    try:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system without fallocate: checked free space only
            if size > free:
                raise InputError(f"{what} needs {_format_bytes(size)} of disk and {_format_bytes(free)} are free") from None
            return
        if exc.errno == errno.ENOSPC:
            raise InputError(f"{what} needs {_format_bytes(size)} of disk and only {_format_bytes(free)} are free: "
                             "free space, or save fewer snapshots") from None
        raise


@contextlib.contextmanager
def _building(tmp: Path, what: str):
    """Write a temporary file: removed again if writing it fails or is interrupted; a full disk is one line."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and (exc.errno == errno.ENOSPC or "No space left" in str(exc)):
            raise InputError(f"{what}: the disk is full ({exc.strerror or exc})") from None
        raise


@contextlib.contextmanager
def _damaged(path):
    """h5py errors while reading ``path`` as one InputError line."""
    try:
        yield
    except InputError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise InputError(f"run file {str(path)!r} is damaged or not a spherepde run file ({exc})") from None


def check_figure_path(path: str | Path) -> Path:
    """``path`` as a Path; InputError unless a figure can be written there in the format of its suffix."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    formats = FigureCanvasAgg.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        raise InputError(f"figure path {str(path)!r} has no known format suffix: use one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    check_writable(path)
    return path


def output_directory(out: str | Path, purpose: str) -> Path:
    """The directory ``out`` (``--out``) for ``purpose``, created if missing; InputError when it is a file or cannot
    be created."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file: name a directory for {purpose}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {str(out)!r} cannot be created: {exc.strerror}") from None
    return out


def _preallocated(group, name: str, shape: tuple, dtype, fill=None):
    """A contiguous dataset whose space is allocated now (so later writes change no metadata)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return group.create_dataset(
        name, shape=shape, dtype=dtype, dcpl=dcpl, track_times=False,
        fillvalue=fill, fill_time="alloc" if fill is not None else "never",
    )


def _fill(dtype) -> object:
    return np.nan if np.issubdtype(dtype, np.floating) else -1


class RunFile:
    """Writer of one run file (a sink of the run loop): ``create`` it (or ``reopen`` a stopped one),
    ``append`` a snapshot, then ``checkpoint`` the state after it, ``finish``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self.n_saved = self._pending = 0

    @property
    def _h5(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("the run file is not open: create() or reopen() it first")
        return self._file

    def _open(self, h5: h5py.File) -> "RunFile":
        self._file = h5
        self.n_saved = self._pending = int(self._meta()[1])
        return self

    # structure (made in a temporary file, then renamed) -----------------------------
    def create(self, config_text: str, n_times: int, fields: dict, diagnostics: dict, state: dict,
               stepper_keys, attrs: dict | None = None, fixed: dict | None = None) -> "RunFile":
        """Make the file, for ``n_times`` snapshots.

        ``fields`` and ``diagnostics`` map names to one snapshot's value (giving shape and type)
        of the datasets ``/<name>`` and ``/diagnostics/<name>``; ``state`` maps names to the
        arrays ``--resume`` needs (``/checkpoint/<name>``, two slots); ``stepper_keys`` names
        the stepper's scalars; ``attrs`` are root attributes besides config and version;
        ``fixed`` maps group names to arrays written once (e.g. the grid).
        """
        path = self.path
        check_writable(path)
        stepper_keys = list(stepper_keys)
        tmp = _temporary(path)
        with _building(tmp, f"run file {str(path)!r}"), h5py.File(tmp, "w") as h5:
            h5.attrs["config"] = config_text
            h5.attrs["version"] = __version__
            for name, value in (attrs or {}).items():
                h5.attrs[name] = value
            for group_name, arrays in (fixed or {}).items():
                group = h5.create_group(group_name)
                for name, values in arrays.items():
                    group[name] = values
            _preallocated(h5, "t", (n_times,), float, np.nan)
            for name, value in fields.items():  # not pre-filled: fields can be large
                _preallocated(h5, name, (n_times, *np.shape(value)), float)
            group = h5.create_group("diagnostics")
            for name, value in diagnostics.items():
                value = np.asarray(value)
                _preallocated(group, name, (n_times, *value.shape), value.dtype, _fill(value.dtype))
            cp = h5.create_group("checkpoint")
            for name, value in state.items():
                _preallocated(cp, name, (2, *np.shape(value)), float, 0.0)
            cp.attrs["stepper_keys"] = ",".join(stepper_keys)
            meta = _preallocated(cp, "meta", (2, 2 + len(stepper_keys)), float, 0.0)
            meta[...] = 0.0
            current = _preallocated(cp, "current", (), np.int64, 0)
            current[()] = 0
            _preallocated(h5, "status", (), f"S{_MESSAGE_BYTES}", b"running")
            _preallocated(h5, "message", (), f"S{_MESSAGE_BYTES}", b"")
        with _building(tmp, f"run file {str(path)!r}"):
            _reserve(tmp, os.path.getsize(tmp), f"the run file {str(path)!r} ({n_times} snapshots)")
        os.replace(tmp, path)
        return self._open(h5py.File(path, "r+"))

    @classmethod
    def reopen(cls, path, config_text: str, n_times: int) -> "RunFile":
        """Open a stopped run for ``--resume`` (same configuration), grown back to ``n_times`` snapshots."""
        path = Path(path)
        with _open(path) as h5, _damaged(path):
            saved = h5.attrs.get("config")
            if saved != config_text:
                raise InputError(f"cannot resume {str(path)!r}: it was started with a different configuration "
                                 f"({_difference(saved, config_text)})")
            if "checkpoint" not in h5:
                raise InputError(f"cannot resume {str(path)!r}: it holds no checkpoint")
            grow = h5["t"].shape[0] != n_times or any(h5[name].compression for name in _fields(h5))
        if grow:  # to the full length, contiguous again: the run writes into allocated space only
            _rewrite(path, n_times, "running", "")
        return cls(path)._open(h5py.File(path, "r+"))

    def finish(self, status: str, message: str = ""):
        """Record how the run ended and close; a run that stopped early is trimmed to its saved snapshots,
        and with the root attribute ``compress_snapshots`` its per-snapshot fields are gzip-compressed (both
        in a copy that replaces the file; kept as it is when the disk has no room for the copy: readers use
        the saved count)."""
        compress = bool(self._h5.attrs.get("compress_snapshots", False))
        if compress or self.n_saved < self._h5["t"].shape[0]:
            self._h5.close()
            try:
                _rewrite(self.path, self.n_saved, status, message, compress)
                return
            except InputError:
                self._file = h5py.File(self.path, "r+")
        self._h5["status"][()] = status.encode()[:_MESSAGE_BYTES]
        self._h5["message"][()] = message.encode()[:_MESSAGE_BYTES]
        self._h5.close()

    # raw writes into allocated space ------------------------------------------------
    def append(self, t: float, fields: dict, diagnostics: dict):
        """Write snapshot number n_saved (it counts once the next checkpoint is written)."""
        h5, k = self._h5, self.n_saved
        h5["t"][k] = t
        for name, value in fields.items():
            h5[name][k] = value
        for name, value in diagnostics.items():
            h5["diagnostics"][name][k] = value
        self._pending = k + 1

    def checkpoint(self, t: float, state: dict, stepper_state: dict):
        """Store the state that ``--resume`` continues from in the free slot, then point to it."""
        h5 = self._h5
        cp = h5["checkpoint"]
        slot = 1 - int(cp["current"][()])
        n_saved = self._pending
        for name, value in state.items():
            cp[name][slot] = value
        keys = [k for k in cp.attrs["stepper_keys"].split(",") if k]
        cp["meta"][slot] = [t, n_saved, *(stepper_state[k] for k in keys)]
        h5.flush()
        cp["current"][()] = slot
        h5.flush()
        self.n_saved = n_saved

    def _meta(self) -> np.ndarray:
        cp = self._h5["checkpoint"]
        return cp["meta"][int(cp["current"][()])]

    def read_checkpoint(self) -> tuple[float, dict, dict]:
        """(t, state, stepper state) of the current slot."""
        with _damaged(self.path):
            return self._read_checkpoint()

    def _read_checkpoint(self) -> tuple[float, dict, dict]:
        cp = self._h5["checkpoint"]
        slot = int(cp["current"][()])
        state = {name: ds[slot] for name, ds in cp.items() if name not in ("meta", "current")}
        keys = [k for k in cp.attrs["stepper_keys"].split(",") if k]
        meta = cp["meta"][slot]
        return float(meta[0]), state, dict(zip(keys, map(float, meta[2:])))

    def initial_diagnostics(self) -> dict:
        """The diagnostics of the first snapshot (t = 0)."""
        with _damaged(self.path):
            return {name: ds[0] for name, ds in self._h5["diagnostics"].items()}

    def close(self):
        self._h5.close()


class MemoryRun:
    """A sink of the run loop that keeps everything in memory (tests, validation scripts): the same
    calls as :class:`RunFile`; :meth:`result` gives what :func:`read_run` gives for a file, plus the
    per-snapshot fields under ``fields``."""

    def __init__(self):
        self.n_saved = 0
        self._t: list[float] = []
        self._fields: dict[str, list] = {}
        self._diagnostics: dict[str, list] = {}
        self._info: dict = {}
        self._checkpoint: tuple | None = None

    def create(self, config_text: str, n_times: int, fields: dict, diagnostics: dict, state: dict,
               stepper_keys, attrs: dict | None = None, fixed: dict | None = None) -> "MemoryRun":
        self._fields = {name: [] for name in fields}
        self._diagnostics = {name: [] for name in diagnostics}
        grid = dict((fixed or {}).get("grid", {}))
        self._info = {"config_text": config_text, "config": tomllib.loads(config_text), "grid": grid,
                      "version": __version__, "manifold": (attrs or {}).get("manifold", ""), "attrs": dict(attrs or {}),
                      "status": "running", "message": ""}
        return self

    def append(self, t: float, fields: dict, diagnostics: dict):
        self._t.append(t)
        for name, value in fields.items():
            self._fields[name].append(np.array(value, copy=True))
        for name, value in diagnostics.items():
            self._diagnostics[name].append(np.array(value, copy=True))
        self.n_saved = len(self._t)

    def checkpoint(self, t: float, state: dict, stepper_state: dict):
        self._checkpoint = (t, state, stepper_state)

    def finish(self, status: str, message: str = ""):
        self._info.update(status=status, message=message)

    def result(self) -> dict:
        return {**self._info, "t": np.array(self._t), "fields": {k: np.array(v) for k, v in self._fields.items()},
                "diagnostics": {k: np.array(v) for k, v in self._diagnostics.items()}}


#: gzip level of compressed per-snapshot fields: with byte shuffling, 10⁶ tokens on S² shrink to 0.87 (iid
#: uniform) and 0.82 (clustered) of their size, at 0.5 s a snapshot (levels above 4 gain < 1 %).
GZIP_LEVEL = 4


def _rewrite(path: Path, n_total: int, status: str, message: str, compress: bool = False):
    """Replace the run file by a copy whose per-snapshot datasets hold n_total rows (saved ones kept), its
    per-snapshot fields gzip-compressed (one chunk a snapshot) with ``compress``, else contiguous and allocated."""
    tmp = _temporary(path)
    with _building(tmp, f"rewriting {str(path)!r}"), h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in _fixed_groups(src):
            src.copy(name, dst)
        cp = src["checkpoint"]
        n_saved = int(cp["meta"][int(cp["current"][()])][1])
        keep = min(n_saved, n_total)
        dst.create_group("diagnostics")
        fields = _fields(src)
        for name in ["t", *fields, *(f"diagnostics/{k}" for k in src["diagnostics"])]:
            ds = src[name]
            shape = (n_total, *ds.shape[1:])
            if compress and name in fields:
                out = dst.create_dataset(name, shape=shape, dtype=ds.dtype, chunks=(1, *ds.shape[1:]), shuffle=True,
                                         compression="gzip", compression_opts=GZIP_LEVEL, track_times=False)
            else:
                out = _preallocated(dst, name, shape, ds.dtype, None if name in fields else _fill(ds.dtype))
            for i in range(keep):  # one snapshot at a time: bounded memory
                out[i] = ds[i]
        src.copy("checkpoint", dst)
        _preallocated(dst, "status", (), f"S{_MESSAGE_BYTES}", status.encode()[:_MESSAGE_BYTES])
        _preallocated(dst, "message", (), f"S{_MESSAGE_BYTES}", message.encode()[:_MESSAGE_BYTES])
    with _building(tmp, f"rewriting {str(path)!r}"):
        _reserve(tmp, os.path.getsize(tmp), f"rewriting {str(path)!r} ({n_total} snapshots)")
    os.replace(tmp, path)


def _difference(saved, current: str) -> str:
    """The keys on which two resolved TOML configurations differ: 'section.key = a in the file, b now'."""
    def flat(text):
        try:
            table = tomllib.loads(text) if isinstance(text, str) else {}
        except tomllib.TOMLDecodeError:
            table = {}
        return {f"{section}.{key}": value for section, keys in table.items() if isinstance(keys, dict)
                for key, value in keys.items()}

    a, b = flat(saved), flat(current)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return "; ".join(f"{k} = {a.get(k, '(unset)')} in the file, {b.get(k, '(unset)')} now" for k in keys) or "not a TOML table"


def _fixed_groups(h5) -> list[str]:
    """Groups written once at creation (all but diagnostics and checkpoint)."""
    return [k for k, v in h5.items() if isinstance(v, h5py.Group) and k not in ("diagnostics", "checkpoint")]


def _fields(h5) -> list[str]:
    """Per-snapshot fields: the root datasets other than t, status and message."""
    return [k for k, v in h5.items() if isinstance(v, h5py.Dataset) and k not in ("t", "status", "message")]


def _open(path) -> h5py.File:
    """``path`` opened for reading, without HDF5's file lock: a running file can be read (its saved count
    says what is data)."""
    if Path(path).is_dir():
        raise InputError(f"{str(path)!r} is a directory, not a run file")
    try:
        return h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise InputError(f"run file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise InputError(f"{str(path)!r} is not a readable HDF5 run file ({exc})") from None


def _saved(h5) -> int:
    """Number of saved snapshots: the current checkpoint's count."""
    if "checkpoint" not in h5:
        return h5["t"].shape[0]
    cp = h5["checkpoint"]
    return int(cp["meta"][int(cp["current"][()])][1])


def read_run(path) -> dict:
    """Everything of a run file but the densities, cut to the saved snapshots."""
    with _open(path) as h5, _damaged(path):
        if not _is_run(h5):
            raise InputError(f"{str(path)!r} is not a spherepde run file (no /t or no config)")
        n = _saved(h5)
        text = h5.attrs["config"]
        text = text.decode() if isinstance(text, bytes) else str(text)
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"the config stored in {str(path)!r} is not valid TOML: {exc}") from None
        return {
            "t": h5["t"][:n],
            "config": config,
            "config_text": text,
            "grid": _grid(h5),
            "diagnostics": {k: v[:n] for k, v in h5["diagnostics"].items()} if "diagnostics" in h5 else {},
            "status": h5["status"][()].decode() if "status" in h5 else "",
            "message": h5["message"][()].decode() if "message" in h5 else "",
            "version": h5.attrs.get("version", ""),
            "manifold": h5.attrs.get("manifold", ""),
            "attrs": {key: value for key, value in h5.attrs.items() if key != "config"},
            "fields": _fields(h5),
        }


def _grid(h5) -> dict:
    return {k: v[...] for k, v in h5["grid"].items()} if "grid" in h5 else {}


def read_grid(path) -> dict:
    """The ``/grid`` of a run file (coordinate name → values, and the weights)."""
    with _open(path) as h5, _damaged(path):
        if not _is_run(h5):
            raise InputError(f"{str(path)!r} is not a spherepde run file (no /t or no config)")
        return _grid(h5)


def read_field(path, name: str, index: int) -> np.ndarray:
    """Saved snapshot number ``index`` (negative counts from the last saved one) of the field ``name``."""
    with _open(path) as h5, _damaged(path):
        if name not in _fields(h5):
            raise InputError(f"{str(path)!r} holds no per-snapshot field /{name} (it has {', '.join(_fields(h5)) or 'none'})")
        n = _saved(h5)
        if not -n <= index < n:
            raise InputError(f"snapshot {index} is not in {str(path)!r}, which holds {n}")
        return h5[name][index % n]


def read_density(path, index: int) -> np.ndarray:
    """The saved density snapshot number ``index`` of a PDE run (negative counts from the last one)."""
    return read_field(path, "density", index)


def read_points(path, index: int) -> np.ndarray:
    """The saved tokens (n, d) of snapshot number ``index`` of a token run (negative counts from the last one);
    for a run saved without its tokens (``save_points = false``) index -1 gives the checkpointed state, the
    tokens at the last saved time."""
    if index == -1:
        with _open(path) as h5, _damaged(path):
            if "points" not in _fields(h5) and "checkpoint" in h5 and "points" in h5["checkpoint"]:
                cp = h5["checkpoint"]
                return cp["points"][int(cp["current"][()])]
    return read_field(path, "points", index)
