"""The registry of discretized manifolds: ``[domain] kind`` → class (:mod:`.base` for the interface)."""
from __future__ import annotations

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


__all__ = ["MANIFOLDS", "Manifold", "Sphere", "Circle", "Zonal", "manifold_class", "manifold_from_config"]
