"""Initial densities ρ₀ (relative to σ, ∫ρ₀ dσ = 1) in a manifold's coefficients.

The generic kinds (a perturbation of the uniform state, a saved snapshot, a kernel estimate of
points) are built here from the manifold's interface; closed-form profiles are the manifold's
own (:meth:`spherepde.manifolds.Manifold.initial_profile`). Every density is checked before a run
starts: it must be resolved by the truncation (at most ``MAX_LOST`` of its L²(σ) norm above lmax)
and non-negative on the grid.
"""
from __future__ import annotations

import numpy as np

from . import io
from .config import FromFile, InitialConfig, KernelEstimate, PerturbedUniform, PointMeasure, PointSource, loads
from .errors import InputError
from .manifolds import Manifold, manifold_from_config
from .manifolds.sampling import uniform_points
from .profiles import kernel_density

# Largest share of ∫ρ₀² dσ that may lie beyond the truncation.
MAX_LOST = 1e-10


def perturbation(manifold: Manifold, modes=None, seed: int = 0) -> np.ndarray:
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
                raise InputError(f"initial.modes entry [{l}, {m}] is not allowed: degree 0 would change the mass", "initial.modes")
            try:
                a[manifold.real_index(l, m)] += 1.0
            except InputError as exc:
                raise InputError(f"initial.modes: {exc}", "initial.modes") from None
    return manifold.from_real_coefficients(a)


def uniform_tokens(n: int, d: int, seed: int) -> np.ndarray:
    """The n iid uniform tokens on S^{d-1} of ``seed`` (those of a token run with init = 'uniform')."""
    return uniform_points(np.random.default_rng(seed), n, d)


def source_points(ini: PointSource, d: int) -> np.ndarray:
    """The unit vectors (n, d) an ``[initial]`` point source describes (checked: finite, on the sphere)."""
    if ini.n is not None:  # the very tokens a token run with the same n and seed starts from
        return uniform_tokens(ini.n, d, ini.seed or 0)
    if ini.points is not None:
        pts = np.asarray(ini.points, float)
    else:
        try:
            pts = np.load(str(ini.path))
        except (OSError, ValueError) as exc:
            raise InputError(f"initial.path = {ini.path!r} cannot be read as a .npy array: {exc}", "initial.path") from None
    if pts.ndim != 2 or pts.shape[1] != d or len(pts) == 0 or not np.all(np.isfinite(pts)):
        raise InputError(f"initial points have shape {pts.shape}: use a finite (n, {d}) array of points", "initial.points")
    radius = np.linalg.norm(pts, axis=1)
    if np.max(np.abs(radius - 1.0)) > 1e-6:
        raise InputError(f"initial points are not on the unit sphere (|x| ranges over {radius.min():.6g}..{radius.max():.6g})",
                         "initial.points")
    return pts / radius[:, None]


def point_measure(ini: PointMeasure, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The points (n, d) and weights (n,), summing to 1, of ``[initial] kind = "points"``."""
    x = source_points(ini, d)
    if ini.weights is not None and len(ini.weights) != len(x):
        raise InputError(f"initial.weights has {len(ini.weights)} entries for {len(x)} points: give one per point",
                         "initial.weights")
    w = np.full(len(x), 1.0) if ini.weights is None else np.asarray(ini.weights, float)
    return x, w / w.sum()


def saved_snapshot(path, time: float | None, section: str) -> tuple[dict, int]:
    """The PDE run file ``path`` (`io.read_run`) and the index of its snapshot at ``time``
    (default the last); errors name the keys ``<section>.path`` and ``<section>.time``."""
    try:
        run = io.read_run(path)
    except InputError as exc:
        raise InputError(f"{section}.path: {exc}", f"{section}.path") from None
    if "density" not in run["fields"]:
        raise InputError(f"{section}.path = {str(path)!r} is not a PDE run file (it holds no density)", f"{section}.path")
    t = run["t"]
    if len(t) == 0:
        raise InputError(f"{section}.path = {str(path)!r} holds no snapshot", f"{section}.path")
    if time is None:
        return run, len(t) - 1
    hits = np.nonzero(np.isclose(t, time, rtol=0, atol=1e-9 * max(1.0, abs(time))))[0]
    if not hits.size:
        raise InputError(f"{section}.time = {time} is not a saved time of {str(path)!r} (saved: {t[0]:g}..{t[-1]:g})",
                         f"{section}.time")
    return run, int(hits[0])


def snapshot_manifold(run: dict) -> Manifold:
    """The manifold of a PDE run file's configuration (a :func:`spherepde.io.read_run` mapping), on the grid its
    densities were saved on."""
    return manifold_from_config(loads(run["config_text"]).domain).on_grid(run["grid"])


def _from_file(ini: FromFile, manifold: Manifold) -> np.ndarray:
    run, i = saved_snapshot(ini.path, ini.time, "initial")
    source = snapshot_manifold(run)
    if source.kind != manifold.kind or source.d != manifold.d:
        raise InputError(f"initial.path = {ini.path!r} holds a {source.kind} run in d = {source.d}, not a "
                         f"{manifold.kind} one in d = {manifold.d}", "initial.path")
    a = source.real_coefficients(source.analysis(io.read_density(ini.path, i)))
    b = np.zeros(manifold.real_size)
    n = min(a.size, b.size)
    b[:n] = a[:n]
    return manifold.from_real_coefficients(b)


def initial_coefficients(ini: InitialConfig, manifold: Manifold) -> np.ndarray:
    """The coefficients of ρ₀ described by ``ini``, checked for resolution and sign."""
    f = None
    if isinstance(ini, PerturbedUniform):
        c = manifold.from_real_coefficients(np.eye(1, manifold.real_size)[0])
        c = c + ini.amplitude * perturbation(manifold, ini.modes, ini.seed)
    elif isinstance(ini, FromFile):
        c = _from_file(ini, manifold)
    else:
        if isinstance(ini, KernelEstimate):
            f = kernel_density(manifold.points(), source_points(ini, manifold.d), ini.bandwidth)
        else:
            f = manifold.initial_profile(ini)
        c = manifold.analysis(f)
    _check_density(manifold, c, f)
    return c


def _check_density(manifold: Manifold, c: np.ndarray, f: np.ndarray | None):
    if f is not None:
        total = float(np.sum(manifold.weights * f * f))
        lost = 1.0 - float(np.sum(manifold.degree_energy(c))) / total
        if lost > MAX_LOST:
            raise InputError(
                f"the initial density is not resolved at lmax = {manifold.lmax}: a share {lost:.2g} of its "
                "L2 norm lies beyond it; raise domain.lmax or make the density smoother", "domain.lmax"
            )
    rho = manifold.synthesis(c)[manifold.significant]
    if not np.all(np.isfinite(rho)):
        raise InputError("the initial density is not finite on the grid", "initial")
    low = float(np.min(rho))
    if low < -1e-10 * float(np.max(np.abs(rho))):
        raise InputError(f"the initial density is negative on the grid (min = {low:.3g}): lower initial.amplitude or smooth it",
                         "initial")
