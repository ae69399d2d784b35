"""Run files survive SIGKILL at any moment: readable, exact up to the last saved snapshot, resumable."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from spherepde import config, io, solver
from spherepde.errors import InputError

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


def saved_count(path) -> int:
    """Snapshots saved so far in a file another process is writing (0 while unreadable)."""
    try:
        with h5py.File(path, "r", locking=False) as h5:
            cp = h5["checkpoint"]
            return int(cp["meta"][int(cp["current"][()])][1])
    except (OSError, KeyError):
        return 0


def kill_at_snapshots(tmp_path, text: str, targets) -> list[int]:
    """Start ``spherepde run`` of ``text`` once per target k, SIGKILL it as soon as k snapshots are saved (so the
    kill lands mid-run however fast the machine is), check the killed file and resume it; the counts saved at
    the kills. The killed file must be readable, exact up to its saved count, and resume to the reference."""
    (tmp_path / "c.toml").write_text(text)
    reference = tmp_path / "reference.h5"
    solver.run(config.load(tmp_path / "c.toml"), reference)
    n_total = len(io.read_run(reference)["t"])
    saved = []
    for trial, target in enumerate(targets):
        out = tmp_path / f"killed{trial}.h5"
        proc = subprocess.Popen([sys.executable, "-m", "spherepde", "run", tmp_path / "c.toml", "--out", out, "--quiet"])
        while proc.poll() is None and saved_count(out) < target:
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run = assert_same_prefix(out, reference)  # readable, and every saved snapshot is exact
        saved.append(len(run["t"]))
        if len(run["t"]) < n_total:
            assert run["status"] == "running"
        resumed = subprocess.run([sys.executable, "-m", "spherepde", "run", tmp_path / "c.toml", "--out", out, "--resume", "--quiet"],
                                 capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert_same_prefix(out, reference, n_total)
        assert io.read_run(out)["status"] == "finished"
        assert not os.path.exists(f"{out}.tmp")
    return saved


def test_sigkill_at_random_snapshots(tmp_path):
    """Kills after a random number of saved snapshots (of 201), not after a random wall-clock delay: each lands
    inside the run whatever the machine's speed (it is still writing when it is killed)."""
    targets = np.random.default_rng(2024).integers(1, 150, 5)
    saved = kill_at_snapshots(tmp_path, CONFIG, targets)
    assert all(k >= target for k, target in zip(saved, targets)) and all(k < 201 for k in saved)


def test_sigkill_on_both_sides_of_the_switch_to_points(tmp_path):
    """A run that continues as weighted points (SA β = 1, a von Mises–Fisher cluster at lmax 24: the switch at
    t ≈ 0.9 of 3): killed before and after the switch, each resumes to the uninterrupted run bit for bit."""
    text = """
[model]
name = "SA"
beta = 1.0
[domain]
lmax = 24
[initial]
kind = "von_mises_fisher"
kappa = 2.0
mean = [0.0, 0.6, 0.8]
[time]
t_end = 3.0
save_every = 0.05
"""
    (tmp_path / "probe.toml").write_text(text)
    probe = solver.simulate(config.load(tmp_path / "probe.toml"))
    switch = int(np.argmax(probe["diagnostics"]["lagrangian"] == 1))
    assert 5 < switch < len(probe["t"]) - 10
    saved = kill_at_snapshots(tmp_path, text, [switch - 4, switch + 4])
    assert saved[0] < len(probe["t"]) and saved[1] >= switch + 4


def interrupt_at(monkeypatch, time: float):
    """Make the next run raise KeyboardInterrupt (as Ctrl-C) once a snapshot at ``time`` or later is saved."""
    original = solver._Progress.update

    def stop(self, t, diag, steps):
        original(self, t, diag, steps)
        if t >= time:
            raise KeyboardInterrupt

    monkeypatch.setattr(solver._Progress, "update", stop)


def test_interrupted_run_is_trimmed_and_grows_back_on_resume(tmp_path, monkeypatch):
    cfg = config.loads(CONFIG)
    solver.run(cfg, tmp_path / "whole.h5")
    interrupt_at(monkeypatch, 10 * 0.005)
    try:
        solver.run(cfg, tmp_path / "part.h5")
    except KeyboardInterrupt:
        pass

    with h5py.File(tmp_path / "part.h5") as h5:
        assert h5["t"].shape == (11,) and h5["density"].shape[0] == 11
    assert io.read_run(tmp_path / "part.h5")["status"] == "interrupted"
    monkeypatch.undo()
    solver.run(cfg, tmp_path / "part.h5", resume=True)
    assert_same_prefix(tmp_path / "part.h5", tmp_path / "whole.h5", len(io.read_run(tmp_path / "whole.h5")["t"]))


