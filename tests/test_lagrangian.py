"""Weighted points past the resolution (spherepde.lagrangian and the switch in spherepde.solver).

References: the velocity of the density itself (Funk–Hecke at arbitrary points), the exact two-point
ODE of weighted Dirac masses (scipy's DOP853), a resolved run at a higher lmax, the energy of a single
Dirac mass (e^β/2β), the linearized contraction rate at a cluster (2 for SA), the W₂ cost of a merge
written out."""
import math

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from conftest import interrupt_after, make_config
from spherepde import compare, io, lagrangian, plot, solver
from spherepde.errors import InputError
from spherepde.integrate import DOPRI5, PointwiseNorm, Stepper, normalize_rows
from spherepde.kernels import DirectVelocity, SpectralVelocity
from spherepde.manifolds import Circle, Sphere, Zonal
from spherepde.model import AttentionModel

CLUSTER = {"kind": "von_mises_fisher", "kappa": 2.0, "mean": [0.0, 0.6, 0.8]}


def density(M, seed, amplitude=0.3):
    a = np.random.default_rng(seed).standard_normal(M.real_size)
    a[M.real_degrees > 4] = 0.0
    a[0] = 0.0
    a *= amplitude / np.abs(M.synthesis(M.from_real_coefficients(a))).max()
    a[0] = 1.0
    return M.from_real_coefficients(a)


@pytest.mark.parametrize("M", [Sphere(24), Circle(24), Zonal(24, 7)], ids=["sphere", "circle", "zonal"])
@pytest.mark.parametrize("name", ["SA", "USA"])
def test_points_of_a_density_move_with_its_velocity(M, name):
    """from_density: weights w_j ρ(x_j) of a rule exact to lmax + L + 1, mass 1 to 1e-14; the points' velocity
    (spectral sums over them) equals X[ρ] at the nodes computed from ρ's own coefficients (Funk–Hecke at the
    points) to 1e-11 of the largest speed: the quadrature is exact for what the kernel sees."""
    model = AttentionModel(name, 3.0, M.d)
    c = density(M, 1)
    points, nodes = lagrangian.from_density(M, c, lagrangian.switch_degree(M, model))
    assert points.w.sum() == pytest.approx(1.0, abs=1e-14) and points.clipped == 0.0 and len(nodes) == len(points.owner)
    X = lagrangian.point_velocity(model, M)(points.x, points.w)
    k, g, prefactor = model.multipliers(M.lmax)
    at = M.locate(points.x)
    expected = at.gradient(c * g[M.degrees])
    expected = expected / at.synthesis(c * k[M.degrees])[:, None] if model.normalized else expected * prefactor
    np.testing.assert_allclose(X, expected, atol=1e-11 * np.abs(expected).max())


@given(st.integers(0, 2**31), st.floats(1e-12, 0.05))
@settings(max_examples=30)
def test_merge_adds_weights_and_bounds_the_w2_move(seed, distance):
    """Points within ``distance`` merge into their weighted mean: the weights add, each group's direction Σ w x is
    kept, every remaining pair is at least ``distance`` apart, and merged_w2 is √(Σ_j w_j d(x_j, m)²)."""
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.standard_normal((4, 3)))
    x = normalize_rows(centres[rng.integers(0, 4, 40)] + distance / 3 * rng.standard_normal((40, 3)))
    w = rng.uniform(0.1, 1.0, 40)
    w /= w.sum()
    points = lagrangian.Points(x, w, np.arange(40))
    merged = lagrangian.merge(points, distance)
    assert merged.w.sum() == pytest.approx(1.0, abs=1e-15)
    # each merged point is the normalized weighted mean of its group: Σ_{j in g} w_j x_j = |·| x_g, weights add
    sums = np.zeros_like(merged.x)
    np.add.at(sums, merged.owner, w[:, None] * x)
    np.testing.assert_allclose(normalize_rows(sums), merged.x, atol=1e-14)
    np.testing.assert_allclose(np.bincount(merged.owner, w, len(merged.w)), merged.w, atol=1e-16)
    if len(merged.w) > 1:  # angles from chords: arccos of a dot product cannot resolve angles below ~1e-8
        chords = np.linalg.norm(merged.x[:, None] - merged.x[None], axis=2) + 4 * np.eye(len(merged.w))
        assert 2 * np.arcsin(chords.min() / 2) >= distance * (1 - 1e-9)
    target = merged.x[merged.owner]
    moved = 2 * np.arcsin(np.linalg.norm(x - target, axis=1) / 2)
    assert merged.merged_w2 == pytest.approx(math.sqrt(np.sum(w * moved**2)), rel=1e-12, abs=1e-300)
    positions, weights = merged.rows(x)
    np.testing.assert_array_equal(positions, target)
    assert weights.sum() == pytest.approx(1.0) and np.count_nonzero(weights) == len(merged.w)
    back = lagrangian.Points.from_rows(positions, weights, merged.owner.astype(float), merged.merged_w2, 0.0)
    np.testing.assert_array_equal(back.x, merged.x)
    np.testing.assert_array_equal(back.w, merged.w)
    assert lagrangian.merge(merged, distance) is merged


