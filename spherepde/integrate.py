"""Explicit Runge–Kutta time stepping: one tableau-driven engine, a registry of schemes, and the
snapshot times of a run.

:class:`Stepper` advances dy/dt = f(t, y) by one accepted step that never passes ``t_stop``, so a
driver lands exactly on snapshot times. Adaptive schemes (those with an embedded error estimate)
accept a step when the problem's error norm is ≤ 1 and pick the next step size from it; fixed
schemes take equal steps of at most ``dt``. Two hooks adapt the engine to a problem:

- the error norm (:class:`DeviationNorm` for spectral coefficients, whose entry 0 is the conserved
  mean; :class:`PointwiseNorm` for points on the sphere), which also proposes the first step;
- a projection applied to every stage point and accepted state (points are renormalized onto
  the sphere; the field is then evaluated 0-homogeneously, f(y) = F(y/|y|)).

A step cap ``max_step()`` (an advective CFL limit, :data:`CFL` times the problem's 1/(lmax·max|X|))
applies to adaptive schemes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from .errors import NumericalFailure

# An adaptive step is at most CFL times the advective limit 1/(lmax·max|X|): the
# Dormand–Prince stability function has |R(iy)| ≤ 1.003 for |y| ≤ 1.5 (1.15 at 2.5),
# so spectral advection modes are not amplified by more than round-off per step.
CFL = 1.5


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta method: nodes c, stage coefficients a (rows of the lower
    triangle), weights b and, for an embedded pair, error weights e = b - b̂."""

    name: str
    order: int
    c: tuple
    a: tuple
    b: tuple
    e: tuple | None = None

    @property
    def adaptive(self) -> bool:
        return self.e is not None

    @property
    def fsal(self) -> bool:
        """First stage of the next step = last stage of this one (the last row of a is b)."""
        return self.a[-1] == self.b[: len(self.a[-1])] and self.c[-1] == 1.0


RK4 = Tableau("rk4", 4, c=(0.0, 0.5, 0.5, 1.0), a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
              b=(1 / 6, 1 / 3, 1 / 3, 1 / 6))

DOPRI5 = Tableau(  # Dormand & Prince (1980): order 5 propagated, embedded order 4, FSAL
    "dopri5", 5,
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    e=(71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40),
)

#: Every time-stepping scheme, by its name in configurations (``[time] method``).
SCHEMES: dict[str, Tableau] = {scheme.name: scheme for scheme in (DOPRI5, RK4)}


class ErrorNorm(Protocol):
    def error(self, e: np.ndarray, y: np.ndarray, y_new: np.ndarray) -> float: ...

    def first_step(self, y: np.ndarray, slope: np.ndarray) -> float: ...


@dataclass(frozen=True)
class DeviationNorm:
    """‖e‖₂ / (atol + rtol · max(‖y[1:]‖₂, ‖y_new[1:]‖₂)): the error relative to the size of the
    deviation from the conserved entry y[0] (the mean of a density), so that a small perturbation
    of the uniform state is integrated to relative accuracy rtol. First step 0.01 ‖y[1:]‖/‖f‖."""

    rtol: float
    atol: float = 1e-300

    def error(self, e, y, y_new) -> float:
        size = max(float(np.linalg.norm(y[1:])), float(np.linalg.norm(y_new[1:])))
        return float(np.linalg.norm(e)) / (self.atol + self.rtol * size)

    def first_step(self, y, slope) -> float:
        size, rate = float(np.linalg.norm(y[1:])), float(np.linalg.norm(slope))
        return 0.01 * size / rate if size > 0 and rate > 0 else math.inf


@dataclass(frozen=True)
class PointwiseNorm:
    """max_i ‖e_i‖ / rtol over the rows e_i (points on the unit sphere: an absolute length).
    First step 0.1 rtol^{1/5} / max_i ‖f_i‖."""

    rtol: float

    def error(self, e, y, y_new) -> float:
        return float(np.max(np.linalg.norm(e, axis=-1))) / self.rtol

    def first_step(self, y, slope) -> float:
        speed = float(np.max(np.linalg.norm(slope, axis=-1))) if slope.size else 0.0
        return 0.1 * self.rtol**0.2 / speed if speed > 0 else math.inf


