"""Time steppers and convergence: RK4 order 4 in dt, DOPRI5 error control, spectral convergence in lmax."""
import numpy as np
import pytest

from conftest import make_config
from spherepde import io, solver
from spherepde.errors import NumericalFailure
from spherepde.integrate import RK4, DormandPrince
from spherepde.sphere import Sphere

SMOOTH = {"kind": "von_mises_fisher", "kappa": 1.0, "mean": [0.3, -0.2, 1.0]}


def final_coefficients(run, lmax):
    return Sphere(lmax).analysis(io.read_density(run["path"], -1))


def test_rk4_converges_at_fourth_order(simulate):
    """Errors against a fine-step reference shrink by 2⁴ per halving of dt (observed order in [3.7, 4.3])."""
    def at(dt):
        run = simulate(make_config("SA", 4.0, lmax=20, t_end=2.0, save_every=1.0, initial=SMOOTH, method="rk4", dt=dt))
        return final_coefficients(run, 20)

    reference = at(0.00625)
    errors = [np.abs(at(dt) - reference).max() for dt in (0.2, 0.1, 0.05)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] > 1e-13  # still above round-off, so the orders are meaningful
    assert np.all((orders > 3.7) & (orders < 4.3)), orders


def test_adaptive_error_follows_tolerance(simulate):
    """DOPRI5 global error shrinks with rtol and stays within a modest multiple of it."""
    reference = final_coefficients(simulate(make_config("USA", 3.0, lmax=20, t_end=0.2, save_every=0.1, initial=SMOOTH, rtol=1e-12)), 20)
    deviation = np.abs(reference[1:]).max()
    errors = []
    for rtol in (1e-5, 1e-7, 1e-9):
        c = final_coefficients(simulate(make_config("USA", 3.0, lmax=20, t_end=0.2, save_every=0.1, initial=SMOOTH, rtol=rtol)), 20)
        errors.append(np.abs(c - reference).max() / deviation)
    assert errors[0] > errors[1] > errors[2]
    # a local-error controller gives global errors within ~100·rtol over O(10) rate·time units
    assert all(e < 100 * r for e, r in zip(errors, (1e-5, 1e-7, 1e-9))), errors


def test_spectral_convergence_in_lmax(simulate):
    """The solution at t = 1 from a smooth density converges geometrically in lmax."""
    def at(lmax):
        run = simulate(make_config("SA", 0.5, lmax=lmax, t_end=1.0, save_every=0.5, initial=SMOOTH, rtol=1e-12))
        return Sphere(lmax).real_coefficients(final_coefficients(run, lmax))

    reference = at(40)
    errors = []
    for lmax in (8, 12, 16, 20):
        a = at(lmax)
        errors.append(np.linalg.norm(a - reference[: a.size]) + np.linalg.norm(reference[a.size :]))
    # each +4 in lmax gains at least a factor 10 (the vMF spectrum decays like κ^l/l!-ish)
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(ratios > 10), (errors, ratios)
    assert errors[-1] < 1e-9


def test_steppers_land_on_the_stop_time():
    f = lambda t, y: -y  # noqa: E731
    y = np.array([1.0, 1.0])
    for stepper in (RK4(0.3), DormandPrince(1e-10)):
        t, state = 0.0, y
        while t < 1.0:
            t, state = stepper.step(f, t, state, 1.0)
        assert t == 1.0
        # RK4 with h = 0.3: global error ≈ h⁴/120 · t e^{-t} ≈ 2e-5 relative
        assert state[1] == pytest.approx(np.exp(-1.0), rel=1e-4 if stepper.name == "rk4" else 1e-9)


def test_blow_up_is_a_numerical_failure():
    f = lambda t, y: y * y  # noqa: E731  y' = y², blows up at t = 1
    with pytest.raises(NumericalFailure, match="t ="):
        t, y, stepper = 0.0, np.array([0.0, 1.0]), DormandPrince(1e-8)
        while t < 2.0:
            t, y = stepper.step(f, t, y, 2.0)
    with pytest.raises(NumericalFailure, match="non-finite"):
        t, y, stepper = 0.0, np.array([0.0, 1.0]), RK4(0.25)
        while t < 2.0:
            t, y = stepper.step(f, t, y, 2.0)
    with pytest.raises(NumericalFailure, match="right-hand side is non-finite .* at the last good state"):
        DormandPrince(1e-8).step(lambda t, y: y * np.nan, 0.0, np.array([0.0, 1.0]), 1.0)


def test_usa_at_beta_9_needs_no_step_from_the_user(simulate):
    """USA rates ≈ 300 at β = 9: the adaptive stepper and its CFL cap find the steps (issue 2)."""
    run = simulate(make_config("USA", 9.0, lmax=24, t_end=0.03, save_every=0.01,
                               initial={"kind": "perturbed_uniform", "amplitude": 1e-6, "seed": 2}))
    spectrum = run["diagnostics"]["spectrum"]
    growth = np.log(spectrum[-1, 4] / spectrum[0, 4]) / (2 * 0.03)
    assert growth == pytest.approx(316.5356, rel=0.05)  # energy of degree 4 grows at ≈ 2λ_4 (theory.md §5)


def test_save_times_are_exact():
    times = solver.save_times(1.0, 0.1)
    assert len(times) == 11 and times[-1] == 1.0 and times[3] == 3 * 0.1
    assert list(solver.save_times(1.0, 0.3)) == [0.0, 0.3, 0.6, 0.8999999999999999, 1.0]


@pytest.mark.parametrize("method", [{}, {"method": "rk4", "dt": 0.05}])
def test_nan_in_a_run_stops_it_and_keeps_the_last_good_state(tmp_path, monkeypatch, method):
    """A right-hand side that turns NaN from t = 0.6 on: NumericalFailure naming the non-finite value
    (not a step-size underflow), status 'failed', and the snapshots and checkpoint before it intact."""
    from spherepde.dynamics import ContinuityEquation

    original = ContinuityEquation.__call__

    def poisoned(self, t, c):
        out = original(self, t, c)
        return out * np.nan if t >= 0.6 else out

    monkeypatch.setattr(ContinuityEquation, "__call__", poisoned)
    path = tmp_path / "run.h5"
    with pytest.raises(NumericalFailure, match="non-finite"):
        solver.run(make_config("SA", 4.0, lmax=16, t_end=2.0, save_every=0.25, **method), path)
    run = io.read_run(path)
    assert run["status"] == "failed" and "non-finite" in run["message"]
    np.testing.assert_allclose(run["t"], [0.0, 0.25, 0.5])
    assert np.all(np.isfinite(io.read_density(path, -1)))
