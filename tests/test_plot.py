"""Figures of a run: every file of `spherepde plot`, the animation's frames, the projection."""
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib import animation as mpl_animation
from PIL import Image

from conftest import make_config
from spherepde import config, io, plot, solver
from spherepde.integrate import save_times

SPHERE = ["density_maps.png", "density_orthographic.png", "energy_per_degree.png", "diagnostics.png",
          "clusters.png", "life.png", "density.gif"]
CIRCLE = ["density.png", "energy_per_degree.png", "diagnostics.png", "clusters.png", "life.png", "density.gif"]
MOVIE = ["density.mp4"] if mpl_animation.writers.is_available("ffmpeg") else []
TOKENS = {2: ["token_angles.png", "token_diagnostics.png"], 3: ["tokens.png", "token_diagnostics.png"],
          4: ["token_diagnostics.png"]}


@pytest.fixture(scope="module", params=["sphere", "circle"])
def run_file(request, tmp_path_factory):
    """A 9-snapshot run whose density grows to about 1 ± 0.2 (amplitude 0.05, t = 2)."""
    path = tmp_path_factory.mktemp(request.param) / "run.h5"
    initial = {"kind": "perturbed_uniform", "amplitude": 0.05, "seed": 1}
    solver.run(make_config(beta=4.0, kind=request.param, lmax=16, t_end=2.0, initial=initial), path)
    return request.param, path


@pytest.fixture(scope="module", params=[2, 3, 4])
def token_file(request, tmp_path_factory):
    """A 5-snapshot token run of 50 tokens on S^(d-1), d = 2, 3, 4, that starts to cluster (β = 4, t = 2)."""
    d = request.param
    path = tmp_path_factory.mktemp(f"tokens{d}") / "tokens.h5"
    raw = {"model": {"beta": 4.0}, "particles": {"n": 50, "d": d, "seed": 1}, "time": {"t_end": 2.0, "save_every": 0.5}}
    solver.run(config.resolve_particles(raw), path)
    return d, path


def check_figures(directory, expected, stdout):
    """`spherepde plot` printed and wrote exactly ``expected``, each a real picture."""
    assert [line.rsplit("/", 1)[-1] for line in stdout.split()] == expected
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected)
    for name in expected:
        if name.endswith((".png", ".gif")):
            with Image.open(directory / name) as image:
                assert min(image.size) >= 200  # a real figure, not an empty canvas
                assert np.unique(np.asarray(image.convert("L"))).size > 10


def plot_command(path, out):
    return subprocess.run([sys.executable, "-m", "spherepde", "plot", str(path), "--out", str(out)],
                          capture_output=True, text=True)


def test_plot_command_writes_every_figure(run_file, tmp_path):
    kind, path = run_file
    result = plot_command(path, tmp_path / "figs")
    assert result.returncode == 0, result.stderr
    check_figures(tmp_path / "figs", (SPHERE if kind == "sphere" else CIRCLE) + MOVIE, result.stdout)


