"""Hostile input, foreign files, concurrent writers, full disks, silent servers: every case exits with its code
(2 for bad input) and one line on stderr, prints no traceback, leaves every file that was there byte for byte,
and answers within seconds (a subprocess timeout, not a benchmark)."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

ANSWER_WITHIN = 60  # seconds: a hang fails the test instead of blocking the suite

SMALL = """
[model]
name = "SA"
beta = 4.0
[domain]
lmax = 16
[initial]
amplitude = 0.05
seed = 1
[time]
t_end = 0.5
save_every = 0.05
"""

SLOW = SMALL.replace("t_end = 0.5", "t_end = 200.0").replace("save_every = 0.05", "save_every = 0.5").replace(
    "[domain]\nlmax = 16", "[domain]\nlmax = 63")


def spherepde(*args, cwd, timeout=ANSWER_WITHIN):
    return subprocess.run([sys.executable, "-m", "spherepde", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def contents(folder: Path) -> dict:
    """Every file under ``folder`` with the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(result, code=2, says=""):
    """Exit ``code``, exactly one stderr line (mentioning ``says``), no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert says in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "c.toml").write_text(SMALL)
    return tmp_path


def finished_run(folder: Path, name="run.h5", text=SMALL) -> Path:
    (folder / "base.toml").write_text(text)
    assert spherepde("run", "base.toml", "--out", name, "--quiet", cwd=folder).returncode == 0
    (folder / "base.toml").unlink()
    return folder / name


# -- data loss ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target,says", [
    ("c.toml", "which this run reads"),
    ("notes.txt", "not a spherepde run file"),
    ("data.h5", "not a spherepde run file"),
    ("newdir/", "is a directory"),
])
def test_run_never_writes_over_what_it_must_not(folder, target, says):
    (folder / "notes.txt").write_text("my notes\n")
    with h5py.File(folder / "data.h5", "w") as h5:
        h5["x"] = np.arange(5)
    before = contents(folder)
    refused(spherepde("run", "c.toml", "--out", target, cwd=folder), says=says)
    assert contents(folder) == before and not (folder / "newdir").exists()


def test_an_existing_run_needs_overwrite_and_a_foreign_tmp_file_is_left_alone(folder):
    run = finished_run(folder, text=SMALL.replace("beta = 4.0", "beta = 3.0"))
    before = contents(folder)
    refused(spherepde("run", "c.toml", "--out", "run.h5", cwd=folder), says="--overwrite")
    assert contents(folder) == before
    (folder / "run.h5.tmp").write_text("the user's own file\n")
    before = contents(folder)
    refused(spherepde("run", "c.toml", "--out", "run.h5", "--overwrite", cwd=folder), says="temporary file")
    assert contents(folder) == before
    (folder / "run.h5.tmp").unlink()
    assert spherepde("run", "c.toml", "--out", "run.h5", "--overwrite", "--quiet", cwd=folder).returncode == 0
    assert h5py.File(run, "r").attrs["config"] != before  # replaced by the new run
    refused(spherepde("run", "c.toml", "--out", "run.h5", "--overwrite", "--resume", cwd=folder), says="one of them")


def test_the_source_of_from_file_is_not_an_output(folder):
    finished_run(folder, "source.h5")
    (folder / "f.toml").write_text(SMALL.replace("[initial]\namplitude = 0.05\nseed = 1",
                                                 '[initial]\nkind = "from_file"\npath = "source.h5"'))
    before = contents(folder)
    refused(spherepde("run", "f.toml", "--out", "source.h5", "--overwrite", cwd=folder), says="which this run reads")
    assert contents(folder) == before


def test_a_second_writer_is_refused_while_the_first_runs_and_a_dead_ones_lock_does_not_block(folder):
    (folder / "slow.toml").write_text(SLOW)
    first = subprocess.Popen([sys.executable, "-m", "spherepde", "run", "slow.toml", "--out", "run.h5", "--quiet"],
                             cwd=folder, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + ANSWER_WITHIN
        while not (folder / "run.h5").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        line = refused(spherepde("run", "c.toml", "--out", "run.h5", "--overwrite", cwd=folder),
                       says="being written by another spherepde process")
        assert f"pid {first.pid}" in line
        # a reader is not a writer: the running file can be read meanwhile
        assert spherepde("compare", "run.h5", cwd=folder).returncode in (0, 2)
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=ANSWER_WITHIN)
    assert first.returncode == 130 and "--resume" in err
    # the lock died with its process; a lock file left behind (e.g. after SIGKILL) does not block either
    (folder / ".run.h5.lock").write_text("999999\n")
    assert spherepde("run", "slow.toml", "--out", "run.h5", "--quiet", "--resume", cwd=folder, timeout=600).returncode == 0


def test_a_full_disk_is_found_before_the_run_starts(tmp_path):
    """On a 1 MB tmpfs a run needing about 3 MB is refused at once (posix_fallocate reserves the file's blocks, so
    a run that starts cannot meet a full disk while writing snapshots); no temporary file remains."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (mount / "c.toml").write_text(SMALL.replace("t_end = 0.5", "t_end = 20.0"))
        before = contents(mount)
        refused(spherepde("run", "c.toml", "--out", "run.h5", cwd=mount), says="of disk")
        assert contents(mount) == before
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# -- hangs ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["linear", "--beta", "1e10"],
    ["linear", "--beta", "5", "--dim", "10000"],
    ["linear", "--phase-diagram", "--beta-max", "-5", "--out", "fig.png"],
])
def test_linear_answers_at_once(folder, args):
    refused(spherepde(*args, cwd=folder, timeout=20))
    assert not (folder / "fig.png").exists()


