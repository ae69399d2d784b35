"""The command line and the run-file contract of design.md §2 (exit codes, layout, resume)."""
import subprocess
import sys
import tomllib

import h5py
import numpy as np
import pytest

from conftest import interrupt_after, make_config
from spherepde import io, solver

GOOD = """
[model]
name = "SA"
beta = 4.0
[domain]
kind = "sphere"
lmax = 20
[initial]
kind = "perturbed_uniform"
amplitude = 0.05
seed = 3
[time]
t_end = 1.0
save_every = 0.25
"""


def spherepde(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spherepde", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_run_writes_the_documented_file(tmp_path):
    (tmp_path / "c.toml").write_text(GOOD)
    out = tmp_path / "run.h5"
    result = spherepde("run", tmp_path / "c.toml", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "t = 0.5 / 1" in result.stderr  # a log line per snapshot when not on a terminal
    with h5py.File(out) as h5:
        t = h5["t"][...]
        np.testing.assert_array_equal(t, [0, 0.25, 0.5, 0.75, 1.0])
        rho, w = h5["density"][...], h5["grid/weights"][...]
        theta, phi = h5["grid/theta"][...], h5["grid/phi"][...]
        assert rho.shape == (5, theta.size, phi.size) and w.shape == rho.shape[1:]
        assert w.sum() == pytest.approx(1.0, abs=1e-14)
        assert np.all(np.diff(theta) > 0) and 0 < theta[0] and theta[-1] < np.pi
        np.testing.assert_allclose(phi, 2 * np.pi * np.arange(phi.size) / phi.size)
        diag = {k: v[...] for k, v in h5["diagnostics"].items()}
        assert {"mass", "energy", "min_density", "spectrum", "tail_energy"} <= set(diag)
        assert diag["spectrum"].shape == (5, 21)
        cfg = tomllib.loads(h5.attrs["config"])
        assert cfg["model"]["beta"] == 4.0 and cfg["domain"]["lmax"] == 20
        assert h5.attrs["version"]
    # independent checks of the stored diagnostics from the grid values and weights alone
    mass = np.einsum("tij,ij->t", rho, w)
    np.testing.assert_allclose(diag["mass"], mass, rtol=1e-14)
    np.testing.assert_allclose(mass, 1.0, atol=1e-13)
    np.testing.assert_allclose(diag["min_density"], rho.min(axis=(1, 2)))
    x = np.stack(np.broadcast_arrays(np.sin(theta)[:, None] * np.cos(phi), np.sin(theta)[:, None] * np.sin(phi), np.cos(theta)[:, None]))
    m = np.einsum("kij,tij,ij->tk", x, rho, w)
    # Y_1m = √3 x_m, so the energy of degree 1 is 3 |∫ x ρ dσ|²
    np.testing.assert_allclose(diag["spectrum"][:, 1], 3 * np.sum(m * m, axis=1), rtol=1e-10)
    np.testing.assert_allclose(diag["spectrum"][:, 0], mass**2, rtol=1e-12)
    total = np.einsum("tij,ij->t", rho**2, w)
    np.testing.assert_allclose(diag["spectrum"].sum(axis=1), total, rtol=1e-12)


@pytest.mark.parametrize(
    "text,key",
    [(GOOD.replace('name = "SA"', 'name = "XA"'), "model.name"),
     (GOOD.replace("beta = 4.0", "beta = nan"), "model.beta"),
     (GOOD.replace("lmax = 20", "lmax = 3"), "domain.lmax"),
     (GOOD.replace("amplitude = 0.05", "amplitude = 5.0"), "negative"),
     (GOOD + "\n[extra]\n", "[extra]"),
     (GOOD.replace("[time]", "[time]\nstep = 1"), "time.step"),
     (GOOD.replace("seed = 3", "modes = [[30, 0]]"), "initial.modes"),
     (GOOD.replace("seed = 3", "modes = [[2, 3]]"), "initial.modes"),
     (GOOD.replace('kind = "perturbed_uniform"\namplitude = 0.05\nseed = 3', 'kind = "from_file"\npath = "absent.h5"'), "initial.path")],
)
def test_invalid_input_exits_2_with_one_line_and_writes_nothing(tmp_path, text, key):
    (tmp_path / "c.toml").write_text(text)
    out = tmp_path / "run.h5"
    result = spherepde("run", tmp_path / "c.toml", "--out", out)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


def test_unwritable_output_exits_2(tmp_path):
    (tmp_path / "c.toml").write_text(GOOD)
    result = spherepde("run", tmp_path / "c.toml", "--out", tmp_path / "no" / "such" / "dir.h5")
    assert result.returncode == 2 and "cannot be written" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["sphere", "circle"])
def test_lost_resolution_exits_1_and_keeps_the_file(tmp_path, kind):
    text = GOOD.replace("beta = 4.0", "beta = 9.0").replace("t_end = 1.0", "t_end = 40.0").replace("save_every = 0.25", "save_every = 1.0")
    text = text.replace('kind = "sphere"\nlmax = 20', f'kind = "{kind}"\nlmax = 24')
    (tmp_path / "c.toml").write_text(text + '\n[numerics]\non_lost_resolution = "stop"\n')
    out = tmp_path / "run.h5"
    result = spherepde("run", tmp_path / "c.toml", "--out", out)
    assert result.returncode == 1
    assert "larger lmax" in result.stderr and "Traceback" not in result.stderr
    run = io.read_run(out)
    assert run["status"] == "failed" and "lmax" in run["message"]
    assert 5 < len(run["t"]) < 40
    assert np.all(run["diagnostics"]["min_density"] > -1e-3 * run["diagnostics"]["max_density"])
    with h5py.File(out) as h5:  # the last good state is checkpointed, at or after the last snapshot
        cp = h5["checkpoint"]
        assert cp["meta"][cp["current"][()]][0] >= run["t"][-1]
        assert h5["t"].shape == (len(run["t"]),)  # a stopped run is trimmed to its saved snapshots


@pytest.mark.parametrize("kind", ["sphere", "circle"])
def test_resume_continues_bit_for_bit(tmp_path, monkeypatch, kind):
    cfg = make_config("SA", 6.0, kind=kind, lmax=20, t_end=3.0, save_every=0.5,
                      initial={"kind": "perturbed_uniform", "amplitude": 0.02, "seed": 4})
    solver.run(cfg, tmp_path / "whole.h5")

    restore = interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        solver.run(cfg, tmp_path / "split.h5")
    assert io.read_run(tmp_path / "split.h5")["status"] == "interrupted"
    restore()
    solver.run(cfg, tmp_path / "split.h5", resume=True)

    whole, split = io.read_run(tmp_path / "whole.h5"), io.read_run(tmp_path / "split.h5")
    np.testing.assert_array_equal(whole["t"], split["t"])
    for name in whole["diagnostics"]:
        np.testing.assert_array_equal(whole["diagnostics"][name], split["diagnostics"][name])
    for i in range(len(whole["t"])):
        np.testing.assert_array_equal(io.read_density(tmp_path / "whole.h5", i), io.read_density(tmp_path / "split.h5", i))


def test_resume_refuses_another_config(tmp_path):
    (tmp_path / "c.toml").write_text(GOOD)
    out = tmp_path / "run.h5"
    assert spherepde("run", tmp_path / "c.toml", "--out", out).returncode == 0
    (tmp_path / "d.toml").write_text(GOOD.replace("beta = 4.0", "beta = 5.0"))
    result = spherepde("run", tmp_path / "d.toml", "--out", out, "--resume")
    assert result.returncode == 2 and "different configuration" in result.stderr
    assert "model.beta = 4.0 in the file, 5.0 now" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_initial_density_from_file_and_particles(tmp_path):
    """from_file continues a saved state (also at another lmax); particles gives a smoothed empirical measure."""
    solver.run(make_config("SA", 4.0, lmax=20, t_end=1.0, save_every=0.5), tmp_path / "a.h5")
    last = io.read_density(tmp_path / "a.h5", -1)
    cfg = make_config("SA", 4.0, lmax=20, t_end=0.5, save_every=0.5, initial={"kind": "from_file", "path": str(tmp_path / "a.h5")})
    solver.run(cfg, tmp_path / "b.h5")
    np.testing.assert_allclose(io.read_density(tmp_path / "b.h5", 0), last, atol=1e-13)
    cfg = make_config("SA", 4.0, lmax=24, t_end=0.5, save_every=0.5, initial={"kind": "from_file", "path": str(tmp_path / "a.h5"), "time": 0.5})
    solver.run(cfg, tmp_path / "c.h5")
    assert io.read_run(tmp_path / "c.h5")["diagnostics"]["mass"][0] == pytest.approx(1.0, abs=1e-13)

    points = np.random.default_rng(0).standard_normal((50, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    cfg = make_config("SA", 4.0, lmax=24, t_end=0.5, save_every=0.5, initial={"kind": "particles", "points": points.tolist(), "bandwidth": 4.0})
    solver.run(cfg, tmp_path / "p.h5")
    run = io.read_run(tmp_path / "p.h5")
    assert run["diagnostics"]["mass"][0] == pytest.approx(1.0, abs=1e-12)
    # the smoothed measure's mean direction is the points' mean shrunk by A_3(κ) = coth κ − 1/κ
    shrink = 1 / np.tanh(4.0) - 1 / 4.0
    assert run["diagnostics"]["mean_direction"][0] == pytest.approx(shrink * np.linalg.norm(points.mean(axis=0)), rel=1e-9)


def test_unresolved_initial_density_is_refused(tmp_path):
    from spherepde.errors import InputError

    with pytest.raises(InputError, match="not resolved at lmax"):
        solver.run(make_config("SA", 1.0, lmax=16, initial={"kind": "von_mises_fisher", "kappa": 80.0, "mean": [0, 0, 1]}), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_linear_json_is_clean_and_matches_theory():
    """stdout is one JSON object (no banner); reference rates of docs/mathematics.md (d = 3, β = 9)."""
    import json

    result = spherepde("linear", "--beta", 9, "--dim", 3, "--model", "SA", "--lmax", 6, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["degrees"] == list(range(7)) and report["dominant_degree"] == 4
    np.testing.assert_allclose(report["growth_rates"][1:], [0.197531, 0.469136, 0.663923, 0.703145, 0.605091, 0.441226], atol=1e-6)
    usa = json.loads(spherepde("linear", "--beta", 9, "--dim", 3, "--model", "usa", "--json").stdout)
    assert usa["growth_rates"][4] == pytest.approx(316.5356, rel=1e-6)
    # beyond the double range the JSON would have to carry scaled numbers: refused, never silently scaled
    result = spherepde("linear", "--beta", 800, "--model", "USA", "--json")
    assert result.returncode == 2 and result.stdout == "" and "double range" in result.stderr
    assert spherepde("linear", "--beta", 800, "--model", "USA").returncode == 0


@pytest.mark.parametrize("args", [["--beta", "nan"], ["--beta", 1, "--dim", 1], ["--beta", 1, "--model", "GPT"], ["--beta", 1, "--lmax", 0]])
def test_linear_bad_input_exits_2(args):
    result = spherepde("linear", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_compare_and_plot_commands(tmp_path):
    import json

    cfg = make_config("SA", 9.0, lmax=24, t_end=12.0, save_every=0.5, initial={"kind": "perturbed_uniform", "amplitude": 1e-4, "modes": [[4, 1]]})
    solver.run(cfg, tmp_path / "r.h5")
    result = spherepde("compare", tmp_path / "r.h5", "--json", "--plot", tmp_path / "cmp.png")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["modes"][0]["relative_error"] < 5e-3 and (tmp_path / "cmp.png").stat().st_size > 0
    result = spherepde("plot", tmp_path / "r.h5", "--out", tmp_path / "figs")
    assert result.returncode == 0, result.stderr
    assert {"density_maps.png", "diagnostics.png", "energy_per_degree.png"} <= {p.name for p in (tmp_path / "figs").iterdir()}  # all: test_plot.py
    assert spherepde("compare", tmp_path / "missing.h5").returncode == 2


def test_phase_diagram_command(tmp_path):
    result = spherepde("linear", "--phase-diagram", "--dim", 3, "--beta-max", 30, "--out", tmp_path / "l.pdf")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "l.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("name", ["missing/dir/fig.png", "fig.unknown", "fig"])
def test_figure_paths_are_checked_before_any_work(tmp_path, name):
    """An unwritable directory or a suffix matplotlib cannot write: exit 2, one line naming the path."""
    for args in (["linear", "--phase-diagram", "--beta-max", 10, "--out"], ["compare", tmp_path / "absent.h5", "--plot"]):
        result = spherepde(*args, tmp_path / name)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and name in result.stderr
    assert list(tmp_path.iterdir()) == []
