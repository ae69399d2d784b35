"""The manifold contract: every registered manifold (spherepde.manifolds.MANIFOLDS) must pass these.

A new manifold adds its example domains to EXAMPLES (a test fails until it does) and then runs the
whole suite: quadrature, transforms, calculus, real harmonics, frames, and the continuity equation
on it (mass conservation, stationarity of the uniform state, the linear growth rates). References are
the manifold's own point evaluation of the real harmonics (tested against scipy in the focused
suites), closed-form eigenvalues of the Laplacian, and linear theory (spherepde.linear, tested
against quadrature and 50-digit references).
"""
import functools
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde import linear
from spherepde.dynamics import ContinuityEquation
from spherepde.errors import InputError
from spherepde.manifolds import MANIFOLDS, manifold_from_config
from spherepde.model import AttentionModel

#: (kind, lmax, dim) of the examples of every registered manifold
EXAMPLES = {
    "sphere": [("sphere", 12, None)],
    "circle": [("circle", 16, None), ("circle", 25, None)],
    "zonal": [("zonal", 20, 3), ("zonal", 20, 5), ("zonal", 24, 64), ("zonal", 16, 1024)],
}
CASES = [example for kind in MANIFOLDS for example in EXAMPLES.get(kind, [])]
IDS = [f"{kind}-{lmax}" + (f"-d{dim}" if dim else "") for kind, lmax, dim in CASES]
SEEDS = st.integers(0, 2**32 - 1)


def test_every_registered_manifold_has_examples():
    assert set(EXAMPLES) == set(MANIFOLDS)


@functools.cache
def build(kind, lmax, dim):
    return manifold_from_config(SimpleNamespace(kind=kind, lmax=lmax, dim=dim))


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def M(request):
    return build(*request.param)


def random_real(M, seed, decay=1.0):
    """Real coefficients N(0,1)·(1+l)^(-decay) of a band-limited field."""
    a = np.random.default_rng(seed).standard_normal(M.real_size)
    return a * (1.0 + M.real_degrees) ** -decay


def gradient(M, c):
    _, g = M.scalar_and_gradient(np.zeros_like(c), c)
    return tuple(component.copy() for component in g)


# --------------------------------------------------------------------------- grid and quadrature


def test_grid_weights_and_points(M):
    assert M.weights.shape == M.grid_shape and M.weights.sum() == pytest.approx(1.0, abs=1e-14)
    x = M.points()
    assert x.shape == (*M.grid_shape, M.d)
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-14)
    assert all(np.shape(v)[0] == M.grid_shape[i] for i, v in enumerate(M.grid.values()))


