"""Figures of a run: every file of `spherepde plot`, the animation's frames, the projection."""
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import animation as mpl_animation
from PIL import Image

from conftest import make_config
from spherepde import plot, solver

SPHERE = ["density_maps.png", "density_orthographic.png", "energy_per_degree.png", "diagnostics.png",
          "clusters.png", "density.gif"]
CIRCLE = ["density.png", "energy_per_degree.png", "diagnostics.png", "clusters.png", "density.gif"]
MOVIE = ["density.mp4"] if mpl_animation.writers.is_available("ffmpeg") else []


@pytest.fixture(scope="module", params=["sphere", "circle"])
def run_file(request, tmp_path_factory):
    """A 9-snapshot run whose density grows to about 1 ± 0.2 (amplitude 0.05, t = 2)."""
    path = tmp_path_factory.mktemp(request.param) / "run.h5"
    initial = {"kind": "perturbed_uniform", "amplitude": 0.05, "seed": 1}
    solver.run(make_config(beta=4.0, kind=request.param, lmax=16, t_end=2.0, initial=initial), path)
    return request.param, path


def test_plot_command_writes_every_figure(run_file, tmp_path):
    kind, path = run_file
    result = subprocess.run([sys.executable, "-m", "spherepde", "plot", str(path), "--out", str(tmp_path / "figs")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    expected = (SPHERE if kind == "sphere" else CIRCLE) + MOVIE
    assert [line.rsplit("/", 1)[-1] for line in result.stdout.split()] == expected
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(expected)
    for name in expected:
        if name.endswith((".png", ".gif")):
            with Image.open(tmp_path / "figs" / name) as image:
                assert min(image.size) >= 200  # a real figure, not an empty canvas
                assert np.unique(np.asarray(image.convert("L"))).size > 10


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