def test_wall_clock_checkpoints_between_snapshots(tmp_path):
    """A run killed between two save times resumes from its last wall-clock checkpoint, bit for bit.

    checkpoint_seconds = 1e-9 checkpoints after every step; the run kills itself (SIGKILL, no handler runs)
    right after its 20th checkpoint, inside the only save interval (~100 steps): no wall-clock race."""
    text = CONFIG.replace("save_every = 0.005", "save_every = 1.0\nrtol = 1e-12").replace("lmax = 16", "lmax = 48")
    text = text.replace('name = "SA"', 'name = "USA"') + "[numerics]\ncheckpoint_seconds = 1e-9\n"
    (tmp_path / "c.toml").write_text(text)
    reference = tmp_path / "reference.h5"
    solver.run(config.load(tmp_path / "c.toml"), reference)
    out = tmp_path / "killed.h5"
    driver = f"""
import os, signal
from spherepde import config, io, solver
original, calls = io.RunFile.checkpoint, []
def checkpoint(self, *args):
    original(self, *args)
    calls.append(1)
    if len(calls) == 20:
        os.kill(os.getpid(), signal.SIGKILL)
io.RunFile.checkpoint = checkpoint
solver.run(config.load({str(tmp_path / "c.toml")!r}), {str(out)!r})
"""
    assert subprocess.run([sys.executable, "-c", driver]).returncode == -signal.SIGKILL

    with h5py.File(out) as h5:
        cp = h5["checkpoint"]
        t_checkpoint, n_saved = cp["meta"][cp["current"][()]][:2]
    assert n_saved == 1 and 0 < t_checkpoint < 1.0  # killed inside the only interval, after checkpoints in it
    subprocess.run([sys.executable, "-m", "spherepde", "run", tmp_path / "c.toml", "--out", out, "--resume", "--quiet"], check=True)
    assert_same_prefix(out, reference, 2)


def test_a_run_resumes_on_the_grid_its_file_was_written_on(tmp_path, monkeypatch):
    """USA runs on the smallest exact grid; a file written on the 3/2 grid (by an earlier version, here by
    switching grid_degree off) resumes on its own grid, bit for bit like its uninterrupted run."""
    text = CONFIG.replace('name = "SA"', 'name = "USA"').replace("lmax = 16", "lmax = 40").replace("t_end = 1.0", "t_end = 0.05")
    cfg = config.loads(text)
    small = solver.Simulation(cfg).manifold.grid_shape
    monkeypatch.setattr(solver, "grid_degree", lambda model, lmax: None)
    three_halves = solver.Simulation(cfg).manifold.grid_shape
    assert small[0] < three_halves[0] and small[1] < three_halves[1]
    solver.run(cfg, tmp_path / "whole.h5")
    interrupt_at(monkeypatch, 4 * 0.005)
    with pytest.raises(KeyboardInterrupt):
        solver.run(cfg, tmp_path / "part.h5")
    monkeypatch.undo()  # this version again: the exact grid for new runs
    assert solver.Simulation(cfg).manifold.grid_shape == small
    solver.run(cfg, tmp_path / "part.h5", resume=True)
    assert io.read_density(tmp_path / "part.h5", -1).shape == three_halves
    assert_same_prefix(tmp_path / "part.h5", tmp_path / "whole.h5", len(io.read_run(tmp_path / "whole.h5")["t"]))


def test_a_threaded_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    """At lmax 128 threads = 0 (the default) runs SHTns on all cores: an interrupted run resumed repeats the
    uninterrupted one bit for bit all the same (the transforms do not depend on the thread schedule)."""
    from spherepde.manifolds import run_threads

    text = CONFIG.replace("lmax = 16", "lmax = 128").replace("t_end = 1.0", "t_end = 0.03").replace("save_every = 0.005", "save_every = 0.005\nrtol = 1e-10")
    cfg = config.loads(text)
    assert cfg.numerics.threads == 0 and run_threads(0, 128) == 0
    solver.run(cfg, tmp_path / "whole.h5")
    interrupt_at(monkeypatch, 3 * 0.005)
    with pytest.raises(KeyboardInterrupt):
        solver.run(cfg, tmp_path / "part.h5")
    monkeypatch.undo()
    solver.run(cfg, tmp_path / "part.h5", resume=True)
    assert_same_prefix(tmp_path / "part.h5", tmp_path / "whole.h5", len(io.read_run(tmp_path / "whole.h5")["t"]))


def test_output_directory_is_made_or_refused_in_one_line(tmp_path):
    nested = tmp_path / "a" / "b"
    assert io.output_directory(nested, "the figures") == nested and nested.is_dir()
    assert io.output_directory(str(nested), "the figures") == nested  # an existing directory is taken as it is
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(InputError, match=r"--out '.*taken' is a file: name a directory for the figures"):
        io.output_directory(taken, "the figures")
    with pytest.raises(InputError, match=r"--out '.*taken/sub' cannot be created: Not a directory"):
        io.output_directory(taken / "sub", "the figures")
