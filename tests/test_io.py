"""Run files survive SIGKILL at any moment: readable, exact up to the last saved snapshot, resumable."""
import os
import signal
import subprocess
import sys
import time

import numpy as np

from spherepde import config, io, solver

CONFIG = """
[model]
name = "SA"
beta = 4.0
[domain]
lmax = 16
[initial]
amplitude = 0.05
seed = 1
[time]
t_end = 1.0
save_every = 0.005
"""


def assert_same_prefix(path, reference, n=None):
    run, ref = io.read_run(path), io.read_run(reference)
    n = len(run["t"]) if n is None else n
    np.testing.assert_array_equal(run["t"], ref["t"][:n])
    for name, values in run["diagnostics"].items():
        np.testing.assert_array_equal(values, ref["diagnostics"][name][:n])
    for i in range(n):
        np.testing.assert_array_equal(io.read_density(path, i), io.read_density(reference, i))
    return run


def test_sigkill_at_random_moments(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    reference = tmp_path / "reference.h5"
    solver.run(config.load(tmp_path / "c.toml"), reference)
    n_total = len(io.read_run(reference)["t"])
    rng = np.random.default_rng(2024)
    killed_mid_run = 0
    for trial in range(5):
        out = tmp_path / f"killed{trial}.h5"
        proc = subprocess.Popen([sys.executable, "-m", "spherepde", "run", tmp_path / "c.toml", "--out", out, "--quiet"])
        while not out.exists() and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.8))  # the run writes for ≈ 1.2 s after creating its file
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run = assert_same_prefix(out, reference)  # readable, and every saved snapshot is exact
        if len(run["t"]) < n_total:
            killed_mid_run += 1
            assert run["status"] == "running"
        resumed = subprocess.run([sys.executable, "-m", "spherepde", "run", tmp_path / "c.toml", "--out", out, "--resume", "--quiet"],
                                 capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert_same_prefix(out, reference, n_total)
        assert io.read_run(out)["status"] == "finished"
        assert not os.path.exists(f"{out}.tmp")
    assert killed_mid_run >= 3  # the kills did land inside runs


def test_interrupted_run_is_trimmed_and_grows_back_on_resume(tmp_path, monkeypatch):
    cfg = config.loads(CONFIG)
    solver.run(cfg, tmp_path / "whole.h5")
    original = solver._Progress.update

    def stop_at_ten(self, t, diag, steps):
        original(self, t, diag, steps)
        if t >= 10 * 0.005:
            raise KeyboardInterrupt

    monkeypatch.setattr(solver._Progress, "update", stop_at_ten)
    try:
        solver.run(cfg, tmp_path / "part.h5")
    except KeyboardInterrupt:
        pass
    import h5py

    with h5py.File(tmp_path / "part.h5") as h5:
        assert h5["t"].shape == (11,) and h5["density"].shape[0] == 11
    assert io.read_run(tmp_path / "part.h5")["status"] == "interrupted"
    monkeypatch.setattr(solver._Progress, "update", original)
    solver.run(cfg, tmp_path / "part.h5", resume=True)
    assert_same_prefix(tmp_path / "part.h5", tmp_path / "whole.h5", len(io.read_run(tmp_path / "whole.h5")["t"]))


def test_wall_clock_checkpoints_between_snapshots(tmp_path):
    """A run killed between two save times resumes from its last wall-clock checkpoint, bit for bit."""
    # USA at rtol 1e-12: ~300 steps (≈ 0.7 s) inside one save interval
    text = CONFIG.replace("save_every = 0.005", "save_every = 1.0\nrtol = 1e-12").replace("lmax = 16", "lmax = 48")
    text = text.replace('name = "SA"', 'name = "USA"') + "[numerics]\ncheckpoint_seconds = 0.02\n"
    (tmp_path / "c.toml").write_text(text)
    reference = tmp_path / "reference.h5"
    solver.run(config.load(tmp_path / "c.toml"), reference)
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-m", "spherepde", "run", tmp_path / "c.toml", "--out", out, "--quiet"])
    while not out.exists() and proc.poll() is None:
        time.sleep(0.002)
    time.sleep(0.25)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    import h5py

    with h5py.File(out) as h5:
        cp = h5["checkpoint"]
        t_checkpoint, n_saved = cp["meta"][cp["current"][()]][:2]
    assert n_saved == 1 and 0 < t_checkpoint < 1.0  # killed inside the only interval, after checkpoints in it
    subprocess.run([sys.executable, "-m", "spherepde", "run", tmp_path / "c.toml", "--out", out, "--resume", "--quiet"], check=True)
    assert_same_prefix(out, reference, 2)
