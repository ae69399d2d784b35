"""The acts of a run read from what it saved: the linear phase, the formation of clusters, metastable
plateaus ended by merges, and the contraction of the clusters (docs/mathematics.md, "The whole life").

- :func:`plateaus`: the metastable phases — the cluster count constant and positive over at least a factor
  ``METASTABLE_SPAN`` in time; a merge is a drop of the count from one plateau to the next.
- :func:`spread`: the spread Σ_g Σ_{i∈g} w_i |x_i − m_g|² of weighted points around the normalized weighted
  means m_g of their clusters g. Near a cluster it decays like e^{−2ct}, c the linearized contraction rate
  (:func:`spherepde.lagrangian.contraction_rate`): the same rate at which the last two clusters collapse into one.
- :func:`contraction`: that rate fitted from the snapshots of weighted points between cluster formation and
  the first metastable plateau.
- :func:`read` (onset, switch, plateaus, merges) and :func:`measured_contraction` for a run (a file or an
  in-memory run).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import config, io
from .lagrangian import contraction_rate
from .model import AttentionModel

#: A cluster count held over at least this factor in time (t_end / t_start) is a metastable plateau.
METASTABLE_SPAN = 2.0
#: The spread is fitted where it lies in this range: below the upper end the clusters are in their linear
#: regime (width ≲ 1e-2), above the lower end the points have not merged (merge_distance² ≲ 1e-20) and the
#: spread is far above round-off.
CONTRACTION_WINDOW = (1e-14, 1e-4)


@dataclass(frozen=True)
class Plateau:
    """A metastable phase: ``clusters`` clusters from time ``start`` (the first snapshot with that count) until
    ``end`` (the first snapshot with another count; inf if the run ends on it)."""

    clusters: int
    start: float
    end: float


@dataclass(frozen=True)
class Merge:
    """A drop of the cluster count between two metastable plateaus, located to the snapshot spacing."""

    t: float
    before: int
    after: int


@dataclass(frozen=True)
class Contraction:
    """The fitted decay rate of the spread around the clusters, its prediction 2c and the fit's window."""

    rate: float
    predicted: float
    t0: float
    t1: float
    snapshots: int


@dataclass(frozen=True)
class Life:
    """The acts of one run: ``onset`` the first snapshot with clusters, ``switch`` the first of weighted points
    (None when it has none), the metastable ``plateaus`` and the ``merges`` between them."""

    onset: float | None
    switch: float | None
    plateaus: list[Plateau]
    merges: list[Merge]


def plateaus(t: np.ndarray, clusters: np.ndarray, span: float = METASTABLE_SPAN) -> list[Plateau]:
    """The runs of a constant positive cluster count that last at least a factor ``span`` in time."""
    found = []
    edges = np.flatnonzero(np.diff(clusters)) + 1
    for first, stop in zip(np.r_[0, edges], np.r_[edges, len(t)]):
        end = float(t[stop]) if stop < len(t) else np.inf
        last = end if stop < len(t) else float(t[-1])
        if clusters[first] > 0 and t[first] > 0 and last >= span * t[first]:
            found.append(Plateau(int(clusters[first]), float(t[first]), end))
    return found


def merges(found: list[Plateau]) -> list[Merge]:
    """The drops of the count from one metastable plateau to the next, at the first snapshot of the lower count."""
    return [Merge(a.end, a.clusters, b.clusters) for a, b in zip(found, found[1:]) if b.clusters < a.clusters]


def labels(x: np.ndarray) -> np.ndarray:
    """Rows (n, d) at identical positions share a label (merged rows sit at their point): the clusters of a
    snapshot in which each cluster has become one point."""
    return np.unique(np.round(x, 12), axis=0, return_inverse=True)[1].ravel()


def spread(x: np.ndarray, w: np.ndarray, label: np.ndarray) -> float:
    """Σ_g Σ_{i∈g} w_i |x_i − m_g|², m_g = Σ_{i∈g} w_i x_i / |Σ_{i∈g} w_i x_i| (groups without mass skipped)."""
    count = int(label.max()) + 1
    sums = np.stack([np.bincount(label, w * xi, minlength=count) for xi in x.T], axis=1)
    norm = np.linalg.norm(sums, axis=1)
    massive = norm > 0
    m = np.zeros_like(sums)
    m[massive] = sums[massive] / norm[massive, None]
    keep = massive[label] & (w != 0)
    return float(np.sum(w[keep] * np.sum((x[keep] - m[label[keep]]) ** 2, axis=1)))


Snapshot = Callable[[int], "tuple[np.ndarray, np.ndarray]"]


def contraction(t: np.ndarray, diag: dict, snapshot: Snapshot, model: AttentionModel,
                window: tuple[float, float] = CONTRACTION_WINDOW) -> Contraction | None:
    """The rate of e^{−rate·t} fitted (least squares on log spread) to the spread of the weighted points around
    the clusters of the first snapshot in which every cluster is one point, over the snapshots before it whose
    spread lies in ``window``; None if fewer than three do (or no snapshot has every cluster as one point)."""
    lagrangian, active, clusters = diag["lagrangian"], diag["points_active"], diag["clusters"]
    settled = np.flatnonzero((lagrangian == 1) & (active > 0) & (active == clusters))
    if not settled.size:
        return None
    label = labels(snapshot(int(settled[0]))[0])
    rows = [i for i in np.flatnonzero(lagrangian == 1) if i < settled[0]]
    values = np.array([spread(*snapshot(int(i)), label) for i in rows])
    inside = (values >= window[0]) & (values <= window[1])
    if np.count_nonzero(inside) < 3:
        return None
    times = t[rows][inside]
    rate = -np.polyfit(times, np.log(values[inside]), 1)[0]
    return Contraction(float(rate), 2.0 * contraction_rate(model), float(times[0]), float(times[-1]), int(inside.sum()))


def _first(t: np.ndarray, mask: np.ndarray) -> float | None:
    return float(t[np.argmax(mask)]) if np.any(mask) else None


def read(run: dict) -> Life:
    """The acts of ``run`` (what :func:`spherepde.io.read_run` or an in-memory run gives)."""
    t, diag = run["t"], run["diagnostics"]
    found = plateaus(t, diag["clusters"])
    switch = _first(t, diag["lagrangian"] == 1) if "lagrangian" in diag else None
    return Life(_first(t, diag["clusters"] > 0), switch, found, merges(found))


def measured_contraction(run: dict, path=None) -> Contraction | None:
    """:func:`contraction` of ``run``, its weighted points read snapshot by snapshot from the file ``path`` when
    given, else from ``run["fields"]``; None for a run that never switched to points."""
    diag = run["diagnostics"]
    if "lagrangian" not in diag or not np.any(diag["lagrangian"] == 1):
        return None
    if path is not None:
        def snapshot(i: int):
            return io.read_field(path, "points", i), io.read_field(path, "weights", i)
    else:
        def snapshot(i: int):
            return run["fields"]["points"][i], run["fields"]["weights"][i]
    return contraction(run["t"], diag, snapshot, config.loads(run["config_text"]).attention())
