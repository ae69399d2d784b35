"""The registry of discretized manifolds: ``[domain] kind`` → class (:mod:`.base` for the interface)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ..errors import InputError
from .base import Manifold
from .circle import Circle
from .sphere import Sphere
from .zonal import Zonal

#: Every manifold a run can use, by ``[domain] kind``.
MANIFOLDS: dict[str, type[Manifold]] = {cls.kind: cls for cls in (Sphere, Circle, Zonal)}


def manifold_class(kind: str) -> type[Manifold]:
    """The class registered as ``kind``; InputError naming the kinds otherwise."""
    try:
        return MANIFOLDS[kind]
    except (KeyError, TypeError):
        raise InputError(f"domain.kind = {kind!r} is not allowed: use one of {', '.join(map(repr, MANIFOLDS))}",
                         "domain.kind") from None


def manifold_from_config(domain: Any, threads: int = 1) -> Manifold:
    """The manifold of a checked ``[domain]`` section (:class:`spherepde.config.DomainConfig`)."""
    return manifold_class(domain.kind).from_domain(domain, threads)


#: From this lmax on, [numerics] threads = 0 means all cores; below, one thread (as fast or faster: measured
#: 0.45–1.3× at lmax 63, 1.2–1.5× at 127, 1.45–1.9× at 255 with two threads on 2 cores, benchmarks/bench_run.py)
THREADED_LMAX = 127


def run_threads(threads: int, lmax: int) -> int:
    """The thread count of a run at truncation lmax for ``[numerics] threads`` (0: all cores where they pay off).
    Decided once per run: SHTns sets the process-wide OpenMP count whenever a transform is planned."""
    return threads if threads or lmax >= THREADED_LMAX else 1


def with_degree(manifold: Manifold, lmax: int, threads: int = 1) -> Manifold:
    """The same manifold (kind and dimension) at another truncation degree."""
    return manifold_from_config(SimpleNamespace(kind=manifold.kind, lmax=int(lmax), dim=manifold.d), threads)


def for_points(d: int, lmax: int, threads: int = 1) -> Manifold:
    """The manifold whose harmonic sums serve points of S^{d-1} ⊂ R^d: the circle (d = 2) or the sphere (d = 3)."""
    kinds = {2: "circle", 3: "sphere"}
    if d not in kinds:
        raise InputError(f"harmonic sums over points exist here for d = 2 and d = 3, not d = {d}")
    return manifold_from_config(SimpleNamespace(kind=kinds[d], lmax=max(2, int(lmax)), dim=None), threads)


__all__ = ["MANIFOLDS", "Manifold", "Sphere", "Circle", "Zonal", "manifold_class", "manifold_from_config", "with_degree",
           "for_points", "run_threads", "THREADED_LMAX"]