class _Server:
    """A loopback server that accepts connections and then either says nothing or answers like an HTTP server."""

    def __init__(self, reply: bytes | None):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.reply = reply
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        held = []
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            held.append(conn)
            if self.reply is not None:
                try:
                    conn.recv(4096)
                    conn.sendall(self.reply)
                except OSError:
                    pass


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"], ids=["silent", "http"])
def test_a_scheduler_that_does_not_answer_fails_within_the_timeout(folder, reply):
    server = _Server(reply)
    (folder / "sweep.toml").write_text(SMALL + "\n[sweep]\n\"model.beta\" = [3.0, 4.0]\n")
    start = time.monotonic()
    refused(spherepde("sweep", "sweep.toml", "--out", "out", "--scheduler", f"tcp://127.0.0.1:{server.port}", cwd=folder),
            says="Dask scheduler")
    assert time.monotonic() - start < 40 and not (folder / "out").exists()


# -- one line instead of a traceback --------------------------------------------------------------------------------

@pytest.mark.parametrize("text,says", [
    (SMALL.replace("seed = 1", "seed = -1"), "initial.seed"),
    (SMALL.replace("save_every = 0.05", "save_every = 1e-9").replace("t_end = 0.5", "t_end = 1e6"), "time.save_every"),
    (SMALL.replace("[time]", "[time]\nrtol = 1e-300"), "time.rtol"),
    (SMALL.replace("[time]", '[time]\nmethod = "rk4"\ndt = 1e-300'), "time.dt"),
    (SMALL.replace("seed = 1", "modes = [[2, 0], [2, 0]]"), "initial.modes"),
    (SMALL.replace("beta = 4.0", "beta = 1e12"), "model.beta"),
])
def test_bad_configs_are_one_line(folder, text, says):
    (folder / "bad.toml").write_text(text)
    before = contents(folder)
    refused(spherepde("run", "bad.toml", "--out", "run.h5", cwd=folder), says=says)
    assert contents(folder) == before


def test_a_config_that_is_not_utf8(folder):
    (folder / "bad.toml").write_bytes(b"[model]\nname = \"S\xe9A\"\n")
    refused(spherepde("run", "bad.toml", "--out", "run.h5", cwd=folder))


@pytest.mark.parametrize("particles,says", [
    ("n = 100\nseed = -3", "particles.seed"),
    ("n = 1000000000000", "particles.n"),
    ("n = 10\nd = 100000000", "particles.d"),
])
def test_bad_token_configs_are_one_line(folder, particles, says):
    (folder / "t.toml").write_text(f"[model]\nbeta = 1.0\n[particles]\n{particles}\n[time]\nt_end = 1.0\nsave_every = 0.5\n")
    before = contents(folder)
    refused(spherepde("particles", "t.toml", "--out", "run.h5", cwd=folder), says=says)
    assert contents(folder) == before


def damage(path: Path):
    """Overwrite a stretch in the middle of the file with garbage."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 2000:middle + 2000] = os.urandom(4000)
    data[200:1200] = os.urandom(1000)  # and part of the superblock's neighbourhood: the object headers
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("command", ["compare", "plot", "from_file", "resume"])
def test_a_damaged_run_file_is_one_line(folder, command):
    run = finished_run(folder)
    damage(run)
    before = contents(folder)
    if command == "compare":
        result = spherepde("compare", "run.h5", cwd=folder)
    elif command == "plot":
        result = spherepde("plot", "run.h5", "--out", "figs", cwd=folder)
    elif command == "from_file":
        (folder / "f.toml").write_text(SMALL.replace("[initial]\namplitude = 0.05\nseed = 1",
                                                     '[initial]\nkind = "from_file"\npath = "run.h5"'))
        before = contents(folder)
        result = spherepde("run", "f.toml", "--out", "new.h5", cwd=folder)
    else:
        result = spherepde("run", "c.toml", "--out", "run.h5", "--resume", cwd=folder)
    refused(result)
    assert contents(folder) == before and not (folder / "figs").exists()


def test_demo_out_that_is_a_file_or_unwritable(folder):
    (folder / "taken").write_text("a file\n")
    refused(spherepde("demo", "--out", "taken", cwd=folder), says="is a file")
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere
            pytest.skip("running as root: a read-only directory is writable")
        refused(spherepde("demo", "--out", "locked/demo", cwd=folder))
    finally:
        locked.chmod(0o700)


def test_plot_and_compare_refusals_leave_no_directory(folder):
    refused(spherepde("plot", "missing.h5", "--out", "figs", cwd=folder), says="does not exist")
    assert not (folder / "figs").exists()


def test_compare_on_a_token_run_says_what_it_is(folder):
    (folder / "t.toml").write_text("[model]\nbeta = 1.0\n[particles]\nn = 50\n[time]\nt_end = 0.5\nsave_every = 0.25\n")
    assert spherepde("particles", "t.toml", "--out", "tokens.h5", "--quiet", cwd=folder).returncode == 0
    refused(spherepde("compare", "tokens.h5", cwd=folder), says="token run")


def test_interrupt_before_the_run_file_exists_says_there_is_nothing_to_resume(folder):
    """SIGINT while a large configuration is being set up (before its file is written)."""
    (folder / "big.toml").write_text(SMALL.replace("lmax = 16", "lmax = 1023").replace("amplitude = 0.05", "amplitude = 1e-3"))
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from spherepde.cli import main; sys.exit(main(sys.argv[1:]))",
                             "run", "big.toml", "--out", "big.h5", "--quiet"], cwd=folder, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + ANSWER_WITHIN
    time.sleep(3.0)  # past the imports (a SIGINT there is Python's own), inside the setup of lmax 1023
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    if (folder / "big.h5").exists():
        pytest.skip("this machine set up lmax 1023 within 3 s: the interrupt came after the file was written")
    assert proc.returncode == 130 and "before the run file" in err and "Traceback" not in err
