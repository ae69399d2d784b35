"""The resolution guard and the checks that stop a run instead of returning a wrong field."""
import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_config
from spherepde import solver
from spherepde.config import NumericsConfig
from spherepde.diagnostics import tail_energy
from spherepde.dynamics import ContinuityEquation
from spherepde.errors import InputError, NumericalFailure
from spherepde.model import AttentionModel
from spherepde.manifolds import Sphere
from spherepde.solver import ResolutionGuard

S = Sphere(20)
NUMERICS = NumericsConfig(max_tail_energy=1e-5, max_negative_density=1e-3)


def with_tail(share: float) -> np.ndarray:
    """Coefficients of 1 + ε Y_{lmax,0} whose top-10% degrees carry exactly ``share`` of ∫ρ² dσ."""
    a = np.zeros(S.real_size)
    a[0] = 1.0
    a[S.real_index(S.lmax, 0)] = np.sqrt(share / (1 - share))
    return S.from_real_coefficients(a)


@given(st.floats(1e-9, 1e-3), st.floats(0.5, 2.0))
@settings(max_examples=40)
def test_tail_guard_fires_exactly_above_its_limit(initial_tail, factor):
    """Limit = max(max_tail_energy, 10 × the initial tail) (≤ 1e-2 here); below it the step passes,
    above it the run stops."""
    limit = max(NUMERICS.max_tail_energy, 10 * initial_tail)
    guard = ResolutionGuard(NUMERICS, S, initial_tail)
    c = with_tail(factor * limit)
    assert tail_energy(S.degree_energy(c)) == pytest.approx(factor * limit, rel=1e-10)
    if factor > 1 + 1e-9:
        with pytest.raises(NumericalFailure, match="larger lmax"):
            guard.check(1.0, guard.tail(c), (1.0, 1.0))
    elif factor < 1 - 1e-9:
        guard.check(1.0, guard.tail(c), (1.0, 1.0))


@given(st.floats(-1.0, 1.0), st.floats(0.1, 100.0))
@settings(max_examples=40)
def test_negative_density_guard(low_over_high, high):
    """The run stops iff min ρ < -max_negative_density · max ρ."""
    guard = ResolutionGuard(NUMERICS, S, 0.0)
    c = with_tail(1e-12)
    if low_over_high < -NUMERICS.max_negative_density:
        with pytest.raises(NumericalFailure, match="undershoots"):
            guard.check(1.0, guard.tail(c), (low_over_high * high, high))
    else:
        guard.check(1.0, guard.tail(c), (low_over_high * high, high))


@given(st.floats(-16.0, 0.0), st.floats(-16.0, 0.0), st.booleans(), st.floats(-16.0, -3.0))
@settings(max_examples=200)
def test_the_switch_to_points_comes_before_the_guard(log_tail, log_undershoot, undershoots, log_initial_tail):
    """Wherever the guard would stop a run, a run that may continue as weighted points has switched already: the
    switch's thresholds lie below the guard's for every initial tail. Tails and undershoot are drawn on a log scale,
    so that the thresholds between 10⁻¹⁴ and 10⁻² are all met."""
    guard = ResolutionGuard(NUMERICS, S, 10.0**log_initial_tail)
    tail, low_over_high = 10.0**log_tail, -(10.0**log_undershoot) if undershoots else 0.5
    try:
        guard.check(1.0, tail, (low_over_high, 1.0))
    except NumericalFailure:
        assert guard.switch(tail, (low_over_high, 1.0))


def test_sa_stops_when_the_attention_normalizer_is_not_positive():
    """ρ = 1 + 2Y_10 (negative near the south pole): K∗ρ = ĥ_0 + 2ĥ_1 Y_10 has minimum ĥ_0(1 - 2√3 ĥ_1/ĥ_0) < 0
    at β = 9 (ĥ_1/ĥ_0 = coth 9 - 1/9 = 0.889), so SA's X = ∇ log(K∗ρ)/β does not exist: NumericalFailure.
    USA needs no normalizer and evaluates."""
    a = np.zeros(S.real_size)
    a[0], a[S.real_index(1, 0)] = 1.0, 2.0
    c = S.from_real_coefficients(a)
    with pytest.raises(NumericalFailure, match="larger lmax"):
        ContinuityEquation(S, AttentionModel("SA", 9.0))(0.0, c)
    assert np.all(np.isfinite(ContinuityEquation(S, AttentionModel("USA", 9.0))(0.0, c)))


def test_non_finite_initial_density_from_file_is_refused(tmp_path):
    source = tmp_path / "src.h5"
    solver.run(make_config("SA", 4.0, lmax=16, t_end=0.5, save_every=0.25), source)
    with h5py.File(source, "r+") as h5:
        h5["density"][-1, 3, 5] = np.nan
    with pytest.raises(InputError, match="not finite"):
        solver.run(make_config("SA", 4.0, lmax=16, initial={"kind": "from_file", "path": str(source)}), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