@pytest.mark.parametrize("name,beta,m1,phi0", [("SA", 9.0, 0.3, 0.9), ("USA", 4.0, 0.45, 1.2), ("SA", -2.0, 0.2, 2.0)])
def test_two_weighted_diracs_follow_their_ode(name, beta, m1, phi0):
    """Two Dirac masses m₁, m₂ at angle φ on S²: φ̇ = −sin φ e^{β cos φ} (m₂/Z₁ + m₁/Z₂) with Z₁ = m₁e^β + m₂e^{β cos φ},
    Z₂ = m₂e^β + m₁e^{β cos φ} (SA), or (m₁ + m₂) e^{β cos φ} sin φ... for USA φ̇ = −e^{β cos φ} sin φ (m₁ + m₂). The spectral
    velocity and the points' stepper (DOPRI5, rtol 1e-11) against scipy's DOP853 (rtol 1e-13): to 1e-8."""
    m2 = 1 - m1
    model = AttentionModel(name, beta, 3)
    velocity = lagrangian.point_velocity(model, Sphere(8))
    assert isinstance(velocity, SpectralVelocity)
    x = np.array([[1.0, 0.0, 0.0], [math.cos(phi0), math.sin(phi0), 0.0]])
    w = np.array([m1, m2])

    def rate(_, phi):
        e = math.exp(beta * math.cos(phi[0]))
        if name == "USA":
            return [-e * math.sin(phi[0]) * (m1 + m2)]
        z1, z2 = m1 * math.exp(beta) + m2 * e, m2 * math.exp(beta) + m1 * e
        return [-math.sin(phi[0]) * e * (m2 / z1 + m1 / z2)]

    stepper = Stepper(DOPRI5, rtol=1e-11, norm=PointwiseNorm(1e-11), project=normalize_rows)
    t = 0.0
    for t_stop in (0.5, 1.0):
        while t < t_stop:
            t, x = stepper.step(lambda _t, y: velocity(y, w), t, x, t_stop)
        phi = math.atan2(np.linalg.norm(np.cross(x[0], x[1])), x[0] @ x[1])
        reference = solve_ivp(rate, (0, t_stop), [phi0], method="DOP853", rtol=1e-13, atol=1e-15).y[0, -1]
        assert phi == pytest.approx(reference, abs=1e-8)


def test_a_run_switches_keeps_mass_and_collapses_at_rate_two():
    """SA, β = 1, a von Mises–Fisher cluster at lmax 48: the run switches to points long before the guard would
    stop it (t ≈ 1.8 vs 2.6), keeps mass 1 to 1e-12, its energy rises monotonically to that of one Dirac mass,
    e^β/2β (to 1e-10), the points merge into one, and 1 - |∫x dμ| decays like e^{-2t} (the linearized rate at a
    cluster, c = 1 for SA): fitted rate within 1% over t ∈ [8, 12], where 1 - |∫x dμ| runs from 1e-6 to 1e-10
    (earlier the cluster is not yet in the linear regime: 1.95 over [6, 10]; later it reaches round-off)."""
    cfg = make_config("SA", 1.0, lmax=48, t_end=40.0, save_every=0.5, initial=CLUSTER)
    run = solver.simulate(cfg)
    d = run["diagnostics"]
    assert run["status"] == "finished"
    switch = int(np.argmax(d["lagrangian"] == 1))
    assert 1.0 < run["t"][switch] < 2.5 and np.all(d["lagrangian"][switch:] == 1) and np.all(d["lagrangian"][:switch] == 0)
    np.testing.assert_allclose(d["mass"], 1.0, atol=1e-12)
    assert np.all(np.diff(d["energy"]) >= -1e-12 * d["energy"][:-1])
    assert d["energy"][-1] == pytest.approx(math.e / 2, rel=1e-10)
    assert d["points_active"][-1] == 1 and d["points_active"][switch] > 1000
    t = run["t"]
    window = (t >= 8) & (t <= 12)
    rate = -np.polyfit(t[window], np.log(1 - d["mean_direction"][window]), 1)[0]
    assert rate == pytest.approx(2.0, rel=1e-2)


