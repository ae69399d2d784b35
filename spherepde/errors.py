"""The ways a run can fail, with the exit codes of the command line."""
from __future__ import annotations


class InputError(ValueError):
    """Invalid input (config, arguments, files): exit code 2, one line on stderr.

    ``key`` is the configuration key path the error is about (e.g. ``"initial.kappa"``), when
    there is one: the message names it too, ``key`` gives it to programs."""

    exit_code = 2

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class NumericalFailure(RuntimeError):
    """The computation cannot go on faithfully (NaN, lost resolution): exit code 1."""

    exit_code = 1


class StorageFailure(RuntimeError):
    """The run file cannot be written on (disk full, I/O error): exit code 1; the file keeps its last
    saved snapshot, ``/status`` says why, and ``--resume`` continues once the cause is removed."""

    exit_code = 1