def normalize_rows(y: np.ndarray) -> np.ndarray:
    """y/|y| row by row: the projection of points onto the unit sphere."""
    return y / np.linalg.norm(y, axis=-1, keepdims=True)


def _combine(y, h, coefficients, stages):
    """y + h Σ_j a_j k_j (a new array). Not BLAS axpy: OpenBLAS threads it from 10⁴ entries on, and its threads,
    spinning after each call, made a threaded S² step 9× slower by competing with SHTns' OpenMP threads."""
    out = y.copy()
    for c, k in zip(coefficients, stages):
        if c:
            out += (h * c) * k
    return out


def _check_finite(y, t, what="the solution became non-finite (NaN or Inf) after"):
    if not np.all(np.isfinite(y)):
        raise NumericalFailure(f"{what} t = {t:.6g}")


class Stepper:
    """One accepted step at a time of dy/dt = f(t, y) with the tableau ``scheme``.

    Adaptive: next step h·min(5, max(0.2, 0.9·err^{-1/5})) from the error norm (after a step
    shortened to land on t_stop, the step before it is kept unless the error asks for less); no
    step is shorter than 1e-14·max(1, |t|) (NumericalFailure: blow-up or a non-finite right-hand
    side). With ``time_floor=False`` (a system that cannot blow up, such as points on the sphere)
    steps may be shorter than that, even than the resolution of t itself — the fast merge of two
    clusters at t = 10²⁶ takes steps of order 1 — and only a collapse of the step by 1e-14 within
    one call fails. Time advances by compensated summation: the part of the elapsed time below the
    resolution of t is carried in ``lag`` (checkpointed with the step size). Fixed: ⌈(t_stop - t)/dt⌉ equal steps up to t_stop.
    The first stage of a step is f at the accepted state itself (FSAL schemes reuse it), so that a
    run continued from a saved (t, y, state()) repeats the uninterrupted one bit for bit.
    """

    def __init__(self, scheme: Tableau, *, rtol: float | None = None, dt: float | None = None,
                 norm: ErrorNorm | None = None, project: Callable[[np.ndarray], np.ndarray] | None = None,
                 max_step: Callable[[], float] | None = None, time_floor: bool = True):
        if scheme.adaptive and norm is None:
            raise ValueError(f"the adaptive scheme {scheme.name} needs an error norm")
        if not scheme.adaptive and dt is None:
            raise ValueError(f"the fixed-step scheme {scheme.name} needs dt")
        self.scheme, self.norm, self.project, self.max_step = scheme, norm, project, max_step
        self.dt = dt
        self.time_floor = time_floor
        self.h: float | None = None
        self.lag = 0.0
        self.accepted = 0
        self.rejected = 0
        self._fsal: tuple[np.ndarray, np.ndarray] | None = None  # (y, f(t, y)) at the last accepted state

    @property
    def name(self) -> str:
        return self.scheme.name

    def state(self) -> dict:
        return {"h": float(self.h) if self.h is not None else 0.0, "lag": self.lag}

    def restore(self, state: dict):
        self.h = state.get("h") or None
        self.lag = float(state.get("lag", 0.0))

    def _stages(self, f, t, y, h, k1):
        """All stages from the first one k1; returns (y_new, error or None, stages)."""
        scheme, project = self.scheme, self.project
        stages = [k1]
        for c, row in zip(scheme.c[1:], scheme.a[1:]):
            point = _combine(y, h, row, stages)
            if project is not None:
                point = project(point)  # the unprojected point is not kept while f runs
            stages.append(f(t + c * h, point))
        y_new = point if scheme.fsal else _combine(y, h, scheme.b, stages)  # FSAL: already projected
        error = _combine(np.zeros_like(y), h, scheme.e, stages) if scheme.adaptive else None
        return y_new, error, stages

    def step(self, f: Callable, t: float, y: np.ndarray, t_stop: float) -> tuple[float, np.ndarray]:
        """(t_new, y_new) after one accepted step from (t, y) towards t_stop (never beyond it)."""
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up shows as err = inf, or below
            k1 = self._fsal[1] if self._fsal is not None and self._fsal[0] is y else f(t, y)
            _check_finite(k1, t, "the right-hand side is non-finite (NaN or Inf) at the last good state,")
            if self.scheme.adaptive:
                t_new, y_new, stages = self._adaptive(f, t, y, t_stop, k1)
            else:
                assert self.dt is not None
                steps = max(1, math.ceil((t_stop - t) / self.dt - 1e-9))
                h = (t_stop - t) / steps
                y_new, _, stages = self._stages(f, t, y, h, k1)
                t_new = t_stop if steps == 1 else t + h
        if self.project is not None and not self.scheme.fsal:
            y_new = self.project(y_new)
        _check_finite(y_new, t)
        self.accepted += 1
        self._fsal = (y_new, stages[-1]) if self.scheme.fsal else None
        return t_new, y_new

    def _advance(self, t: float, h: float, t_stop: float) -> float:
        """t + h with the part below the resolution of t carried over in ``lag`` (compensated summation); short
        of t_stop, which only a step that lands on it reaches (rounding up to it would lose the lag)."""
        advance = self.lag + h
        t_new = min(t + advance, math.nextafter(t_stop, -math.inf))
        self.lag = advance - (t_new - t)
        return t_new

    def _adaptive(self, f, t, y, t_stop, k1):
        assert self.norm is not None
        remaining = (t_stop - t) - self.lag  # the time already elapsed below the resolution of t counts
        h = self.h if self.h is not None else min(self.norm.first_step(y, k1), remaining)
        floor = 1e-14 * max(1.0, abs(t)) if self.time_floor else 1e-14 * h
        limit = math.inf if self.max_step is None else CFL * self.max_step()
        while True:
            h_try = min(h, limit)
            clipped = remaining < 1.01 * h_try  # no sliver of a step before t_stop
            if clipped:
                h_try = remaining
            y_new, error, stages = self._stages(f, t, y, h_try, k1)
            err = self.norm.error(error, y, y_new)
            finite = math.isfinite(err)
            if not finite:
                err = math.inf
            factor = 5.0 if err == 0 else min(5.0, max(0.2, 0.9 * err ** -0.2))
            if err <= 1.0:
                self.h = max(h, h_try * factor) if clipped else h_try * factor
                if clipped:
                    self.lag = 0.0
                    return t_stop, y_new, stages
                return self._advance(t, h_try, t_stop), y_new, stages
            self.rejected += 1
            del y_new, error, stages  # the retry holds its own stages only (7 × 24 MB for 10⁶ tokens on S²)
            h = h_try * factor
            if h < floor:
                cause = ("the right-hand side is non-finite (NaN or Inf) arbitrarily close to the last good state"
                         if not finite else "the solution is blowing up")
                raise NumericalFailure(f"the adaptive step size underflowed at t = {t:.6g}: {cause}")


