"""Shared helpers: small runs written to temporary files."""
import numpy as np
import pytest

from spherepde import config, io, solver


def make_config(model="SA", beta=9.0, kind="sphere", lmax=24, t_end=1.0, save_every=0.25, initial=None, **time):
    raw = {
        "model": {"name": model, "beta": beta},
        "domain": {"kind": kind, "lmax": lmax},
        "time": {"t_end": t_end, "save_every": save_every, **time},
        "initial": initial or {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": 0},
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