def test_switched_low_resolution_agrees_with_resolved_high_resolution():
    """Overlap: lmax 24 (switches at t ≈ 0.9) and lmax 64 (still resolved) from the same cluster at t = 1.5: the
    energy per degree of degrees ≤ 8 agrees to 1e-5 relative (measured 2e-6: the switch happens while the
    spectral state is accurate to that level)."""
    low = solver.simulate(make_config("SA", 1.0, lmax=24, t_end=1.5, save_every=0.25, initial=CLUSTER))
    high = solver.simulate(make_config("SA", 1.0, lmax=64, t_end=1.5, save_every=0.25, initial=CLUSTER,
                                       numerics={"on_lost_resolution": "stop"}))
    assert low["diagnostics"]["lagrangian"][-1] == 1 and high["status"] == "finished"
    a, b = low["diagnostics"]["spectrum"][-1, :9], high["diagnostics"]["spectrum"][-1, :9]
    np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("kind,dim", [("circle", None), ("zonal", 5)])
def test_other_manifolds_continue_past_the_resolution(kind, dim):
    """The circle and zonal densities switch as S² does: mass kept, energy up to the single-cluster value."""
    initial = {"kind": "von_mises", "kappa": 3.0} if kind == "circle" else {"kind": "von_mises_fisher", "kappa": 3.0}
    run = solver.simulate(make_config("SA", 2.0, kind=kind, dim=dim, lmax=24, t_end=30.0, save_every=1.0, initial=initial))
    d = run["diagnostics"]
    assert run["status"] == "finished" and d["lagrangian"][-1] == 1 and d["points_active"][-1] == 1
    np.testing.assert_allclose(d["mass"], 1.0, atol=1e-12)
    assert np.all(np.diff(d["energy"]) >= -1e-12 * d["energy"][:-1])
    assert d["mean_direction"][-1] == pytest.approx(1.0, abs=1e-12)


def test_lagrangian_from_the_start_and_the_file_contract(tmp_path):
    """representation = "lagrangian": points from t = 0; the run file holds /points (n_t, n, d) of unit vectors,
    /weights (n_t, n) summing to 1 (0 for merged rows), /diagnostics/lagrangian = 1; /density is the measure
    smoothed by the von Mises–Fisher kernel of concentration smoothing_kappa (a root attribute)."""
    path = tmp_path / "run.h5"
    solver.run(make_config("SA", 3.0, lmax=20, t_end=12.0, save_every=2.0, initial=CLUSTER,
                           numerics={"representation": "lagrangian"}), path)
    run = io.read_run(path)
    assert list(run["diagnostics"]["lagrangian"]) == [1] * 7
    with h5py.File(path) as h5:
        points, weights = h5["points"][...], h5["weights"][...]
        n = points.shape[1]
        assert points.shape == (7, n, 3) and weights.shape == (7, n) and h5.attrs["smoothing_kappa"] > 0
    np.testing.assert_allclose(np.linalg.norm(points, axis=2), 1.0, atol=1e-14)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-13)
    assert np.all(weights >= 0) and np.count_nonzero(weights[-1]) == run["diagnostics"]["points_active"][-1]
    assert np.all(run["diagnostics"]["min_density"] > -1e-6 * run["diagnostics"]["max_density"])


def test_the_switch_is_recorded_with_nan_rows_before_it(tmp_path):
    path = tmp_path / "run.h5"
    solver.run(make_config("SA", 1.0, lmax=24, t_end=3.0, save_every=0.5, initial=CLUSTER), path)
    run = io.read_run(path)
    lag = run["diagnostics"]["lagrangian"]
    assert lag[0] == 0 and lag[-1] == 1
    with h5py.File(path) as h5:
        assert np.all(np.isnan(h5["points"][np.flatnonzero(lag == 0)]))
        assert np.all(np.isfinite(h5["points"][np.flatnonzero(lag == 1)]))
        assert np.all(np.isnan(h5["diagnostics/tail_energy"][np.flatnonzero(lag == 1)]))


@pytest.mark.parametrize("updates", [3, 7])
def test_resume_across_the_switch_is_bit_for_bit(tmp_path, monkeypatch, updates):
    """Interrupted before (3 snapshots) or after (7) the switch at t ≈ 1.7, resumed: the same file as an
    uninterrupted run, bit for bit (points, weights, densities, diagnostics)."""
    cfg = make_config("SA", 1.0, lmax=24, t_end=4.0, save_every=0.5, initial=CLUSTER)
    solver.run(cfg, tmp_path / "whole.h5")
    undo = interrupt_after(monkeypatch, updates)
    with pytest.raises(KeyboardInterrupt):
        solver.run(cfg, tmp_path / "split.h5")
    undo()
    solver.run(cfg, tmp_path / "split.h5", resume=True)
    with h5py.File(tmp_path / "whole.h5") as a, h5py.File(tmp_path / "split.h5") as b:
        for name in ("t", "density", "points", "weights"):
            np.testing.assert_array_equal(a[name][...], b[name][...])
        for name in a["diagnostics"]:
            np.testing.assert_array_equal(a["diagnostics"][name][...], b["diagnostics"][name][...])


