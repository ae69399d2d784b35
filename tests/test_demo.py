"""The main job (`spherepde demo`), on a small configuration of the same kind."""
import pytest

from spherepde import demo
from spherepde.errors import NumericalFailure

SMALL = demo.CONFIG.replace("lmax = 127", "lmax = 24").replace("amplitude = 1e-3", "amplitude = 1e-2")


def test_demo_writes_run_figures_and_a_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "CONFIG", SMALL.replace("t_end = 16.0", "t_end = 6.0"))
    demo.main(tmp_path)
    printed = capsys.readouterr().out
    assert "winning degree l* = 4" in printed and "status finished" in printed and "figures:" in printed
    assert {"demo.h5", "demo.toml", "density_maps.png", "energy_per_degree.png"} <= {p.name for p in tmp_path.iterdir()}


def test_demo_that_loses_resolution_still_shows_what_it_has(tmp_path, monkeypatch, capsys):
    """lmax = 24 cannot follow the clusters to t = 16: the run stops (exit 1 from the CLI), but the
    snapshots so far are plotted and summarized first."""
    monkeypatch.setattr(demo, "CONFIG", SMALL)
    with pytest.raises(NumericalFailure, match="larger lmax"):
        demo.main(tmp_path)
    assert "status failed" in capsys.readouterr().out
    assert (tmp_path / "density_maps.png").stat().st_size > 0
