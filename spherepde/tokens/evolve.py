"""Time stepping of the token ODE ẋ = F(x) on (S^{d-1})^n by the shared Runge–Kutta engine
(:mod:`spherepde.integrate`): stages at y/|y| (the field extended 0-homogeneously), every accepted
state projected back onto the sphere, the local error measured per token (a length)."""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np

from ..errors import InputError
from .. import integrate
from ..integrate import SCHEMES, PointwiseNorm, Stepper, normalize_rows
from .field import TokenField, attention_field
from .points import as_points, as_positive


def token_stepper(method: str = "dopri5", dt: float | None = None, rtol: float = 1e-8) -> Stepper:
    """The stepper of a token run: ``method`` a scheme of the registry (dopri5: per-token local
    error ≤ rtol, ``dt`` the first step if given; rk4: equal steps ≤ dt)."""
    scheme = SCHEMES[method]
    stepper = Stepper(scheme, rtol=rtol, dt=dt, norm=PointwiseNorm(rtol) if scheme.adaptive else None,
                      project=normalize_rows)
    if scheme.adaptive and dt is not None:
        stepper.h = float(dt)
    return stepper


def _check_times(save_times_, start: float) -> np.ndarray:
    try:
        times = np.atleast_1d(np.array(save_times_, dtype=float))
        shown = np.array2string(times, separator=", ", threshold=6).replace("\n", "")
    except (TypeError, ValueError):
        times, shown = np.array([np.nan]), repr(save_times_)
    if (times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times))
            or np.any(np.diff(times) <= 0) or times[0] < start):
        raise InputError(f"save_times = {shown} is not allowed: use strictly increasing finite times >= {start:g}")
    return times


def _march(field: TokenField, stepper: Stepper, x, t, times, progress) -> Iterator[tuple[float, np.ndarray]]:
    f = lambda _t, y: field(y)  # noqa: E731
    for t_save in times:
        while t < t_save:
            t, x = stepper.step(f, t, x, t_save)
            if progress is not None:
                progress(t)
        yield float(t), x.copy()


def trajectory(x0, beta, model: str = "SA", *, save_times, t0: float = 0.0, method: str = "dopri5",
               dt: Optional[float] = None, rtol: float = 1e-8, Q=None, K=None, V=None,
               block: Optional[int] = None, backend: str = "auto",
               progress: Optional[Callable[[float], None]] = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (t, x(t)) for each save time ≥ t0, x(t0) = x0, solving the token ODE of `velocity`.

    method = "rk4": classical RK4, fixed steps ≤ dt (dt required); "dopri5": Dormand–Prince 5(4),
    local error per token ≤ rtol (dt = first step). Steps are shortened to land exactly on the
    save times. ``progress(t)`` is called after every step. All input is checked here;
    NumericalFailure is raised lazily, after the snapshots already yielded.
    """
    x = as_points(x0, "x0")
    field = attention_field(beta, model, x.shape[1], Q, K, V, block, backend, len(x))
    try:
        t0 = float(t0)
    except (TypeError, ValueError):
        t0 = float("nan")
    if not np.isfinite(t0):
        raise InputError(f"t0 = {t0} is not allowed: use a finite start time")
    times = _check_times(save_times, t0)
    method = str(method).lower()
    if method not in SCHEMES:
        raise InputError(f"method = {method!r} is not allowed: use one of {', '.join(map(repr, SCHEMES))}")
    if not SCHEMES[method].adaptive and dt is None:
        raise InputError(f"method '{method}' needs a time step: give dt > 0")
    dt = None if dt is None else as_positive(dt, "dt")
    rtol = as_positive(rtol, "rtol")
    return _march(field, token_stepper(method, dt, rtol), x, t0, times, progress)


def simulate(x0, beta, model: str = "SA", *, t_end: Optional[float] = None, save_every: Optional[float] = None,
             save_times=None, method: str = "dopri5", dt: Optional[float] = None, rtol: float = 1e-8,
             Q=None, K=None, V=None, block: Optional[int] = None, backend: str = "auto",
             progress: Optional[Callable[[float], None]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Solve the token ODE from x0 at t = 0; return times (n_t,) and tokens (n_t, n, d).

    Snapshots at 0, save_every, 2·save_every, …, t_end (t_end always included), or at 0 and t_end
    without save_every, or exactly at ``save_times`` (≥ 0). Scheme as in `trajectory`, which
    yields the same snapshots one at a time (for output as the run goes).
    """
    if save_times is not None:
        if t_end is not None or save_every is not None:
            raise InputError("save_times cannot be combined with t_end or save_every: give one of them")
        times = save_times
    else:
        t_end = as_positive(t_end, "t_end")
        times = np.array([0.0, t_end]) if save_every is None else integrate.save_times(t_end, as_positive(save_every, "save_every"))
    snapshots = list(trajectory(x0, beta, model, save_times=times, method=method, dt=dt, rtol=rtol,
                                Q=Q, K=K, V=V, block=block, backend=backend, progress=progress))
    return np.array([t for t, _ in snapshots]), np.stack([x for _, x in snapshots])

