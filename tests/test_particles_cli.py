"""`spherepde particles`: exit codes, file layout, resume bit for bit, SIGKILL safety."""
import signal
import subprocess
import sys
import time
import tomllib

import h5py
import numpy as np
import pytest

from conftest import interrupt_after
from spherepde import cli, config, io, kernels, solver, tokens
from spherepde.manifolds import Sphere

GOOD = """
[model]
name = "SA"
beta = 5.0
[particles]
n = 200
seed = 7
[time]
t_end = 1.0
save_every = 0.25
rtol = 1e-9
[diagnostics]
lmax = 6
"""


def spherepde(*args):
    return subprocess.run([sys.executable, "-m", "spherepde", *map(str, args)], capture_output=True, text=True)


def assert_same_run(path, reference, n=None):
    """The first n saved snapshots (default: all of ``path``) equal the reference's, bit for bit."""
    run, ref = io.read_run(path), io.read_run(reference)
    n = len(run["t"]) if n is None else n
    assert len(run["t"]) >= n
    np.testing.assert_array_equal(run["t"][:n], ref["t"][:n])
    for name, values in ref["diagnostics"].items():
        np.testing.assert_array_equal(run["diagnostics"][name][:n], values[:n])
    for i in range(n):
        np.testing.assert_array_equal(io.read_points(path, i), io.read_points(reference, i))
    return run


