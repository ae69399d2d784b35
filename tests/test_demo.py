"""The main job (`spherepde demo`), on small configurations of the same kind."""
import pytest

from spherepde import demo
from spherepde.errors import NumericalFailure


def small(text: str, lmax: str) -> str:
    return text.replace("lmax = 127", f"lmax = {lmax}").replace("lmax = 255", f"lmax = {lmax}").replace(
        "amplitude = 1e-3", "amplitude = 1e-2")


def test_demo_follows_the_whole_life_and_summarizes_it(tmp_path, monkeypatch, capsys):
    """S² at lmax 24 and S¹ at lmax 32 from noise to t = 1e9: both runs finish as one cluster (energy e^β/2β),
    the summary names the acts, and both sets of figures exist."""
    monkeypatch.setattr(demo, "CONFIG", small(demo.CONFIG, "24"))
    monkeypatch.setattr(demo, "CIRCLE", small(demo.CIRCLE, "32"))
    demo.main(tmp_path)
    printed = capsys.readouterr().out
    assert printed.count("status finished") == 2
    for part in ("winning degree", "cluster count at formation:", "merges (located to the snapshot spacing)",
                 "contraction inside the clusters", "predicted 2c = 2", "one Dirac mass: e^beta/(2 beta) = 450.171"):
        assert part in printed
    assert printed.count("-> 450.171 (nondecreasing") == 2
    for folder in (tmp_path, tmp_path / "circle"):
        assert {"demo.h5", "demo.toml", "energy_per_degree.png", "life.png"} <= {p.name for p in folder.iterdir()}


def test_demo_that_cannot_continue_still_shows_what_it_has(tmp_path, monkeypatch, capsys):
    """With on_lost_resolution = "stop" lmax 24 cannot follow the clusters: the S² run stops (exit 1 from the
    CLI), but its snapshots so far are plotted and summarized first, and the circle still runs."""
    stop = small(demo.CONFIG, "24") + '\n[numerics]\non_lost_resolution = "stop"\n'
    monkeypatch.setattr(demo, "CONFIG", stop)
    monkeypatch.setattr(demo, "CIRCLE", small(demo.CIRCLE, "32").replace("t_end = 1e9", "t_end = 5.0"))
    with pytest.raises(NumericalFailure, match="larger lmax"):
        demo.main(tmp_path)
    printed = capsys.readouterr().out
    assert "status failed" in printed and "status finished" in printed
    assert (tmp_path / "density_maps.png").stat().st_size > 0