def test_compare_uses_the_spectral_snapshots_and_plot_draws_switched_runs(tmp_path):
    path = tmp_path / "run.h5"
    solver.run(make_config("SA", 9.0, lmax=24, t_end=30.0, save_every=0.25,
                           initial={"kind": "perturbed_uniform", "amplitude": 1e-4, "modes": [[4, 0]]}), path)
    run = io.read_run(path)
    assert run["diagnostics"]["lagrangian"][-1] == 1
    result = compare.compare_run(path)
    assert result["spectral_snapshots"] == int(np.sum(run["diagnostics"]["lagrangian"] == 0)) < len(run["t"])
    assert result["modes"][0]["relative_error"] < 5e-3
    assert "spectral snapshots" in compare.format_comparison(result)
    names = {p.name for p in plot.plot_run(path, tmp_path / "figures")}
    assert {"density_maps.png", "life.png", "diagnostics.png"} <= names


def test_general_matrices_continue_with_the_direct_sum():
    """QᵀK not a multiple of I: the points move by the direct weighted sum (O(n²)); mass is kept."""
    from spherepde import config

    cfg = config.resolve({"model": {"beta": 3.0, "Q": [[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.9]]},
                          "domain": {"lmax": 16}, "initial": CLUSTER, "time": {"t_end": 6.0, "save_every": 1.0}})
    sim = solver.Simulation(cfg)
    assert isinstance(sim.velocity, DirectVelocity)
    run = solver.simulate(cfg)
    assert run["status"] == "finished" and run["diagnostics"]["lagrangian"][-1] == 1
    np.testing.assert_allclose(run["diagnostics"]["mass"], 1.0, atol=1e-12)


def test_a_direct_sum_too_large_is_refused_naming_the_key():
    from spherepde import config

    cfg = config.resolve({"model": {"beta": 3.0, "K": [[1, 0.1, 0], [0, 1, 0], [0, 0, 1]]}, "domain": {"lmax": 200}})
    with pytest.raises(InputError, match="numerics.on_lost_resolution"):
        solver.Simulation(cfg)


def test_two_point_masses_from_the_config_merge_when_their_ode_says_even_at_t_4e17():
    """[initial] kind = "points" with weights 0.3, 0.7 a gap φ₀ = 1 apart on the circle, SA at β = 100: the gap
    obeys φ̇ = −sin φ (m₂/(m₁E + m₂) + m₁/(m₂E + m₁)), E = e^{β(1 − cos φ)}, so the time to reach φ is
    T(φ) = ∫_φ^{φ₀} dψ / (sin ψ (…)), T(0) ≈ 4e17 (scipy's quad, rtol 1e-10). The run's saved gaps satisfy
    t = T(φ(t)) to 1e-6 relative (DOPRI5 at rtol 1e-10 over log-spaced snapshots) once the gap has moved
    by 1e-8, and the masses merge: this
    needs the pairwise velocity (the attraction is 1e-20 of the self term) and steps below the resolution of t."""
    from scipy.integrate import quad

    beta, m1, m2, phi0 = 100.0, 0.3, 0.7, 1.0
    cfg = make_config("SA", beta, "circle", lmax=128, t_end=1e22, save_every=1.0, initial={
        "kind": "points", "points": [[1.0, 0.0], [math.cos(phi0), math.sin(phi0)]], "weights": [m1, m2]},
        numerics={"representation": "lagrangian"}, save_log_from=1.0, save_per_decade=4, rtol=1e-10)
    run = solver.simulate(cfg)
    assert run["status"] == "finished"
    x, t = run["fields"]["points"], run["t"]
    assert np.array_equal(run["diagnostics"]["points_active"][[0, -1]], [2, 1])

    def rate(psi):
        E = math.exp(beta * (1 - math.cos(psi)))
        return math.sin(psi) * (m2 / (m1 * E + m2) + m1 / (m2 * E + m1))

    pairs = np.flatnonzero(run["diagnostics"]["points_active"] == 2)
    a, b = x[pairs, 0], x[pairs, 1]
    gaps = np.arctan2(np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]), np.einsum("ij,ij->i", a, b))
    moved = phi0 - gaps > 1e-8  # before, a gap resolved to 1e-16 locates t only to 1e-16/φ̇ ≈ 1e4
    assert moved.sum() >= 10
    for k, gap in zip(pairs[moved], gaps[moved]):
        T = quad(lambda psi: 1 / rate(psi), gap, phi0, epsrel=1e-10, limit=200)[0]
        assert t[k] == pytest.approx(T, rel=1e-6)
    assert t[pairs[-1]] > 1e17  # the merge, at T(0) ≈ 4e17, where the resolution of t is 64