def test_particles_writes_the_documented_file(tmp_path):
    (tmp_path / "c.toml").write_text(GOOD)
    out = tmp_path / "p.h5"
    result = spherepde("particles", tmp_path / "c.toml", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "t = 0.5 / 1" in result.stderr  # a log line per snapshot off a terminal
    with h5py.File(out) as h5:
        assert h5.attrs["manifold"] == "particles" and h5.attrs["version"]
        cfg = tomllib.loads(h5.attrs["config"])
        assert cfg["particles"]["n"] == 200 and cfg["particles"]["d"] == 3 and cfg["time"]["method"] == "dopri5"
        np.testing.assert_array_equal(h5["t"][...], [0, 0.25, 0.5, 0.75, 1.0])
        x = h5["points"][...]
        diag = {k: v[...] for k, v in h5["diagnostics"].items()}
        assert h5["status"][()] == b"finished" and "grid" not in h5 and "density" not in h5
        assert h5.attrs["backend"] == ("numba" if kernels.numba_available() else "numpy")
    assert x.shape == (5, 200, 3)
    assert set(diag) == {"energy", "mean_direction", "clusters", "cluster_delta", "close_pairs", "spectrum"}
    # the threshold in use is recorded: here the default δ_n of n = 200 tokens on S²
    np.testing.assert_array_equal(diag["cluster_delta"], tokens.cluster_threshold(200, 3))
    np.testing.assert_allclose(np.linalg.norm(x, axis=2), 1.0, atol=1e-15)
    # the start is the documented sample: normalized Gaussians of default_rng(seed)
    g = np.random.default_rng(7).standard_normal((200, 3))
    np.testing.assert_allclose(x[0], g / np.linalg.norm(g, axis=1, keepdims=True), atol=1e-15)
    # diagnostics recomputed from the stored points by the plain formulas
    gram = np.einsum("tid,tjd->tij", x, x)
    beta = 5.0
    np.testing.assert_allclose(diag["energy"], np.sum(np.exp(beta * gram) - 1, axis=(1, 2)) / (2 * beta * 200**2), rtol=1e-12)
    assert np.all(np.diff(diag["energy"]) > 0)  # SA ascends the energy
    mean = np.linalg.norm(x.mean(axis=1), axis=1)
    np.testing.assert_allclose(diag["mean_direction"], mean, rtol=1e-13)
    close = (np.sum(gram > tokens.CLOSE_PAIR_COS, axis=(1, 2)) - 200) / (200 * 199)
    np.testing.assert_array_equal(diag["close_pairs"], close)
    assert diag["spectrum"].shape == (5, 7)
    np.testing.assert_allclose(diag["spectrum"][:, 0], 1.0, rtol=1e-13)  # E_0 = mass² = 1
    np.testing.assert_allclose(diag["spectrum"][:, 1], 3 * mean**2, rtol=1e-11)  # Y_1m = √3 x_m
    assert diag["clusters"].dtype.kind == "i" and np.all((1 <= diag["clusters"]) & (diag["clusters"] <= 200))


def test_density_init_samples_a_pde_snapshot(tmp_path):
    """init = "density": tokens drawn from a saved PDE density (von Mises–Fisher, κ = 4, mean e_z):
    their mean is A_3(κ) e_z = (coth κ − 1/κ) e_z within a few standard errors."""
    pde = config.resolve({"model": {"beta": 1.0}, "domain": {"lmax": 20}, "time": {"t_end": 0.1, "save_every": 0.1},
                          "initial": {"kind": "von_mises_fisher", "kappa": 4.0, "mean": [0, 0, 1]}})
    solver.run(pde, tmp_path / "pde.h5")
    (tmp_path / "c.toml").write_text(GOOD.replace("n = 200", "n = 4000").replace("[particles]", f'[particles]\ninit = "density"\npath = "{tmp_path / "pde.h5"}"\ntime = 0.0')
                                     .replace("t_end = 1.0", "t_end = 0.01").replace("save_every = 0.25", "save_every = 0.01"))
    solver.run(config.load(tmp_path / "c.toml", config.resolve_particles), tmp_path / "p.h5")
    x = io.read_points(tmp_path / "p.h5", 0)
    kappa = 4.0
    expected = 1 / np.tanh(kappa) - 1 / kappa
    # standard error of a mean of 4000 z-values (Var z ≤ 1/4 here): 0.008; 4 of them, plus the
    # O(h²) bias of the bilinear interpolant on a 31-ring grid (≈ 3e-3)
    assert abs(x[:, 2].mean() - expected) < 0.035
    assert np.linalg.norm(x[:, :2].mean(axis=0)) < 0.035


def test_quantile_init_places_tokens_at_the_quantiles_of_a_pde_snapshot(tmp_path):
    """init = "quantile": the deterministic tokens of tokens.initial_tokens("quantile") on the
    saved density at t = 0 (von Mises–Fisher, κ = 4, mean e_z); their mean is A_3(κ) e_z up to the
    O(1/n) placement error (measured 1e-4) and the O(h²) bias of the bilinear interpolant on the
    run's 32 × 64 grid (measured 1.0e-3), far below iid's standard error 0.025 at n = 400."""
    pde = config.resolve({"model": {"beta": 1.0}, "domain": {"lmax": 20}, "time": {"t_end": 0.1, "save_every": 0.1},
                          "initial": {"kind": "von_mises_fisher", "kappa": 4.0, "mean": [0, 0, 1]}})
    solver.run(pde, tmp_path / "pde.h5")
    text = GOOD.replace("n = 200", f'n = 400\ninit = "quantile"\npath = "{tmp_path / "pde.h5"}"\ntime = 0.0') \
        .replace("t_end = 1.0", "t_end = 0.01").replace("save_every = 0.25", "save_every = 0.01")
    cfg = config.loads(text, config.resolve_particles)
    solver.run(cfg, tmp_path / "p.h5")
    x = io.read_points(tmp_path / "p.h5", 0)
    run = io.read_run(tmp_path / "pde.h5")
    expected = tokens.initial_tokens("quantile", 400, 3, density=io.read_density(tmp_path / "pde.h5", 0),
                                     manifold=Sphere(run["config"]["domain"]["lmax"]))
    np.testing.assert_array_equal(x, expected)
    assert abs(x[:, 2].mean() - (1 / np.tanh(4.0) - 1 / 4.0)) < 3e-3
    assert np.linalg.norm(x[:, :2].mean(axis=0)) < 3e-3


def test_energy_is_nan_for_general_matrices(tmp_path):
    """/diagnostics/energy is NaN unless QᵀK = V = I, as for the PDE; the rest is recorded."""
    text = GOOD.replace('name = "SA"', 'name = "SA"\nV = [[1.0, 0.5, 0], [0, 1.0, 0], [0, 0, 1.0]]') \
        .replace("t_end = 1.0", "t_end = 0.5")
    solver.run(config.loads(text, config.resolve_particles), tmp_path / "p.h5")
    diag = io.read_run(tmp_path / "p.h5")["diagnostics"]
    assert np.all(np.isnan(diag["energy"])) and np.all(np.isfinite(diag["mean_direction"]))


@pytest.mark.parametrize(
    "edit,key",
    [(("n = 200", "n = 0"), "particles.n"),
     (("n = 200", "n = 200\nd = 1"), "particles.d"),
     (("n = 200", 'n = 200\ninit = "lattice"\nd = 4'), "particles.d"),
     (("n = 200", 'n = 200\ninit = "points"'), "particles.path"),
     (("n = 200", 'n = 200\ninit = "grid"'), "particles.init"),
     (("n = 200", "n = 200\nblock = 0"), "particles.block"),
     (("n = 200", 'n = 200\ntime = 1.0'), "particles.time"),
     (("n = 200", 'n = 200\ninit = "quantile"'), "particles.path"),
     (("n = 200", 'n = 200\nbackend = "gpu"'), "particles.backend"),
     (("beta = 5.0", "beta = nan"), "model.beta"),
     (('name = "SA"', 'name = "XA"'), "model.name"),
     (('name = "SA"', 'name = "SA"\nQ = [[1.0, 0.0], [0.0, 1.0]]'), "model.Q"),
     (("rtol = 1e-9", 'method = "rk4"'), "time.dt"),
     (("lmax = 6", "lmax = -1"), "diagnostics.lmax"),
     (("lmax = 6", "lmax = 6\ncluster_delta = 3.0"), "diagnostics.cluster_delta"),
     (("[time]", "[domain]\nlmax = 8\n[time]"), "[domain]")],
)
def test_invalid_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, edit, key):
    (tmp_path / "c.toml").write_text(GOOD.replace(*edit))
    out = tmp_path / "p.h5"
    assert cli.main(["particles", str(tmp_path / "c.toml"), "--out", str(out)]) == 2  # in-process: no start-up cost
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and key in lines[0]
    assert not out.exists()


