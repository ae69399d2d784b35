"""Time stepping: one suite over every scheme of the registry (order, exactness, landing on the stop
time), the adaptive error control, and convergence of whole PDE runs in dt, rtol and lmax."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from conftest import make_config
from spherepde import config, io, solver
from spherepde.errors import NumericalFailure
from spherepde.integrate import DOPRI5, RK4, SCHEMES, DeviationNorm, PointwiseNorm, Stepper, _combine, normalize_rows, save_times
from spherepde.manifolds import Sphere
from spherepde.tokens.run import TokenSimulation

SMOOTH = {"kind": "von_mises_fisher", "kappa": 1.0, "mean": [0.3, -0.2, 1.0]}


def fixed(scheme, dt):
    """The scheme's weights with fixed steps dt (its embedded estimate dropped)."""
    return Stepper(dataclasses.replace(scheme, e=None), dt=dt)


def march(stepper, f, y, t_end, t=0.0):
    while t < t_end:
        t, y = stepper.step(f, t, y, t_end)
    return t, y


# --------------------------------------------------------------------------- every scheme


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=list(SCHEMES))
def test_order_on_a_linear_system(scheme):
    """y' = Ay (a rotation plus decay), y(1) = e^{A} y(0): the error of fixed steps h falls like h^p,
    p = scheme.order (observed order within 0.3 over h = 1/5 … 1/20; errors above round-off)."""
    A = np.array([[-0.3, 2.0], [-2.0, -0.3]])
    w, U = np.linalg.eig(A)
    exact = (U @ np.diag(np.exp(w)) @ np.linalg.inv(U) @ np.array([1.0, 0.5])).real
    errors = [np.abs(march(fixed(scheme, h), lambda t, y: A @ y, np.array([1.0, 0.5]), 1.0)[1] - exact).max()
              for h in (1 / 5, 1 / 10, 1 / 20)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] > 1e-13 and np.all(np.abs(orders - scheme.order) < 0.3), orders


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=list(SCHEMES))
def test_polynomials_in_time_are_integrated_exactly(scheme):
    """y' = Σ_k t^k (k < p): the weights and nodes are a quadrature of order p, so one step of any
    length is exact to round-off."""
    p = scheme.order
    f = lambda t, y: np.array([sum(t**k for k in range(p))])  # noqa: E731
    t, y = march(fixed(scheme, 0.7), f, np.zeros(1), 2.1)
    assert y[0] == pytest.approx(sum(2.1 ** (k + 1) / (k + 1) for k in range(p)), rel=1e-14)


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=list(SCHEMES))
def test_every_scheme_lands_on_the_stop_time(scheme):
    f = lambda t, y: -y  # noqa: E731
    stepper = Stepper(scheme, rtol=1e-10, dt=0.3, norm=DeviationNorm(1e-10) if scheme.adaptive else None)
    for stop in (0.35, 1.0, 1.05):
        t, y = march(stepper, f, np.array([1.0, 1.0]), stop)
        assert t == stop
        # RK4 with h ≤ 0.3: global error ≈ h⁴/120 · t e^{-t} ≤ 2e-5 relative
        assert y[1] == pytest.approx(math.exp(-stop), rel=1e-4 if not scheme.adaptive else 1e-9)


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=list(SCHEMES))
def test_projection_keeps_points_on_the_sphere(scheme):
    """Points rotating on S²: with the projection every accepted state has unit rows (to round-off)
    and the rotation angle is right (to the scheme's accuracy)."""
    omega = np.array([0.0, 0.0, 1.0])
    f = lambda t, y: np.cross(omega, y)  # noqa: E731
    x = normalize_rows(np.random.default_rng(1).standard_normal((5, 3)))
    stepper = Stepper(scheme, rtol=1e-10, dt=0.01, norm=PointwiseNorm(1e-10) if scheme.adaptive else None,
                      project=normalize_rows)
    t, y = march(stepper, f, x, 2.0)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-15)
    c, s = math.cos(2.0), math.sin(2.0)
    np.testing.assert_allclose(y, x @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]), atol=1e-8)


