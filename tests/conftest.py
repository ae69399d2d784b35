"""Shared helpers: small runs written to temporary files; the hypothesis profile of the suite."""
import numpy as np
import pytest
from hypothesis import settings

from spherepde import config, io, solver

# No per-example time limit: hypothesis' default deadline (200 ms) is wall-clock time, and on a shared machine an
# example that takes 50 ms can take 300 ms; a test fails on what it computes, never on how long it took.
settings.register_profile("spherepde", deadline=None)
settings.load_profile("spherepde")


def make_config(model="SA", beta=9.0, kind="sphere", lmax=24, t_end=1.0, save_every=0.25, initial=None,
                numerics=None, dim=None, **time):
    raw = {
        "model": {"name": model, "beta": beta},
        "domain": {"kind": kind, "lmax": lmax, **({} if dim is None else {"dim": dim})},
        "time": {"t_end": t_end, "save_every": save_every, **time},
        "initial": initial or {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": 0},
        "numerics": numerics or {},
    }
    return config.resolve(raw)


@pytest.fixture
def simulate(tmp_path):
    """simulate(cfg) -> run dict of io.read_run plus 'path'."""
    counter = iter(range(10**6))

    def _simulate(cfg):
        path = tmp_path / f"run{next(counter)}.h5"
        solver.run(cfg, path)
        run = io.read_run(path)
        run["path"] = path
        return run

    return _simulate


def rate_from_series(t, values):
    """Exponential rate of a positive series from its first and last samples."""
    values = np.abs(np.asarray(values))
    return float(np.log(values[-1] / values[0]) / (t[-1] - t[0]))


def interrupt_after(monkeypatch, updates: int):
    """Make the run loop raise KeyboardInterrupt, as Ctrl-C would, right after its ``updates``-th
    progress update (one per saved snapshot, the first at t = 0); returns the function undoing it."""
    original = solver._Progress.update
    calls = {"n": 0}

    def interrupting(self, *args):
        original(self, *args)
        calls["n"] += 1
        if calls["n"] == updates:
            raise KeyboardInterrupt

    monkeypatch.setattr(solver._Progress, "update", interrupting)
    return lambda: monkeypatch.setattr(solver._Progress, "update", original)
