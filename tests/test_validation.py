"""Validation scripts in their quick mode (slow: `make test-slow`). Each test reads the JSON summary
the script writes (the Markdown table is for readers)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def script(name: str, out: Path, *args) -> dict:
    """Run validation/<name>.py into ``out``; its JSON summary."""
    result = subprocess.run([sys.executable, ROOT / "validation" / f"{name}.py", "--out", out, *args],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert (out / f"{name}.md").stat().st_size > 0 and (out / f"{name}.png").stat().st_size > 10_000
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.slow
def test_linear_vs_pde_quick(tmp_path):
    """Growth rates of full runs within 1% of λ_l, and the white-noise winner equals l*(β) at both amplitudes
    (quick mode: β with selectivity ≥ 1.13, where the linear phase decides; ≥ 80% of the runs)."""
    result = subprocess.run([sys.executable, ROOT / "validation" / "linear_vs_pde.py", "--quick", "--out", tmp_path],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    summary = json.loads((tmp_path / "linear_vs_pde.json").read_text())
    assert summary["max_relative_error"] < 1e-2
    for amplitude in ("1e-03", "1e-09"):
        winners = summary["winners"][amplitude]
        assert winners["agree_l_star"] >= 0.8 * winners["runs"]
    assert (tmp_path / "rates.png").stat().st_size > 0


@pytest.mark.slow
def test_meanfield_limit_quick(tmp_path):
    """Tokens vs PDE at n ≤ 2000: the Sobolev distance at t = 0 falls like n^{-1/2} (exactly so in
    expectation, E D_s² = Σ_l w_l (N(d,l) − ‖a_l‖²)/n for iid samples; with 2–8 seeds per n the
    fitted exponent scatters by about ±0.1), later distances still fall, and the growth rate of l*
    measured from token runs is within 5% of the finite-n prediction (few seeds, short window)."""
    result = subprocess.run([sys.executable, ROOT / "validation" / "meanfield_limit.py", "--quick", "--out", tmp_path],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    summary = json.loads((tmp_path / "meanfield_limit.json").read_text())
    for kind in ("sphere", "circle"):
        exponents = summary[kind]["sobolev_exponent"]
        assert -0.7 < exponents[0] < -0.3
        assert all(-0.8 < e < -0.2 for e in exponents)
        rate = summary[kind]["rate"]
        assert abs(rate["measured"] / rate["finite_n"] - 1) < 0.05
    assert (tmp_path / "meanfield_limit.md").stat().st_size > 0 and (tmp_path / "meanfield_limit.png").stat().st_size > 0


@pytest.mark.slow
def test_ott_antonsen_validation(tmp_path):
    """R(t) of the PDE against the Ott–Antonsen closed form to 1e-6 at every resolved snapshot."""
    assert script("ott_antonsen", tmp_path)["max_error"] < 1e-6


@pytest.mark.slow
def test_circle_cluster_counts_validation(tmp_path):
    """Cluster counts from white noise equal l*(β) in most runs away from the switch points (the committed
    run: 51/55 where λ_l*/λ_2nd ≥ 1.05); here at least 80% there."""
    summary = script("circle_cluster_counts", tmp_path)
    assert summary["agree_away_from_switch_points"] >= 0.8 * summary["runs_away_from_switch_points"]


@pytest.mark.slow
def test_phase_diagram_validation_quick(tmp_path):
    """validation/phase_diagram.py by default: 16 runs, winners as expected from their noise."""
    summary = script("phase_diagram", tmp_path, "--runs", tmp_path / "runs")
    assert summary["runs"] == 16 and summary["winner_is_expected"] == 16


@pytest.mark.slow
def test_high_dimension_quick(tmp_path):
    """Zonal PDE in d ≤ 64 (quick mode): the winner of the linear phase is the degree linear growth from the run's
    own initial spectrum predicts in every run, and l*(β, d) in at least 2/3 of them (the β sit mid-interval but
    the noise of one seed can still favour a neighbour); tokens drawn from ρ₀ agree with it at t = 0 as iid samples
    do: |z_l| < 4 and KS·√n < 2 (probabilities of exceeding them ~1e-4 and 1e-3)."""
    summary = script("high_dimension", tmp_path, "--quick")
    assert summary["winner_is_expected"] == summary["runs"]
    assert summary["winner_is_l_star"] >= 2 / 3 * summary["runs"]
    initial = [r for r in summary["tokens"] if r["t"] == 0]
    assert initial and all(max(abs(z) for z in r["z"]) < 4 and r["ks_root_n"] < 2 for r in initial)


@pytest.mark.slow
def test_metastability_quick(tmp_path):
    """Past the resolution (quick mode): the switched and the resolved run agree in E_l (l ≤ 8) to 1e-10 at the
    switch, and 1.25 time units later to 1e-8 with oversampling 4, the error falling with more nodes; two clusters follow their ODE to 1e-6 rad and reach a gap of 1e-3 at the
    ODE's time to 1e-5; the collapse rates are 2c to 1e-3; the staircase's merge times grow like
    e^{s β(1 − cos Δ)} with s within 10% of 1 and the energy ends at 1 (one cluster)."""
    summary = script("metastability", tmp_path, "--quick")
    first, last = summary["overlap"]["rows"][0], summary["overlap"]["rows"][-1]
    assert max(first["by_oversampling"].values()) < 1e-10
    errors = [last["by_oversampling"][f] for f in ("1", "2", "4")]
    assert errors[2] < 1e-8 and errors[0] > errors[1] > errors[2]
    two = summary["two_clusters"]
    assert two["max_gap_error"] < 1e-6
    assert two["gap_1e-3_run"] == pytest.approx(two["gap_1e-3_ode"], rel=1e-5)
    for row in summary["collapse"]:
        assert row["spread"] == pytest.approx(row["predicted"], rel=1e-3)
        assert row["defect"] == pytest.approx(row["predicted"], rel=1e-3)
    assert abs(summary["staircase_fit"]["slope"] - 1) < 0.1
    assert all(item["merges"][-1]["energy"] == pytest.approx(1.0) for item in summary["staircase"])


@pytest.mark.slow
def test_tokens_metastable_quick(tmp_path):
    """The mean field (PDE, then weighted points) forms three clusters on S¹ (SA, β = 6) and merges two of them
    between t = 30 and 100; 10⁴ tokens sampled from the same ρ₀ form three clusters within 0.2 rad of the mean
    field's (the full run: RMS 0.07 rad at 10⁴, falling with n)."""
    summary = script("tokens_metastable", tmp_path, "--quick")
    field = summary["mean_field"]
    assert field["clusters"] == 3 and 30 < field["merge"] < 100
    assert summary["n"]["10000"]["angle"] < 0.2
