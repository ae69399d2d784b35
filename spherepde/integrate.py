"""Time steppers for dy/dt = f(t, y): adaptive Dormand–Prince 5(4) and classical RK4.

Both advance by one step that never passes ``t_stop``, so a driver lands
exactly on snapshot times. The adaptive pair measures the local error
relative to the size of the *deviation* y[1:] (coefficient 0 is the conserved
mean on every manifold), so that a small perturbation of the uniform state is
integrated to relative accuracy ``rtol``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import NumericalFailure

# Dormand & Prince (1980), the 5th-order solution propagated, FSAL.
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_E = np.array([71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])

# An adaptive step is at most CFL times the advective limit 1/(lmax·max|X|): the
# Dormand–Prince stability function has |R(iy)| ≤ 1.003 for |y| ≤ 1.5 (1.15 at 2.5),
# so spectral advection modes are not amplified by more than round-off per step.
CFL = 1.5


def _combine(y, h, coeffs, ks):
    out = y.copy()
    for a, k in zip(coeffs, ks):
        if a:
            out += (h * a) * k
    return out


def _check_finite(y, t, what="the solution became non-finite (NaN or Inf) after"):
    if not np.all(np.isfinite(y)):
        raise NumericalFailure(f"{what} t = {t:.6g}")


class RK4:
    """Classical 4th-order Runge–Kutta with a fixed step ``dt`` (shortened only to land on t_stop)."""

    name = "rk4"

    def __init__(self, dt: float):
        self.dt = dt

    def step(self, f: Callable, t: float, y: np.ndarray, t_stop: float):
        h = t_stop - t if t_stop - t < self.dt * (1 + 1e-9) else self.dt
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported below
            k1 = f(t, y)
            k2 = f(t + h / 2, y + (h / 2) * k1)
            k3 = f(t + h / 2, y + (h / 2) * k2)
            k4 = f(t + h, y + h * k3)
            y_new = y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        _check_finite(y_new, t)
        return (t_stop if h == t_stop - t else t + h), y_new

    def state(self) -> dict:
        return {}

    def restore(self, state: dict):
        pass


class DormandPrince:
    """Adaptive embedded Runge–Kutta 5(4) pair with error control.

    Accepts a step when ‖e‖₂ ≤ atol + rtol·‖y[1:]‖₂ (e the embedded error
    estimate); the next step is h·min(5, max(0.2, 0.9·err^{-1/5})), capped by
    ``CFL · max_step()`` when a velocity-based limit is supplied.
    """

    name = "dopri5"

    def __init__(self, rtol: float, atol: float = 1e-300, max_step: Callable[[], float] | None = None):
        self.rtol = rtol
        self.atol = atol
        self.max_step = max_step
        self.h = None
        self.accepted = 0
        self.rejected = 0
        self._fsal = None

    def _limit(self) -> float:
        return np.inf if self.max_step is None else CFL * self.max_step()

    def _first(self, f, t, y):
        if self._fsal is not None and self._fsal[0] is y:
            return self._fsal[1]
        return f(t, y)

    def step(self, f: Callable, t: float, y: np.ndarray, t_stop: float):
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up shows as err = inf: rejected
            return self._step(f, t, y, t_stop)

    def _step(self, f: Callable, t: float, y: np.ndarray, t_stop: float):
        k1 = self._first(f, t, y)
        _check_finite(k1, t, "the right-hand side is non-finite (NaN or Inf) at the last good state,")  # no step size helps
        if self.h is None:
            size, slope = np.linalg.norm(y[1:]), np.linalg.norm(k1)
            self.h = 0.01 * size / slope if slope > 0 and size > 0 else t_stop - t
        while True:
            h = min(self.h, self._limit())
            clipped = h >= t_stop - t
            if clipped:
                h = t_stop - t
            ks = [k1]
            for i in range(1, 7):
                y_new = _combine(y, h, _A[i], ks)  # the last stage point is the 5th-order solution
                ks.append(f(t + _C[i] * h, y_new))
            err_vec = _combine(np.zeros_like(y), h, _E, ks)
            scale = self.atol + self.rtol * max(np.linalg.norm(y[1:]), np.linalg.norm(y_new[1:]))
            err = np.linalg.norm(err_vec) / scale
            finite = bool(np.isfinite(err))
            if not finite:
                err = np.inf
            factor = 5.0 if err == 0 else min(5.0, max(0.2, 0.9 * err ** -0.2))
            if err <= 1.0:
                self.accepted += 1
                if not (clipped and factor >= 1.0):
                    self.h = h * factor
                _check_finite(y_new, t)
                self._fsal = (y_new, ks[6])
                return (t_stop if clipped else t + h), y_new
            self.rejected += 1
            self.h = h * factor
            if self.h < 1e-14 * max(1.0, abs(t)):
                cause = ("the right-hand side is non-finite (NaN or Inf) arbitrarily close to the last good state"
                         if not finite else "the solution is blowing up")
                raise NumericalFailure(f"the adaptive step size underflowed at t = {t:.6g}: {cause}")

    def state(self) -> dict:
        return {"h": float(self.h) if self.h is not None else 0.0}

    def restore(self, state: dict):
        self.h = state.get("h") or None