def test_numba_backend_without_numba_exits_2(tmp_path, capsys, monkeypatch):
    """backend = "numba" where numba does not import: exit 2, one line naming the key and the fix."""
    monkeypatch.setattr(kernels, "_compiled_kernel", lambda: None)
    (tmp_path / "c.toml").write_text(GOOD.replace("n = 200", 'n = 200\nbackend = "numba"'))
    assert cli.main(["particles", str(tmp_path / "c.toml"), "--out", str(tmp_path / "p.h5")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "particles.backend" in lines[0] and "pip install" in lines[0]
    assert not (tmp_path / "p.h5").exists()


def test_bad_points_file_exits_2_and_writes_nothing(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((10, 2)) / np.sqrt(2))  # points in R², tokens asked in R³
    (tmp_path / "c.toml").write_text(GOOD.replace("n = 200", f'init = "points"\npath = "{tmp_path / "x.npy"}"'))
    result = spherepde("particles", tmp_path / "c.toml", "--out", tmp_path / "p.h5")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "particles.path" in lines[0] and "(10, 2)" in lines[0]
    assert not (tmp_path / "p.h5").exists()


def test_velocity_overflow_exits_1_and_keeps_the_file(tmp_path):
    """USA at β‖QᵀK‖ = 1400: e^{1400} is not a double; the snapshot at t = 0 is kept."""
    text = GOOD.replace('name = "SA"', 'name = "USA"\nQ = [[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]]').replace("beta = 5.0", "beta = 700.0")
    (tmp_path / "c.toml").write_text(text)
    out = tmp_path / "p.h5"
    result = spherepde("particles", tmp_path / "c.toml", "--out", out)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "non-finite" in result.stderr
    run = io.read_run(out)
    assert run["status"] == "failed" and "non-finite" in run["message"]
    np.testing.assert_array_equal(run["t"], [0.0])
    assert io.read_points(out, 0).shape == (200, 3)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_resume_after_an_interruption_is_bit_for_bit(tmp_path, monkeypatch, method):
    text = GOOD.replace("t_end = 1.0", "t_end = 2.0")
    if method == "rk4":
        text = text.replace("rtol = 1e-9", 'method = "rk4"\ndt = 0.1')
    cfg = config.loads(text, config.resolve_particles)
    solver.run(cfg, tmp_path / "whole.h5")
    restore = interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        solver.run(cfg, tmp_path / "split.h5")
    stopped = io.read_run(tmp_path / "split.h5")
    assert stopped["status"] == "interrupted" and len(stopped["t"]) == 3
    restore()
    solver.run(cfg, tmp_path / "split.h5", resume=True)
    run = assert_same_run(tmp_path / "split.h5", tmp_path / "whole.h5")
    assert len(run["t"]) == 9 and run["status"] == "finished"


def test_compressed_snapshots_hold_the_same_tokens_and_resume_bit_for_bit(tmp_path, monkeypatch):
    """``compress = true``: the tokens are gzip-compressed when the run ends, also when it is interrupted; the
    snapshots equal those of an uncompressed run bit for bit, the stored points are smaller, and --resume
    (which writes into contiguous space again) completes the run bit for bit, compressed."""
    text = GOOD.replace("t_end = 1.0", "t_end = 2.0")
    solver.run(config.loads(text, config.resolve_particles), tmp_path / "plain.h5")
    cfg = config.loads(text.replace("seed = 7", "seed = 7\ncompress = true"), config.resolve_particles)
    restore = interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        solver.run(cfg, tmp_path / "packed.h5")
    restore()
    assert_same_run(tmp_path / "packed.h5", tmp_path / "plain.h5")
    solver.run(cfg, tmp_path / "packed.h5", resume=True)
    assert assert_same_run(tmp_path / "packed.h5", tmp_path / "plain.h5", 9)["status"] == "finished"
    with h5py.File(tmp_path / "packed.h5") as packed, h5py.File(tmp_path / "plain.h5") as plain:
        assert packed["points"].compression == "gzip" and plain["points"].compression is None
        assert packed["points"].id.get_storage_size() < 0.95 * plain["points"].id.get_storage_size()


def test_resume_refuses_another_config(tmp_path):
    (tmp_path / "c.toml").write_text(GOOD)
    assert spherepde("particles", tmp_path / "c.toml", "--out", tmp_path / "p.h5", "--quiet").returncode == 0
    (tmp_path / "d.toml").write_text(GOOD.replace("seed = 7", "seed = 8"))
    result = spherepde("particles", tmp_path / "d.toml", "--out", tmp_path / "p.h5", "--resume")
    assert result.returncode == 2 and "different configuration" in result.stderr


# 16 snapshots, ≈ 4 adaptive steps per save interval, a checkpoint after every step
KILLED = GOOD.replace("n = 200", "n = 400").replace("t_end = 1.0", "t_end = 1.5").replace("save_every = 0.25", "save_every = 0.1") \
    .replace("rtol = 1e-9", "rtol = 1e-12") + "[numerics]\ncheckpoint_seconds = 0.001\n"


def test_sigkill_leaves_a_readable_file_that_resumes_bit_for_bit(tmp_path):
    """SIGKILL after a random number of snapshots (read from the log lines) plus a random
    fraction of a save interval, where wall-clock checkpoints land between save times: the file
    is readable, every saved snapshot exact, and --resume completes it bit for bit."""
    (tmp_path / "c.toml").write_text(KILLED)
    reference = tmp_path / "reference.h5"
    solver.run(config.load(tmp_path / "c.toml", config.resolve_particles), reference)
    n_total = len(io.read_run(reference)["t"])
    rng = np.random.default_rng(5)
    between = 0
    for trial in range(3):
        out = tmp_path / f"killed{trial}.h5"
        proc = subprocess.Popen([sys.executable, "-m", "spherepde", "particles", tmp_path / "c.toml", "--out", out],
                                stderr=subprocess.PIPE, text=True)
        for _ in range(rng.integers(2, n_total - 3)):  # one log line per saved snapshot
            proc.stderr.readline()
        time.sleep(rng.uniform(0.0, 0.1))  # a save interval takes ≈ 0.1 s
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        run = assert_same_run(out, reference)
        assert len(run["t"]) < n_total and run["status"] == "running"  # killed inside the run
        with h5py.File(out) as h5:
            t_checkpoint = h5["checkpoint/meta"][h5["checkpoint/current"][()]][0]
        between += not np.isclose(t_checkpoint / 0.1, np.round(t_checkpoint / 0.1))
        resumed = spherepde("particles", tmp_path / "c.toml", "--out", out, "--resume", "--quiet")
        assert resumed.returncode == 0, resumed.stderr
        assert assert_same_run(out, reference, n_total)["status"] == "finished"
    assert between >= 1  # at least one resume started inside a save interval
