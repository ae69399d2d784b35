"""Tokens at scale: the spectral backend against the direct sum, "auto" and its choice, the O(n log n)
diagnostics against the exact pair sums they replace, and the token-run checks of issue-size input."""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde import config, solver
from spherepde.errors import InputError
from spherepde.kernels import DirectSum, DirectVelocity, SpectralVelocity, spectral_degree
from spherepde.manifolds import for_points
from spherepde.model import AttentionModel
from spherepde.tokens import TokenField

token_diagnostics = importlib.import_module("spherepde.tokens.diagnostics")


def tokens(n, d, seed, layout="spread"):
    """n unit vectors: iid uniform ("spread"), around 5 random centres ("clustered"), or in one cap of
    random width with a few outliers ("cap": a repulsive kernel's sums are then e^{-2|β|} of its peak)."""
    rng = np.random.default_rng(seed)
    if layout == "clustered":
        centres = rng.standard_normal((5, d))
        x = centres[rng.integers(0, 5, n)] / np.linalg.norm(centres[rng.integers(0, 5, n)], axis=1, keepdims=True)
        x = x + 0.03 * rng.standard_normal((n, d))
    elif layout == "cap":
        x = 10.0 ** rng.uniform(-2, 0) * rng.standard_normal((n, d))
        x[: n - n // 100, -1] += 1.0
    else:
        x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@settings(max_examples=40)
@given(beta=st.floats(-50, 200), name=st.sampled_from(["SA", "USA"]), d=st.sampled_from([2, 3]),
       n=st.sampled_from([3, 40, 700, 3000]), seed=st.integers(0, 2**31), general_v=st.booleans(),
       layout=st.sampled_from(["spread", "clustered", "cap"]))
def test_spectral_backend_equals_the_direct_sum(beta, name, d, n, seed, general_v, layout):
    """β from −50 to 200, SA and USA (rescaled clock), V ≠ I, on S¹ and S², few and many tokens, spread,
    clustered or in one cap: the spectral backend agrees with the direct sum to 1e-10 of the largest speed
    (the harmonic sums are exact to 2e-14 of the kernel's peak, the kernel truncated where ĥ_l < 1e-14 ĥ_0;
    rows whose kernel sum is below 1e-3 of the peak take the direct sum) — or to 1e-13 of the summed terms'
    size ‖V‖₂ where the speeds themselves are below the rounding of sums of terms of that size (3 tokens far
    apart at β = 28 move at 4e-6 while their self terms are of size 1)."""
    V = np.random.default_rng(seed + 1).standard_normal((d, d)) if general_v else None
    model = AttentionModel(name, beta, d, V=V, clock="rescaled" if name == "USA" else "depth")
    x = tokens(n, d, seed, layout)
    spectral = TokenField(model, "spectral")(x)
    direct = DirectVelocity(model, "numpy")(x, np.full(n, 1.0 / n))
    terms = np.linalg.norm(model.V, 2)
    assert np.abs(spectral - direct).max() <= max(1e-10 * np.abs(direct).max(), 1e-13 * terms)


@pytest.mark.parametrize("name", ["SA", "USA"])
@pytest.mark.parametrize("d", [2, 3])
def test_rows_the_harmonic_sums_cannot_resolve_take_the_direct_sum(name, d):
    """2000 tokens in a cap of width 0.15 at β = −50: the kernel's sums are about e^{-100} of its peak, below the
    harmonic sums' absolute error. Without the direct rows the speeds are wrong by more than the largest speed
    itself; with them (here every row) they equal the direct sum to 1e-10 of the largest speed."""
    model = AttentionModel(name, -50.0, d, clock="rescaled" if name == "USA" else "depth")
    x = 0.15 * np.random.default_rng(3).standard_normal((2000, d))
    x[:, -1] = 1.0
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = np.full(len(x), 1.0 / len(x))
    direct = DirectVelocity(model, "numpy")(x, w)
    band = for_points(d, spectral_degree(model))
    unresolved = SpectralVelocity(model, band)(x, w)
    resolved = SpectralVelocity(model, band, DirectSum(model, "numpy"))(x, w)
    largest = np.abs(direct).max()
    assert np.abs(unresolved - direct).max() > largest
    assert np.abs(resolved - direct).max() <= 1e-10 * largest


def test_auto_takes_the_spectral_sums_where_they_apply_and_pay():
    identity = AttentionModel("SA", 9.0, 3)
    assert TokenField(identity, "auto", n=100).backend in ("numpy", "numba")
    assert TokenField(identity, "auto", n=100_000).backend == "spectral"
    general = AttentionModel("SA", 9.0, 3, Q=np.diag([1.0, 2.0, 3.0]))
    assert TokenField(general, "auto", n=100_000).backend in ("numpy", "numba")
    assert TokenField(AttentionModel("SA", 2.0, 5), "auto", n=100_000).backend in ("numpy", "numba")
    assert TokenField(AttentionModel("SA", -50.0, 3), "auto", n=100_000).backend == "spectral"
    with pytest.raises(InputError, match="Q\\^T K is not a multiple"):
        TokenField(general, "spectral")


@pytest.mark.parametrize("section,key", [
    ({"model": {"Q": [[1, 0, 0], [0, 2, 0], [0, 0, 3]]}, "particles": {"backend": "spectral"}}, "particles.backend"),
    ({"particles": {"backend": "spectral", "d": 5}}, "particles.backend"),
])
def test_spectral_backend_where_it_does_not_apply_is_refused(section, key):
    with pytest.raises(InputError) as err:
        config.resolve_particles({"model": {"beta": 1.0, **section.get("model", {})},
                                  **{k: v for k, v in section.items() if k != "model"}})
    assert err.value.key == key and "'numpy', 'numba' or 'auto'" in str(err.value)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("layout", ["spread", "clustered"])
def test_scalable_diagnostics_equal_the_pair_sums(d, layout, monkeypatch):
    """n = 1500 (both paths affordable): energy (β = 9, −3, 0), close pairs, clusters (default δ and δ = 1e-3,
    0.3) and the spectrum, by the O(n log n) paths and by the Gram matrix. Energy and spectrum to 1e-12
    relative (rounding of n² terms against transforms), counts exactly."""
    x = tokens(1500, d, 7, layout)
    x = np.vstack([x, x[:50]])  # exact duplicates, as tokens collapsed into a point
    funcs = [(token_diagnostics.energy, (9.0,)), (token_diagnostics.energy, (-3.0,)), (token_diagnostics.energy, (0.0,)),
             (token_diagnostics.empirical_spectrum, (12,))]
    counts = [(token_diagnostics.close_pair_fraction, ()), (token_diagnostics.cluster_count, ()),
              (token_diagnostics.cluster_count, (1e-3,)), (token_diagnostics.cluster_count, (0.3,))]
    monkeypatch.setattr(token_diagnostics, "GRAM_TOKENS", 10**9)
    exact = [f(x, *args) for f, args in funcs + counts]
    monkeypatch.setattr(token_diagnostics, "GRAM_TOKENS", 100)
    fast = [f(x, *args) for f, args in funcs + counts]
    for a, b in zip(fast[:4], exact[:4]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert fast[4:] == exact[4:]


def test_a_spectral_token_run_records_its_backend(tmp_path):
    cfg = config.resolve_particles({"model": {"beta": 9.0}, "particles": {"n": 5000, "backend": "auto"},
                                    "time": {"t_end": 0.2, "save_every": 0.1}, "diagnostics": {"lmax": 8}})
    run = solver.simulate(cfg)
    assert run["status"] == "finished" and run["attrs"]["backend"] == "spectral"
    assert np.isfinite(run["diagnostics"]["energy"]).all() and run["diagnostics"]["spectrum"].shape == (3, 9)


def test_a_run_without_its_tokens_keeps_diagnostics_and_the_final_state(tmp_path):
    """save_points = false: no /points per snapshot, the same diagnostics as a run that saves them, the final
    tokens from the checkpoint, and figures of the diagnostics only."""
    from spherepde import io, plot

    raw = {"model": {"beta": 4.0}, "particles": {"n": 300, "seed": 2}, "time": {"t_end": 1.0, "save_every": 0.25}}
    solver.run(config.resolve_particles(raw), tmp_path / "with.h5")
    solver.run(config.resolve_particles({**raw, "particles": {**raw["particles"], "save_points": False}}), tmp_path / "without.h5")
    with_points, without = io.read_run(tmp_path / "with.h5"), io.read_run(tmp_path / "without.h5")
    assert "points" in with_points["fields"] and "points" not in without["fields"]
    for name, values in with_points["diagnostics"].items():
        np.testing.assert_array_equal(values, without["diagnostics"][name])
    np.testing.assert_array_equal(io.read_points(tmp_path / "without.h5", -1), io.read_points(tmp_path / "with.h5", -1))
    assert [p.name for p in plot.plot_run(tmp_path / "without.h5", tmp_path / "figs")] == ["token_diagnostics.png"]


def test_trajectory_chooses_the_backend_by_the_number_of_tokens():
    """tokens.trajectory (the Python API, as validation scripts use it) with backend "auto" takes the harmonic
    sums from 1024 tokens on like a run does: bit for bit the "spectral" trajectory, not the direct sum's."""
    from spherepde import tokens

    x0 = tokens.initial_tokens("uniform", 2000, 3, seed=1)
    paths = {backend: list(tokens.trajectory(x0, 4.0, "SA", save_times=[0.0, 0.5], method="rk4", dt=0.25, backend=backend))[-1][1]
             for backend in ("auto", "spectral", "numpy")}
    assert np.array_equal(paths["auto"], paths["spectral"])
    assert not np.array_equal(paths["auto"], paths["numpy"])
    np.testing.assert_allclose(paths["auto"], paths["numpy"], atol=1e-9)