# --------------------------------------------------------------------------- adaptive control and failures


def test_blow_up_is_a_numerical_failure():
    f = lambda t, y: y * y  # noqa: E731  y' = y², blows up at t = 1
    with pytest.raises(NumericalFailure, match="t ="):
        march(Stepper(DOPRI5, rtol=1e-8, norm=DeviationNorm(1e-8)), f, np.array([0.0, 1.0]), 2.0)
    with pytest.raises(NumericalFailure, match="non-finite"):
        march(Stepper(RK4, dt=0.25), f, np.array([0.0, 1.0]), 2.0)
    with pytest.raises(NumericalFailure, match="right-hand side is non-finite .* at the last good state"):
        Stepper(DOPRI5, rtol=1e-8, norm=DeviationNorm(1e-8)).step(lambda t, y: y * np.nan, 0.0, np.array([0.0, 1.0]), 1.0)


def test_the_state_of_a_stepper_resumes_it_bit_for_bit():
    """Stopping at t = 0.5 and continuing from (t, y, state()) in a new stepper repeats the uninterrupted
    run exactly (the first stage is f at the accepted state, FSAL or not)."""
    f = lambda t, y: np.array([y[1], -np.sin(y[0])])  # noqa: E731
    whole = Stepper(DOPRI5, rtol=1e-9, norm=DeviationNorm(1e-9))
    _, a = march(whole, f, np.array([0.0, 1.0, 0.5])[[0, 1]], 0.5)
    t, a = march(whole, f, a, 1.0, 0.5)
    first = Stepper(DOPRI5, rtol=1e-9, norm=DeviationNorm(1e-9))
    _, b = march(first, f, np.array([0.0, 1.0]), 0.5)
    second = Stepper(DOPRI5, rtol=1e-9, norm=DeviationNorm(1e-9))
    second.restore(first.state())
    _, b = march(second, f, b.copy(), 1.0, 0.5)
    np.testing.assert_array_equal(a, b)


def test_save_times_are_exact():
    times = save_times(1.0, 0.1)
    assert len(times) == 11 and times[-1] == 1.0 and times[3] == 3 * 0.1
    assert list(save_times(1.0, 0.3)) == [0.0, 0.3, 0.6, 0.8999999999999999, 1.0]


# --------------------------------------------------------------------------- whole runs


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
    """The solution at t = 1 from a smooth density converges geometrically in lmax (the spectral solution
    itself: on_lost_resolution = "stop", so that no coarse run continues with weighted points)."""
    def at(lmax):
        run = simulate(make_config("SA", 0.5, lmax=lmax, t_end=1.0, save_every=0.5, initial=SMOOTH, rtol=1e-12,
                                   numerics={"on_lost_resolution": "stop"}))
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


def test_usa_at_beta_9_needs_no_step_from_the_user(simulate):
    """USA rates ≈ 300 at β = 9: the adaptive stepper and its CFL cap find the steps."""
    run = simulate(make_config("USA", 9.0, lmax=24, t_end=0.03, save_every=0.01,
                               initial={"kind": "perturbed_uniform", "amplitude": 1e-6, "seed": 2}))
    spectrum = run["diagnostics"]["spectrum"]
    growth = np.log(spectrum[-1, 4] / spectrum[0, 4]) / (2 * 0.03)
    assert growth == pytest.approx(316.5356, rel=0.05)  # energy of degree 4 grows at ≈ 2λ_4 (linear theory)


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


