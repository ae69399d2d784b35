"""Initial densities: the white-noise perturbation contract (docs/config.md), checked on the grid."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde.initial import perturbation
from spherepde.manifolds import Circle, Sphere, Zonal

MANIFOLDS = {"sphere": Sphere(12), "circle": Circle(40), "zonal": Zonal(30, 7)}


@given(st.sampled_from(sorted(MANIFOLDS)), st.integers(0, 2**32 - 1))
@settings(max_examples=30)
def test_white_noise_has_zero_mean_and_unit_norm(kind, seed):
    """∫p dσ = 0 and ∫p² dσ = 1 by the grid quadrature (exact for degree ≤ 2·lmax), independent of the
    coefficient layout; the same seed gives the same field."""
    M = MANIFOLDS[kind]
    p = M.synthesis(perturbation(M, seed=seed))
    assert abs(np.sum(M.weights * p)) < 1e-14
    assert abs(np.sum(M.weights * p * p) - 1) < 1e-13
    np.testing.assert_array_equal(p, M.synthesis(perturbation(M, seed=seed)))


def test_white_noise_spreads_evenly_over_the_harmonics():
    """Every normalized real harmonic of degree 1..lmax gets an independent N(0,1) coefficient before the
    rescaling: averaged over 400 seeds, the energy per degree is proportional to the number of real harmonics
    of that degree the manifold holds (2l+1 on S², 2 on S¹, 1 for zonal densities), to the sampling error of
    a χ² mean (±4σ = ±4√(2/(400 N)) relative)."""
    for M in MANIFOLDS.values():
        spectra = np.mean([M.degree_energy(perturbation(M, seed=s)) for s in range(400)], axis=0)
        dims = np.array([M.multiplicity(l) for l in range(1, M.lmax + 1)])
        assert spectra[0] < 1e-28
        assert np.all(np.abs(spectra[1:] / (dims / (M.real_size - 1)) - 1) < 4 * np.sqrt(2 / (400 * dims)))


def test_a_density_saved_on_the_small_usa_grid_is_read_on_that_grid(tmp_path):
    """A USA run saves ρ on its exact grid (smaller than the 3/2 grid of an SA run at the same lmax); an SA run
    started from it (initial kind from_file) gets the saved coefficients back to round-off."""
    from spherepde import config, io, solver
    from spherepde.initial import initial_coefficients

    usa = config.resolve({"model": {"name": "USA", "beta": 4.0}, "domain": {"lmax": 40},
                          "initial": {"amplitude": 0.05, "seed": 3}, "time": {"t_end": 0.01, "save_every": 0.01}})
    solver.run(usa, tmp_path / "usa.h5")
    saved = io.read_density(tmp_path / "usa.h5", -1)
    sa = config.resolve({"model": {"name": "SA", "beta": 4.0}, "domain": {"lmax": 40},
                         "initial": {"kind": "from_file", "path": str(tmp_path / "usa.h5")}})
    M = solver.Simulation(sa).manifold
    assert saved.shape != M.grid_shape
    c = initial_coefficients(sa.initial, M)
    source = Sphere(40, 1, saved.shape)
    np.testing.assert_allclose(source.synthesis(c), saved, rtol=0, atol=1e-13)
