"""Measured against predicted growth rates, on synthetic spectra with known rates."""
import json
import math

import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spherepde import compare, linear
from spherepde.harmonics import harmonic_dimension
from spherepde.errors import InputError

SETTINGS = settings(max_examples=40)
WINDOW = 0.05  # compare_spectrum's default max_amplitude


def exponential_spectrum(t, initial, rates):
    """E_l(t) = E_l(0) e^{2λ_l t} for l ≥ 1 and E_0 = 1: exactly linear dynamics."""
    energy = np.asarray(initial)[None, :] * np.exp(2 * np.outer(t, rates))
    energy[:, 0] = 1.0
    return energy


def initial_energies(d, weights):
    """White noise: E_l(0) ∝ N(d,l), times weights of order one."""
    return 1e-8 * np.array([1.0] + [harmonic_dimension(d, l) * w for l, w in enumerate(weights, 1)])


def write_run(path, t, spectrum, config, modes=None):
    """A run file with the layout of docs/file-format.md (only what compare reads; the configuration
    resolves the kernel at lmax = 40 while the synthetic spectrum stops at degree 10)."""
    with h5py.File(path, "w") as f:
        f["t"] = t
        f["diagnostics/spectrum"] = spectrum
        if modes is not None:
            f["diagnostics/modes"] = modes
        f.attrs["config"] = config


def config_text(model="SA", beta=9.0, kind="sphere", lmax=40, modes=None, extra=""):
    seeded = f"modes = {json.dumps(modes)}\n" if modes else ""
    return (
        f'[model]\nname = "{model}"\nbeta = {beta}\n{extra}\n[domain]\nkind = "{kind}"\nlmax = {lmax}\n'
        f'[initial]\nkind = "perturbed_uniform"\namplitude = 1e-3\n{seeded}'
    )


problems = st.tuples(
    st.sampled_from(["SA", "USA"]),
    st.sampled_from([2, 3]),
    st.one_of(st.floats(1.0, 40.0), st.floats(-20.0, -1.0)),
    st.lists(st.floats(0.5, 2.0), min_size=10, max_size=10),
    st.integers(30, 120),
)


@SETTINGS
@given(problem=problems)
def test_recovers_known_rates(problem):
    model, d, beta, weights, n_t = problem
    rates = linear.growth_rates(beta, d, model, 10)
    initial = initial_energies(d, weights)
    fastest = int(np.argmax(rates))
    t = np.linspace(0, 1.2 * math.log(1 / initial[fastest]) / (2 * rates[fastest]), n_t)  # past A = 1
    energy = exponential_spectrum(t, initial, rates)
    result = compare.compare_spectrum(t, energy, beta, d, model)

    amplitude = np.sqrt(energy[:, 1:].sum(axis=1))
    assert result["window"]["t_end"] == t[amplitude <= WINDOW][-1]
    assert result["window"]["t_start"] == t[0]
    # Exact exponentials: the least-squares slopes are exact up to rounding of log E
    # (≤ 1e-15 |log E| ≈ 4e-14) over the fitted span, far below 1e-9 of the largest rate.
    scale = np.max(np.abs(rates))
    fitted = [row for row in result["degrees"] if row["measured_rate"] is not None]
    assert result["window"]["leading_degree"] in [row["degree"] for row in fitted]
    for row in fitted:
        assert row["predicted_rate"] == rates[row["degree"]]
        assert abs(row["measured_rate"] - rates[row["degree"]]) <= 1e-9 * scale
    dominant = result["dominant_degree"]
    at_end = energy[np.nonzero(amplitude <= WINDOW)[0][-1]]
    assert dominant["measured"] == dominant["expected"] == int(np.argmax(at_end[1:])) + 1
    assert dominant["fastest_growing"] == linear.dominant_degree(beta, d, model)
    # Predicted end: Σ_l E_l(0) e^{2λ_l t} = 1; the measurement interpolates log A between
    # snapshots of this same function, so it is within one snapshot spacing.
    end = result["linear_phase_end"]
    assert np.sum(initial[1:] * np.exp(2 * rates[1:] * end["predicted"])) == pytest.approx(1.0, rel=1e-9)
    assert abs(end["measured"] - end["predicted"]) <= t[1] - t[0]
    json.dumps(result, allow_nan=False)