def test_real_harmonics_are_orthonormal_under_the_quadrature(M):
    """Σ_j w_j Y_a(x_j) Y_b(x_j) = δ_ab for all real harmonics of degree ≤ lmax: the grid integrates
    degree 2·lmax exactly (it is built for 3·lmax), and harmonics() is the same basis as the transforms."""
    H = M.harmonics(M.points().reshape(-1, M.d))
    np.testing.assert_allclose((H * M.weights.reshape(-1, 1)).T @ H, np.eye(M.real_size), atol=1e-11)
    for index in (0, 1, M.real_size // 2, M.real_size - 1):
        unit = M.from_real_coefficients(np.eye(M.real_size)[index])
        np.testing.assert_allclose(M.synthesis(unit).ravel(), H[:, index], atol=1e-11 * np.abs(H[:, index]).max())


def test_the_uniform_density_is_coefficient_zero(M):
    c = M.from_real_coefficients(np.eye(M.real_size)[0])
    np.testing.assert_allclose(M.synthesis(c), 1.0, atol=1e-14)
    assert M.mean(c) == pytest.approx(1.0) and M.degrees[0] == 0


@given(seed=SEEDS)
@settings(max_examples=10)
def test_transforms_round_trip_and_parseval(M, seed):
    a = random_real(M, seed)
    c = M.from_real_coefficients(a)
    np.testing.assert_allclose(M.real_coefficients(c), a, atol=1e-14)
    f = M.synthesis(c)
    np.testing.assert_allclose(M.real_coefficients(M.analysis(f)), a, atol=1e-12 * np.abs(a).max())
    energy = float(np.sum(a * a))
    assert np.sum(M.weights * f * f) == pytest.approx(energy, rel=1e-12)
    assert np.sum(M.degree_energy(c)) == pytest.approx(energy, rel=1e-12)
    assert M.inner(c, c) == pytest.approx(energy, rel=1e-12)
    assert M.mean(c) == pytest.approx(float(np.sum(M.weights * f)), abs=1e-13 * np.abs(a).sum())


def test_real_layout(M):
    counts = np.bincount(M.real_degrees, minlength=M.lmax + 1)
    assert [M.multiplicity(l) for l in range(M.lmax + 1)] == counts.tolist()
    assert np.array_equal(np.bincount(M.degrees, minlength=M.lmax + 1) > 0, counts > 0)
    assert M.real_index(0, 0) == 0 and M.real_degrees[M.real_index(1, 0)] == 1
    with pytest.raises(InputError, match="mode"):
        M.real_index(M.lmax + 1, 0)
    with pytest.raises(InputError, match="mode"):
        M.real_index(1, 7)


# --------------------------------------------------------------------------- calculus


@given(seed=SEEDS)
@settings(max_examples=10)
def test_divergence_of_the_gradient_is_the_laplacian(M, seed):
    """div ∇u = Δu = −l(l+d−2) u for band-limited u (each real harmonic of degree l)."""
    c = M.from_real_coefficients(random_real(M, seed, decay=2.0))
    lap = M.divergence(gradient(M, c))
    l = M.degrees
    np.testing.assert_allclose(lap, -l * (l + M.d - 2.0) * c, atol=1e-11 * M.lmax**2 * np.abs(c).max())


@given(seed=SEEDS)
@settings(max_examples=10)
def test_divergence_integrates_to_zero(M, seed):
    """∫ div v dσ = 0 for any grid field v (the flux form conserves mass to round-off)."""
    rng = np.random.default_rng(seed)
    v = tuple(rng.standard_normal(M.grid_shape) for _ in M.tangent_frame)
    assert abs(M.mean(M.divergence(v))) < 1e-13


@pytest.mark.parametrize("seed", [0, 1])
def test_squared_speed_is_the_squared_length_of_the_projected_vector(M, seed):
    """squared_speed(P_x w) = |w − ⟨w, x⟩x|² in R^d for a random Cartesian field w in the span of the coordinates
    the grid points occupy (all of R^d on S² and S¹; e_1, e_d on the zonal manifold, whose one tangent direction lies
    there)."""
    rng = np.random.default_rng(seed)
    x = M.points()
    w = rng.standard_normal(x.shape) * np.any(x != 0, axis=tuple(range(x.ndim - 1)))
    expected = np.linalg.norm(w - np.sum(w * x, axis=-1, keepdims=True) * x, axis=-1)
    np.testing.assert_allclose(M.squared_speed(M.tangent(w)), expected**2, rtol=1e-12, atol=1e-12)


def test_gradient_of_a_coordinate_is_the_projected_axis(M):
    """∇⟨x, a⟩ = P_x a for the axes a whose coordinate the manifold represents (all on S² and S¹;
    the axis e on the zonal manifold): exact, with the frame orthonormal and tangent."""
    x = M.points()
    frame = M.tangent_frame
    gram = np.einsum("a...i,b...i->...ab", frame, frame)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(len(frame)), gram.shape), atol=1e-12)
    np.testing.assert_allclose(np.einsum("a...i,...i->a...", frame, x), 0.0, atol=1e-12)
    for i in range(M.d):
        c = M.analysis(x[..., i])
        if np.abs(M.synthesis(c) - x[..., i]).max() > 1e-10:
            continue  # not a field of this manifold (zonal: the axes orthogonal to e)
        axis = np.zeros(M.d)
        axis[i] = 1.0
        for got, expected in zip(gradient(M, c), M.tangent(np.broadcast_to(axis, x.shape))):
            np.testing.assert_allclose(got, expected, atol=1e-12)


def test_neighbourhoods_start_with_the_point_itself(M):
    hood = M.neighbourhoods()
    n = int(np.prod(M.grid_shape))
    assert hood.shape[0] == n and np.array_equal(hood[:, 0], np.arange(n))
    assert hood.min() >= 0 and hood.max() < n


# --------------------------------------------------------------------------- the equation on it


def smooth_density(M, seed, amplitude=0.3):
    """1 + a random field of degree ≤ 3 scaled so that |ρ - 1| ≤ amplitude on the grid."""
    a = random_real(M, seed)
    a[0] = 0.0
    a[M.real_degrees > 3] = 0.0
    a *= amplitude / np.abs(M.synthesis(M.from_real_coefficients(a))).max()
    a[0] = 1.0
    return M.from_real_coefficients(a)


@pytest.mark.parametrize("name", ["SA", "USA"])
@pytest.mark.parametrize("beta", [-2.0, 0.0, 3.0])
def test_the_continuity_equation_conserves_mass_and_keeps_uniform_fixed(M, name, beta):
    model = AttentionModel(name, beta, M.d)
    equation = ContinuityEquation(M, model)
    uniform = M.from_real_coefficients(np.eye(M.real_size)[0])
    np.testing.assert_allclose(equation(0.0, uniform), 0.0, atol=1e-12 * np.exp(abs(beta)))
    rhs = equation(0.0, smooth_density(M, 5))
    assert abs(M.mean(rhs)) < 1e-13 * np.abs(rhs).max()