def test_steps_below_the_resolution_of_t_advance_it_by_compensated_summation():
    """A point rotating on the circle, ẏ = ωJy with ω = 0.01, from t₀ = 1e20 (resolution of t: 16384) to
    t₀ + 2¹⁵: DOPRI5 at rtol 1e-8 takes steps of a few time units, far below the resolution of t. With
    compensated summation the stepper carries the lost part in ``lag`` and lands on t_stop at the angle ω·2¹⁵ = 327.68
    (to 1e-5: the global error of about 10⁴ steps at 1e-8 each, with margin)."""
    t0, omega = 1e20, 0.01
    t_stop = t0 + 2.0**15
    J = np.array([[0.0, -omega], [omega, 0.0]])
    rotate = lambda _t, y: y @ J.T  # noqa: E731
    stepper = Stepper(DOPRI5, rtol=1e-8, norm=PointwiseNorm(1e-8), time_floor=False)  # no blow-up test at t₀
    t, y = t0, np.array([[1.0, 0.0]])
    steps = 0
    while t < t_stop:
        t, y = stepper.step(rotate, t, y, t_stop)
        steps += 1
        if steps == 20:  # all of the elapsed time is still below t's resolution
            assert t == t0 and 0 < stepper.lag < 8192
            angle = omega * stepper.lag
            np.testing.assert_allclose(y[0], [math.cos(angle), math.sin(angle)], atol=1e-7)
    angle = omega * 2.0**15
    assert t == t_stop and steps > 1000
    np.testing.assert_allclose(y[0], [math.cos(angle), math.sin(angle)], atol=1e-5)


@settings(max_examples=40)
@given(shape=st.sampled_from([(7,), (5, 3), (1,), (4, 2)]), complex_=st.booleans(), seed=st.integers(0, 2**31),
       coefficients=st.lists(st.sampled_from([0.0, 0.5, -1.0, 1 / 6, 2.0]), min_size=1, max_size=7))
def test_stage_combination_is_y_plus_h_sum_of_a_k(shape, complex_, seed, coefficients):
    """y + h Σ a_j k_j, a new array, the inputs untouched: to one rounding per term of the largest term's size
    (the reference adds the terms in another order)."""
    rng = np.random.default_rng(seed)
    draw = (lambda: rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) if complex_ else (lambda: rng.standard_normal(shape))
    y, stages, h = draw(), [draw() for _ in coefficients], 0.3
    before = [y.copy()] + [k.copy() for k in stages]
    got = _combine(y, h, coefficients, stages)
    expected = y + sum((h * a) * k for a, k in zip(coefficients, stages))
    scale = np.abs(y) + sum(abs(h * a) * np.abs(k) for a, k in zip(coefficients, stages))
    assert got.shape == y.shape and got.dtype == y.dtype and got is not y
    assert np.all(np.abs(got - expected) <= 4 * (len(stages) + 1) * np.finfo(float).eps * scale)
    for original, now in zip(before, [y] + stages):
        np.testing.assert_array_equal(original, now)


def _blas_threads() -> set:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.mark.parametrize("kind", ["pde", "tokens"])
def test_a_pde_run_steps_on_one_blas_thread_and_a_token_run_on_those_there_are(monkeypatch, kind):
    """PDE runs parallelize through SHTns and ducc0; OpenBLAS threads spinning after a norm took their cores
    (solver.Simulation.blas_threads). Token runs keep BLAS' threads for their matrix products. With two BLAS
    threads set around the run, the step sees one (PDE) or two (tokens), and two again after the run."""
    if kind == "pde":
        cfg, simulation = make_config("USA", 3.0, lmax=16, t_end=0.02, save_every=0.01), solver.Simulation
    else:
        cfg = config.resolve_particles({"model": {"beta": 4.0}, "particles": {"n": 20}, "time": {"t_end": 0.2, "save_every": 0.1}})
        simulation = TokenSimulation
    seen = []
    step = simulation.step

    def watched(self, *args):
        seen.append(_blas_threads())
        return step(self, *args)

    monkeypatch.setattr(simulation, "step", watched)
    with threadpool_limits(limits=2, user_api="blas"):
        if not _blas_threads():
            pytest.skip("no BLAS library whose threads threadpoolctl controls")
        solver.simulate(cfg)
        after = _blas_threads()
    assert seen and all(threads == ({1} if kind == "pde" else {2}) for threads in seen)
    assert after == {2}