@SETTINGS
@given(problem=problems, seed=st.integers(0, 2**32 - 1))
def test_recovers_rates_through_noise(problem, seed):
    # Multiplicative noise e^{η}, η ~ N(0, σ²) on E_l: log √E_l carries noise σ/2, so the
    # fitted slope has standard error (σ/2)/√S_tt, S_tt = Σ (t_i - t̄)² over the fitted
    # snapshots; 6 standard errors fail with probability ~2e-9.
    model, d, beta, weights, n_t = problem
    sigma = 1e-3
    rates = linear.growth_rates(beta, d, model, 10)
    initial = initial_energies(d, weights)
    fastest = int(np.argmax(rates))
    t = np.linspace(0, 1.2 * math.log(1 / initial[fastest]) / (2 * rates[fastest]), n_t)
    noise = np.random.default_rng(seed).normal(0, sigma, (n_t, 11))
    energy = exponential_spectrum(t, initial, rates) * np.exp(noise)
    result = compare.compare_spectrum(t, energy, beta, d, model)
    lead = result["degrees"][result["window"]["leading_degree"] - 1]
    used = t[(t >= lead["t_first"]) & (t <= result["window"]["t_end"])][: lead["samples"]]
    standard_error = sigma / 2 / math.sqrt(np.sum((used - used.mean()) ** 2))
    assert abs(lead["measured_rate"] - lead["predicted_rate"]) <= 6 * standard_error


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("d, l", [(3, 4), (2, 3)])
def test_seeded_mode_and_nonlinear_harmonics(sign, d, l):
    # ρ = 1 + c(t) Y_l with c = ±1e-3 e^{λ_l t}; the quadratic terms put energy c⁴ into degree
    # 2l, which grows at 2λ_l: it lies below A²/max_amplitude and must not be fitted.
    beta = 9.0
    rates = linear.growth_rates(beta, d, "SA", 2 * l)
    t = np.linspace(0, 12, 49)
    c = sign * 1e-3 * np.exp(rates[l] * t)
    energy = np.zeros((t.size, 2 * l + 1))
    energy[:, 0], energy[:, l], energy[:, 2 * l] = 1.0, c**2, c**4
    result = compare.compare_spectrum(t, energy, beta, d, "SA", modes=[[l, 0]], mode_coefficients=c[:, None])
    (mode,) = result["modes"]
    assert (mode["degree"], mode["order"]) == (l, 0)
    assert mode["measured_rate"] == pytest.approx(rates[l], rel=1e-12)  # exact data, see above
    assert result["degrees"][l - 1]["measured_rate"] == pytest.approx(rates[l], rel=1e-12)
    assert result["degrees"][2 * l - 1]["measured_rate"] is None


def _refusal(t, energy, match):
    with pytest.raises(compare.NoExponentialWindow, match=match) as info:
        compare.compare_spectrum(t, energy, 9.0, 3, "SA")
    assert "\n" not in str(info.value) and isinstance(info.value, InputError)


def test_refuses_a_run_far_from_uniform():
    t = np.linspace(0, 5, 30)
    _refusal(t, exponential_spectrum(t, [1.0] + [0.02] * 6, [0.0] + [0.5] * 6), "does not start near")


def test_refuses_decay():
    t = np.linspace(0, 5, 30)
    _refusal(t, exponential_spectrum(t, [1.0] + [1e-6] * 6, [0.0] + [-0.5] * 6), "does not grow")


@pytest.mark.parametrize("energy", [0.0, 1e-30])
def test_refuses_a_uniform_state(energy):
    # exactly uniform, or perturbed at round-off level only
    t = np.linspace(0, 5, 30)
    _refusal(t, exponential_spectrum(t, [1.0] + [energy] * 6, [0.0] + [0.5] * 6), "above round-off")


def test_refuses_too_few_snapshots():
    t = np.array([0.0, 5.0, 10.0, 15.0])
    _refusal(t, exponential_spectrum(t, [1.0] + [1e-6] * 6, [0.0] + [0.4] * 6), "only 2 snapshot")


@SETTINGS
@given(power=st.floats(1.0, 10.0))
def test_refuses_power_law_growth(power):
    # E_4 = 1e-8 (1+t)^p reaches ‖ρ-1‖ = 0.05 within the run but is no exponential: log √E_4
    # is concave in t, by at least 13% of its rise for p ≤ 10 over that window.
    t_window = (WINDOW**2 / 1e-8) ** (1 / power) - 1
    t = np.linspace(0, 1.5 * t_window, 200)
    energy = np.zeros((t.size, 6))
    energy[:, 0], energy[:, 4] = 1.0, 1e-8 * (1 + t) ** power
    _refusal(t, energy, "straight line")


def test_rejects_inconsistent_input():
    t = np.linspace(0, 1, 10)
    with pytest.raises(InputError, match="shape"):
        compare.compare_spectrum(t, np.ones((9, 5)), 9.0, 3, "SA")
    with pytest.raises(InputError, match="mode"):
        compare.compare_spectrum(
            t, np.ones((10, 5)), 9.0, 3, "SA", modes=[[2, 0]], mode_coefficients=np.ones((10, 2))
        )
    with pytest.raises(InputError, match="model"):
        compare.compare_spectrum(t, np.ones((10, 5)), 9.0, 3, "XA")