@pytest.mark.parametrize("name", ["SA", "USA"])
@pytest.mark.parametrize("beta", [-3.0, 0.0, 4.0])
def test_linearization_at_uniform_gives_the_linear_rates(M, name, beta):
    """d/dε RHS(1 + εY) = λ_l Y for a real harmonic Y of degree l, λ_l of spherepde.linear (central
    difference with ε = 1e-6: error ε² λ-scale terms, ≤ 1e-9 relative)."""
    model = AttentionModel(name, beta, M.d)
    equation = ContinuityEquation(M, model)
    rates = linear.growth_rates(beta, M.d, name, M.lmax)
    eps = 1e-6
    for l in (1, 2, 3, min(6, M.lmax)):
        index = int(np.nonzero(M.real_degrees == l)[0][-1])
        e = np.eye(M.real_size)[index]
        up = M.real_coefficients(equation(0.0, M.from_real_coefficients(np.eye(M.real_size)[0] + eps * e)))
        down = M.real_coefficients(equation(0.0, M.from_real_coefficients(np.eye(M.real_size)[0] - eps * e)))
        derivative = (up - down) / (2 * eps)
        scale = max(abs(rates).max(), 1e-300)
        assert derivative[index] == pytest.approx(rates[l], abs=1e-7 * scale)
        others = np.delete(derivative, index)
        assert np.abs(others).max() <= 1e-7 * scale


# --------------------------------------------------------------------------- sums at arbitrary points


def random_points(M, n, seed):
    """n random points of the manifold: uniform on S^{d-1}, or on the zonal plane (e_1, e_d)."""
    rng = np.random.default_rng(seed)
    if M.kind == "zonal":
        theta = rng.uniform(0, np.pi, n)
        x = np.zeros((n, M.d))
        x[:, 0], x[:, -1] = np.sin(theta), np.cos(theta)
        return x
    x = rng.standard_normal((n, M.d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@given(seed=SEEDS)
@settings(max_examples=5)
def test_point_sums_agree_with_the_grid_and_the_harmonics(M, seed):
    """locate(x): the synthesis equals the grid values at the grid points, a point measure's coefficients
    are Σ_j w_j Y(x_j) (harmonics() at the points), and the coefficients of the quadrature measure
    Σ_j q_j ρ(x_j) δ_{x_j} of an exact rule of degree 2·lmax are those of ρ. Accuracy: the non-uniform
    transforms' epsilon 1e-13 relative to the coefficients' norm."""
    a = random_real(M, seed)
    c = M.from_real_coefficients(a)
    scale = np.abs(a).sum() * np.sqrt(M.multiplicity(M.lmax))
    grid = M.points().reshape(-1, M.d)
    np.testing.assert_allclose(M.locate(grid).synthesis(c), M.synthesis(c).ravel(), atol=1e-11 * scale)
    x, w = random_points(M, 9, seed), np.random.default_rng(seed).uniform(0.1, 1, 9)
    np.testing.assert_allclose(M.real_coefficients(M.locate(x).coefficients(w)), w @ M.harmonics(x), atol=1e-11 * w.sum() * scale)
    points, q = M.quadrature(2 * M.lmax)
    assert q.sum() == pytest.approx(1.0, abs=1e-14)
    P = M.locate(points)
    np.testing.assert_allclose(M.real_coefficients(P.coefficients(q * P.synthesis(c))), a, atol=1e-11 * scale)


def test_point_gradient_is_the_derivative_along_the_manifold(M):
    """∇u at points against central differences along the tangent frame of each point (h = 1e-6: truncation
    h²|u‴| and round-off ε|u|/h, below 1e-6 of max|∇u|), and tangent: ⟨x, ∇u⟩ = 0."""
    c = M.from_real_coefficients(random_real(M, 1, decay=2.0))
    x = random_points(M, 6, 3)
    G = M.locate(x).gradient(c)
    assert np.abs(np.einsum("ij,ij->i", G, x)).max() < 1e-10 * np.abs(G).max()
    h = 1e-6
    directions = [np.eye(M.d)[i] for i in range(M.d)] if M.kind != "zonal" else [np.eye(M.d)[0], np.eye(M.d)[-1]]
    for e in directions:
        t = e - np.einsum("ij,j->i", x, e)[:, None] * x  # P_x e
        move = lambda s: (x + s * t) / np.linalg.norm(x + s * t, axis=1, keepdims=True)  # noqa: E731
        derivative = (M.locate(move(h)).synthesis(c) - M.locate(move(-h)).synthesis(c)) / (2 * h)
        np.testing.assert_allclose(derivative, np.einsum("ij,ij->i", G, t), atol=1e-6 * np.abs(G).max())
