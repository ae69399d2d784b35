"""Initial densities ρ₀ (relative to σ, ∫ρ₀ dσ = 1) in a manifold's coefficients.

Every density is checked before a run starts: it must be resolved by the
truncation (at most ``MAX_LOST`` of its L²(σ) norm above lmax) and
non-negative on the grid.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .model import funk_hecke

# Largest share of ∫ρ₀² dσ that may lie beyond the truncation.
MAX_LOST = 1e-10


def von_mises_fisher(x: np.ndarray, mean: np.ndarray, kappa: float) -> np.ndarray:
    """ρ(x) = e^{κ⟨x,μ⟩} / ĥ_0(κ) on S^{d-1}, μ a unit vector (density w.r.t. σ), overflow-free."""
    d = x.shape[-1]
    norm = funk_hecke(0, kappa, d, scaled=True)[0]  # e^{-κ} ĥ_0(κ) = e^{-κ} ∫ e^{κ⟨x,μ⟩} dσ
    return np.exp(kappa * (x @ mean - 1.0)) / norm


def kernel_density(x: np.ndarray, points: np.ndarray, kappa: float, block: int = 2048) -> np.ndarray:
    """(1/n) Σ_i ρ_vMF(x; x_i, κ): the empirical measure of the points smoothed by a von Mises–Fisher kernel."""
    out = np.zeros(x.shape[:-1])
    for start in range(0, len(points), block):
        out += von_mises_fisher(x, points[start : start + block].T, kappa).sum(axis=-1)
    return out / len(points)


def wrapped_cauchy(theta: np.ndarray, R: float, psi: float) -> np.ndarray:
    """(1 - R²) / (1 - 2R cos(θ-ψ) + R²) on the circle (density w.r.t. σ)."""
    return (1.0 - R * R) / (1.0 - 2.0 * R * np.cos(theta - psi) + R * R)


def perturbation(manifold, modes=None, seed: int = 0) -> np.ndarray:
    """Σ of the listed normalized real harmonics, or seeded white noise of unit L²(σ) norm.

    White noise: an independent N(0,1) coefficient for every normalized real harmonic of
    degree 1..lmax, the whole rescaled to unit norm.
    """
    a = np.zeros(manifold.real_size)
    if modes is None:
        a[1:] = np.random.default_rng(seed).standard_normal(manifold.real_size - 1)
        a /= np.linalg.norm(a)
    else:
        for l, m in modes:
            if l == 0:
                raise InputError(f"initial.modes entry [{l}, {m}] is not allowed: degree 0 would change the mass")
            try:
                a[manifold.real_index(l, m)] += 1.0
            except InputError as exc:
                raise InputError(f"initial.modes: {exc}") from None
    return manifold.from_real_coefficients(a)


def _points(ini: dict, d: int) -> np.ndarray:
    if "n" in ini:  # the very tokens a particle run with the same n and seed starts from
        from .particles import initial_tokens

        return initial_tokens("uniform", ini["n"], d, seed=ini["seed"])
    if "points" in ini:
        pts = np.asarray(ini["points"], float)
    else:
        try:
            pts = np.load(ini["path"])
        except (OSError, ValueError) as exc:
            raise InputError(f"initial.path = {ini['path']!r} cannot be read as a .npy array: {exc}") from None
    if pts.ndim != 2 or pts.shape[1] != d or len(pts) == 0 or not np.all(np.isfinite(pts)):
        raise InputError(f"initial points have shape {pts.shape}: use a finite (n, {d}) array of points")
    radius = np.linalg.norm(pts, axis=1)
    if np.max(np.abs(radius - 1.0)) > 1e-6:
        raise InputError(f"initial points are not on the unit sphere (|x| ranges over {radius.min():.6g}..{radius.max():.6g})")
    return pts / radius[:, None]


def saved_snapshot(path, time: float | None, section: str) -> tuple[dict, int]:
    """The PDE run file ``path`` (`io.read_run`) and the index of its snapshot at ``time``
    (default the last); errors name the keys ``<section>.path`` and ``<section>.time``."""
    from . import io

    try:
        run = io.read_run(path)
    except InputError as exc:
        raise InputError(f"{section}.path: {exc}") from None
    if run["manifold"] not in ("sphere", "circle"):
        raise InputError(f"{section}.path = {str(path)!r} is not a PDE run file (it holds no density)")
    t = run["t"]
    if len(t) == 0:
        raise InputError(f"{section}.path = {str(path)!r} holds no snapshot")
    if time is None:
        return run, len(t) - 1
    hits = np.nonzero(np.isclose(t, time, rtol=0, atol=1e-9 * max(1.0, abs(time))))[0]
    if not hits.size:
        raise InputError(f"{section}.time = {time} is not a saved time of {str(path)!r} (saved: {t[0]:g}..{t[-1]:g})")
    return run, int(hits[0])


def _from_file(ini: dict, manifold) -> np.ndarray:
    from . import io
    from .solver import discretization

    path = ini["path"]
    run, i = saved_snapshot(path, ini.get("time"), "initial")
    cfg = run["config"]
    if cfg["domain"]["kind"] != manifold.kind:
        raise InputError(f"initial.path = {path!r} holds a {cfg['domain']['kind']} run, not a {manifold.kind} one")
    source = discretization(cfg["domain"]["kind"], cfg["domain"]["lmax"])
    a = source.real_coefficients(source.analysis(io.read_density(path, i)))
    b = np.zeros(manifold.real_size)
    n = min(a.size, b.size)
    b[:n] = a[:n]
    return manifold.from_real_coefficients(b)


def initial_coefficients(cfg: dict, manifold) -> np.ndarray:
    """The coefficients of ρ₀ described by ``cfg['initial']``, checked for resolution and sign."""
    ini = cfg["initial"]
    kind = ini["kind"]
    x = manifold.points()
    f = None
    if kind == "perturbed_uniform":
        c = manifold.from_real_coefficients(np.eye(1, manifold.real_size)[0])
        c = c + ini["amplitude"] * perturbation(manifold, ini.get("modes"), ini["seed"])
    elif kind == "from_file":
        c = _from_file(ini, manifold)
    else:
        if kind in ("von_mises_fisher", "von_mises"):
            mean = np.asarray(ini["mean"]) if "mean" in ini else np.array([np.cos(ini["psi"]), np.sin(ini["psi"])])
            f = von_mises_fisher(x, mean / np.linalg.norm(mean), ini["kappa"])
        elif kind == "wrapped_cauchy":
            f = wrapped_cauchy(np.arctan2(x[..., 1], x[..., 0]), ini["R0"], ini["psi"])
        elif kind == "particles":
            f = kernel_density(x, _points(ini, manifold.d), ini["bandwidth"])
        c = manifold.analysis(f)
    _check_density(manifold, c, f)
    return c


def _check_density(manifold, c: np.ndarray, f: np.ndarray | None):
    if f is not None:
        total = float(np.sum(manifold.weights * f * f))
        lost = 1.0 - float(np.sum(manifold.degree_energy(c))) / total
        if lost > MAX_LOST:
            raise InputError(
                f"the initial density is not resolved at lmax = {manifold.lmax}: a share {lost:.2g} of its "
                "L2 norm lies beyond it; raise domain.lmax or make the density smoother"
            )
    rho = manifold.synthesis(c)
    if not np.all(np.isfinite(rho)):
        raise InputError("the initial density is not finite on the grid")
    low = float(np.min(rho))
    if low < -1e-10 * float(np.max(np.abs(rho))):
        raise InputError(f"the initial density is negative on the grid (min = {low:.3g}): lower initial.amplitude or smooth it")