def test_plot_command_draws_token_runs(token_file, tmp_path):
    d, path = token_file
    result = plot_command(path, tmp_path / "figs")
    assert result.returncode == 0, result.stderr
    check_figures(tmp_path / "figs", TOKENS[d], result.stdout)


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, in order, kept for inspection."""
    saved, save = [], plot._save

    def keep(fig, *args, **kwargs):
        saved.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(plot, "_save", keep)
    return saved


def test_token_diagnostics_draw_the_saved_series(token_file, tmp_path, figures):
    _, path = token_file
    plot.token_diagnostics(path, tmp_path)
    diag = io.read_run(path)["diagnostics"]
    energy, *panels = figures[0].axes
    np.testing.assert_array_equal(energy.lines[0].get_ydata(), diag["energy"])  # identity matrices: an energy
    assert "nondecreasing" in energy.get_title()
    for ax, key in zip(panels, ["mean_direction", "clusters", "close_pairs"]):
        np.testing.assert_array_equal(ax.lines[0].get_ydata(), diag[key])


@pytest.mark.parametrize("token_file", [3], indirect=True)
def test_token_sphere_shows_every_token_once_per_time(token_file, tmp_path, figures):
    _, path = token_file
    plot.token_sphere(path, tmp_path)
    t = io.read_run(path)["t"]
    mean = io.read_points(path, -1).mean(axis=0)
    axes = np.array(figures[0].axes[:-1]).reshape(2, -1)  # the last axes is the colour bar
    for k, i in enumerate(plot.snapshot_indices(len(t), 3)):
        x = io.read_points(path, i)
        for ax, view in zip(axes[:, k], (mean, -mean)):  # top: seen from the final mean direction
            px, py, depth = plot._orthographic(x, plot._view_basis(view / np.linalg.norm(mean)))
            shown = ax.collections[0].get_offsets()
            np.testing.assert_allclose(shown, np.column_stack([px, py])[depth > 0], atol=1e-12)
        assert sum(len(ax.collections[0].get_offsets()) for ax in axes[:, k]) == len(x) == 50


@pytest.mark.parametrize("token_file", [2], indirect=True)
def test_token_angles_show_every_token_at_its_angle(token_file, tmp_path, figures):
    _, path = token_file
    plot.token_angles(path, tmp_path)
    t = io.read_run(path)["t"]
    angles = np.stack([np.arctan2(*io.read_points(path, i)[:, ::-1].T) for i in range(len(t))])  # (n_t, n)
    ax = figures[0].axes[0]
    assert ax.get_ylim() == (0, 2 * np.pi)
    segments = ax.collections[0].get_segments()
    assert len(segments) % 50 == 0
    lines = np.stack([segment[:, 1] for segment in segments]).reshape(-1, 50, len(t))  # (copies, n, n_t)
    for segment in segments:
        np.testing.assert_array_equal(segment[:, 0], t)
    # every copy is the token's angle up to a multiple of 2π, and one copy shows it inside [0, 2π]
    turns = (lines - angles.T) / (2 * np.pi)
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-9)
    visible = (lines >= 0) & (lines <= 2 * np.pi)
    assert visible.any(axis=0).all()


@pytest.mark.parametrize("max_frames,frames", [(4, 4), (60, 9)])
def test_animation_subsamples_evenly_to_max_frames(run_file, tmp_path, max_frames, frames):
    _, path = run_file
    (gif, *_) = plot.animation(path, tmp_path, max_frames=max_frames)
    with Image.open(gif) as image:
        assert image.n_frames == frames
        pictures = []
        for k in range(image.n_frames):
            image.seek(k)
            pictures.append(np.asarray(image.convert("L"), dtype=float))
    assert all(np.any(a != b) for a, b in zip(pictures, pictures[1:]))  # time moves on every frame
    assert plot.snapshot_indices(9, max_frames) == (list(range(9)) if frames == 9 else [0, 3, 5, 8])


def test_orthographic_projection_centre_rim_and_far_side():
    view = plot._unit(1.0, 2.0)
    basis = plot._view_basis(view)
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-15)
    x, y, depth = plot._orthographic(np.stack([view, -view]), basis)
    np.testing.assert_allclose([x[0], y[0], depth[0]], [0, 0, 1], atol=1e-15)
    assert depth[1] == pytest.approx(-1)
    # points at 90° from the view lie on the rim; points beyond are pulled onto it
    ring = plot._unit(np.linspace(0.1, np.pi - 0.1, 7), 2.0 + np.pi / 2)
    x, y, depth = plot._orthographic(ring, plot._view_basis(plot._unit(np.pi / 2, 2.0)))
    np.testing.assert_allclose(np.hypot(x, y), 1.0, atol=1e-15)
    np.testing.assert_allclose(depth, 0.0, atol=1e-15)
    behind = plot._unit(np.linspace(0.2, 2.9, 9), 2.0 + np.pi)  # the far half of a great circle
    x, y, depth = plot._orthographic(behind, plot._view_basis(plot._unit(np.pi / 2, 2.0)))
    far = depth < 0
    assert far.any() and np.allclose(np.hypot(x[far], y[far]), 1.0)
    # east points right and north up for a view from the equator
    x, y, _ = plot._orthographic(np.array([[0.0, 0.0, 1.0], plot._unit(np.pi / 2, 2.1)]), plot._view_basis(plot._unit(np.pi / 2, 2.0)))
    assert y[0] == pytest.approx(1.0) and x[1] > 0


# ------------------------------------------------------------------ the energy panel follows the model
def pde_run(directory, kind, beta, lmax=12, **matrices):
    path = directory / f"{kind}_{beta}.h5"
    raw = {"model": {"beta": beta, **matrices}, "domain": {"kind": kind, "lmax": lmax},
           "time": {"t_end": 0.5, "save_every": 0.25}}
    solver.run(config.resolve(raw), path)
    return path


def test_energy_is_drawn_and_called_monotone_for_identity_matrices(run_file, tmp_path, figures):
    _, path = run_file
    plot.diagnostics(path, tmp_path)
    energy = figures[0].axes[0]
    np.testing.assert_array_equal(energy.lines[0].get_ydata(), io.read_run(path)["diagnostics"]["energy"])
    assert "nondecreasing" in energy.get_title()


@pytest.mark.parametrize("kind,beta,matrices,reason", [
    ("sphere", "inf", {}, "β = ∞ (zero temperature)"),
    ("circle", 2.0, {"V": [[1.0, 0.0], [0.0, 0.5]]}, "QᵀK ≠ I or V ≠ I"),
    ("circle", 2.0, {"Q": [[0.0, -1.0], [1.0, 0.0]]}, "QᵀK ≠ I or V ≠ I"),
])
def test_models_without_an_energy_say_so_instead_of_drawing_it(tmp_path, figures, kind, beta, matrices, reason):
    path = pde_run(tmp_path, kind, beta, **matrices)
    assert np.isnan(io.read_run(path)["diagnostics"]["energy"]).all()
    plot.diagnostics(path, tmp_path)
    energy = figures[0].axes[0]
    assert len(energy.lines) == 0 and "nondecreasing" not in energy.get_title()
    assert [text.get_text() for text in energy.texts] == [f"no monotone energy:\n{reason}"]


def test_token_energy_is_not_drawn_for_general_values(tmp_path, figures):
    path = tmp_path / "tokens.h5"
    raw = {"model": {"beta": 4.0, "V": np.diag([1.0, 0.5, -0.5]).tolist()}, "particles": {"n": 20},
           "time": {"t_end": 0.5, "save_every": 0.25}}
    solver.run(config.resolve_particles(raw), path)
    plot.token_diagnostics(path, tmp_path)
    energy = figures[0].axes[0]
    assert len(energy.lines) == 0
    assert [text.get_text() for text in energy.texts] == ["no monotone energy:\nQᵀK ≠ I or V ≠ I"]


# ------------------------------------------------------------------ no seam where longitude wraps
@pytest.mark.parametrize("n_phi", [8, 9, 48])
def test_longitude_cells_cover_the_circle_each_with_its_nearest_sample(n_phi):
    phi = 2 * np.pi * np.arange(n_phi) / n_phi  # the grids' longitudes
    rho = np.stack([np.cos(phi), np.sin(3 * phi) + phi])  # two rows; the second differs in every column
    edges, columns = plot._longitude_cells(phi, rho)
    assert edges[0] == -np.pi and edges[-1] == np.pi and np.all(np.diff(edges) >= 0)
    assert columns.shape == (2, n_phi + 1)
    np.testing.assert_array_equal(columns[:, -1], columns[:, 0])  # the first column repeated
    # every longitude of the map, the seam at ±π included, shows the sample nearest to it
    lon = -np.pi + 2 * np.pi * (np.arange(9973) + 0.5) / 9973
    cell = np.searchsorted(edges, lon, side="right") - 1
    nearest = np.argmin(np.abs(np.angle(np.exp(1j * (lon[:, None] - phi[None, :])))), axis=1)
    np.testing.assert_array_equal(columns[:, cell], rho[:, nearest])


def test_orthographic_map_of_a_zonal_field_has_no_seam_at_the_antimeridian():
    theta = (np.arange(24) + 0.5) * np.pi / 24
    phi = 2 * np.pi * np.arange(48) / 48
    rho = np.repeat((1 + 0.5 * np.cos(theta))[:, None], phi.size, axis=1)  # constant along parallels
    fig = plot._figure((4, 4))
    fig.set_dpi(100)
    ax = fig.add_axes((0, 0, 1, 1))
    # seen from the equator at longitude π: parallels are horizontal lines, the seam runs down the middle
    plot.orthographic_mesh(ax, theta, phi, rho, plot._view_basis(plot._unit(np.pi / 2, np.pi)))
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_axis_off()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)
    band = image[40:360, 160:241]  # rows inside the disc away from the poles, columns around the seam (200)
    assert np.all(band == band[:, :1])  # every row one colour across the seam
    assert np.all(band[:, 0].min(axis=1) < 200)  # and that colour is not the white background


def test_plotting_leaves_the_matplotlib_backend_alone(tmp_path):
    """Importing spherepde.plot and drawing load no pyplot and set no backend (a user's session is untouched),
    and plot does not load the sweep machinery."""
    code = ("import sys, matplotlib; backend = dict.__getitem__(matplotlib.rcParams, 'backend'); "
            "import spherepde.plot as p; p._save(p._figure((2, 2)), sys.argv[1]); "
            "assert 'matplotlib.pyplot' not in sys.modules and 'spherepde.sweep' not in sys.modules; "
            "assert dict.__getitem__(matplotlib.rcParams, 'backend') is backend")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.png")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("times, scale, linthresh", [
    (save_times(50.0, 0.5), "linear", None),  # evenly spaced: a linear axis
    (save_times(50.0, 0.5)[:-1].tolist() + [49.9], "linear", None),  # a shorter last step changes nothing
    (save_times(1e6, 1.0, save_per_decade=10), "symlog", 1.0),  # even steps to t_s = 4 (Δ/(10^0.1 − 1) = 3.9)
    (save_times(1e9, 1.0, save_per_decade=8, log_from=50.0), "symlog", 10.0),  # to t_s = 50
])
def test_time_axes_follow_the_spacing_of_the_snapshots(times, scale, linthresh):
    """Log-spaced snapshots get a time axis linear up to the power of ten at or below the end of their even steps
    and logarithmic after; evenly spaced ones a linear axis."""
    fig, (ax, bx) = plot._subplots(1, 2, (6, 3))
    plot.time_axis(ax, np.asarray(times))
    plot.time_axis(bx, np.asarray(times), "y")
    for axis in (ax.xaxis, bx.yaxis):
        assert axis.get_scale() == scale
        if linthresh is not None:
            assert axis.get_transform().linthresh == linthresh
            assert axis.get_label_text() == f"t (depth; linear to {linthresh:g}, log after)"
            assert axis.get_view_interval()[0] == times[0]  # no margin of negative times
    assert ax.yaxis.get_scale() == bx.xaxis.get_scale() == "linear"


@given(step=st.floats(1e-3, 10.0), per_decade=st.integers(1, 24), decades=st.integers(2, 9),
       log_from=st.one_of(st.none(), st.floats(0.0, 1e3)))
def test_the_linear_part_of_a_log_time_axis_ends_at_the_power_of_ten_below_the_even_steps_end(step, per_decade,
                                                                                               decades, log_from):
    """save_times' documented rule: even steps k·Δ up to t_s = mΔ, m = max(1, ⌈switch/Δ⌉) with switch = log_from or
    Δ/(10^(1/k) − 1), then t_s·10^(j/k). Where the log part grows the gaps tenfold, the axis is linear up to a power of
    ten L with L ≤ t_s < 10 L."""
    times = save_times(step * 10.0**decades, step, per_decade, log_from)
    switch = step / (10 ** (1 / per_decade) - 1) if log_from is None else log_from
    t_s = step * min(max(1, math.ceil(switch / step * (1 - 1e-12))), len(times) - 1)
    gaps = np.diff(times)
    fig, ax = plot._subplots(1, 1, (4, 3))
    plot.time_axis(ax, times)
    if gaps.max() <= 10 * gaps[0]:
        assert ax.xaxis.get_scale() == "linear"
        return
    L = ax.xaxis.get_transform().linthresh
    assert ax.xaxis.get_scale() == "symlog" and math.log10(L) == round(math.log10(L))
    assert L <= t_s * (1 + 1e-12) < 10 * L


def test_figures_of_a_log_sampled_run_have_log_time_axes(tmp_path, figures):
    """A run saved log-spaced (save_per_decade) is drawn against a log time axis in every time series and heat map."""
    path = tmp_path / "run.h5"
    solver.run(make_config(beta=4.0, kind="circle", lmax=16, t_end=1e3, save_every=0.5, save_per_decade=4), path)
    for draw in (plot.line_density, plot.energy_per_degree, plot.diagnostics, plot.clusters):
        draw(path, tmp_path)
    density, spectrum, diagnostics, clusters = (fig.axes for fig in figures)
    time_axes = [density[0].yaxis, spectrum[0].xaxis, spectrum[1].yaxis, *(ax.xaxis for ax in diagnostics),
                 clusters[0].xaxis]
    assert [axis.get_scale() for axis in time_axes] == ["symlog"] * 7
    assert [axis.get_view_interval()[0] for axis in time_axes] == [0.0] * 7