def save_times(t_end: float, save_every: float, save_per_decade: int | None = None,
               log_from: float | None = None) -> np.ndarray:
    """The snapshot times of a run, t_end last.

    Without ``save_per_decade``: 0, Δ, 2Δ, … (computed as k·Δ, not by accumulation), Δ = save_every.
    With it (k per decade): k·Δ up to the first multiple t_s of Δ at or after ``log_from`` (default:
    where the logarithmic step first exceeds Δ, t = Δ/(10^{1/k} - 1)), then t_s·10^{j/k}: uniform in
    the early (linear) phase, log-spaced over the long metastable phases.
    """
    last = math.floor(t_end / save_every * (1 + 1e-12))
    if save_per_decade is None:
        times = save_every * np.arange(last + 1)
    else:
        ratio = 10.0 ** (1.0 / save_per_decade)
        switch = save_every / (ratio - 1.0) if log_from is None else log_from
        m = min(max(1, math.ceil(switch / save_every * (1 - 1e-12))), last)
        start = save_every * m
        count = math.floor(math.log(t_end / start) / math.log(ratio) * (1 + 1e-12)) if t_end > start else 0
        times = np.concatenate([save_every * np.arange(m + 1), start * ratio ** np.arange(1, count + 1)])
    if t_end - times[-1] > 1e-9 * save_every:
        times = np.append(times, t_end)
    else:
        times[-1] = t_end
    return times