# --- run files ------------------------------------------------------------------------------

def seeded_run(path, kind="sphere", model="SA", beta=9.0, extra=""):
    d, l = {"sphere": 3, "circle": 2}[kind], 4
    rates = linear.growth_rates(beta, d, model, 10)
    t = np.linspace(0, 2.2 * math.log(1e3) / rates[l], 60)
    c = 1e-3 * np.exp(rates[l] * t)
    energy = np.zeros((t.size, 11))
    energy[:, 0], energy[:, l] = 1.0, c**2
    write_run(path, t, energy, config_text(model, beta, kind, 40, [[l, 0]], extra), c[:, None])
    return rates[l]


@pytest.mark.parametrize("kind, model, beta", [("sphere", "SA", 9.0), ("circle", "usa", 5.0)])
def test_compare_run(tmp_path, kind, model, beta):
    path = tmp_path / "run.h5"
    rate = seeded_run(path, kind, model, beta)
    result = compare.compare_run(path)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["dim"] == {"sphere": 3, "circle": 2}[kind] and result["model"] == model.upper()
    assert (result["run"], result["domain"], result["initial"]) == (str(path), kind, "perturbed_uniform")
    assert result["modes"][0]["measured_rate"] == pytest.approx(rate, rel=1e-12)
    assert result["degrees"][3]["measured_rate"] == pytest.approx(rate, rel=1e-12)
    # one degree from amplitude 1e-3: ‖ρ-1‖ = 1 at ln(1e3)/λ_4, both measured on the
    # log-linear data (interpolation is exact) and predicted
    end = result["linear_phase_end"]
    assert end["predicted"] == pytest.approx(math.log(1e3) / rate, rel=1e-12)
    assert end["measured"] == pytest.approx(math.log(1e3) / rate, rel=1e-12)
    text = compare.format_comparison(result)
    assert "window t ∈ [0," in text and "leading degree 4" in text and str(path) in text
    assert "no linear signal" in text and "1-3, 5-10" in text


def test_compare_run_refuses_general_matrices(tmp_path):
    path = tmp_path / "run.h5"
    seeded_run(path, extra="V = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]")
    with pytest.raises(InputError, match=r"linear theory covers Q\^T K = bI and V = vI"):
        compare.compare_run(path)
    seeded_run(path, extra="V = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]")
    assert compare.compare_run(path)["window"]["leading_degree"] == 4


def test_compare_run_rejects_bad_files(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(InputError, match="does not exist"):
        compare.compare_run(tmp_path / "missing.h5")
    write_run(path, np.arange(5.0), np.ones((5, 3)), "[model\nname =")
    with pytest.raises(InputError, match="not valid TOML"):
        compare.compare_run(path)
    write_run(path, np.arange(5.0), np.ones((5, 3)), config_text(kind="torus"))
    with pytest.raises(InputError, match="torus"):
        compare.compare_run(path)
    with h5py.File(path, "w") as f:
        f["t"] = np.arange(5.0)
        f.attrs["config"] = config_text()
    with pytest.raises(InputError, match="diagnostics/spectrum"):
        compare.compare_run(path)


def test_plot_comparison(tmp_path):
    path = tmp_path / "run.h5"
    seeded_run(path)
    for source in (path, compare.compare_run(path)):
        out = compare.plot_comparison(source, tmp_path / "compare.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        out.unlink()
    t = np.linspace(0, 10, 40)
    energy = exponential_spectrum(t, [1] + [1e-6] * 4, [0] + [0.5] * 4)
    synthetic = compare.compare_spectrum(t, energy, 9.0, 3, "SA")
    with pytest.raises(InputError, match="run file"):
        compare.plot_comparison(synthetic, tmp_path / "compare.png")


def test_slow_degrees_are_flagged_unresolved():
    """A degree whose predicted amplitude changes by less than a factor e over its fitted span is
    reported but flagged, and left out of the text table."""
    from spherepde import linear

    beta, lmax = 9.0, 12
    rates = linear.growth_rates(beta, 3, "SA", lmax)
    t = np.linspace(0.0, 8.0, 33)
    energy = 1e-8 * np.exp(2 * np.outer(t, rates))
    energy[:, 0] = 1.0
    result = compare.compare_spectrum(t, energy, beta, 3, "SA")
    for row in result["degrees"]:
        span = t[-1] - row["t_first"] if row["t_first"] is not None else 0.0
        assert row["resolved"] == (row["measured_rate"] is not None and rates[row["degree"]] * span >= 1.0)
    assert any(row["resolved"] for row in result["degrees"]) and not all(row["resolved"] for row in result["degrees"])
    text = compare.format_comparison(result)
    slowest = max(row["degree"] for row in result["degrees"] if not row["resolved"])
    assert f"\n{slowest:>5} " not in text and "not measurable" in text
