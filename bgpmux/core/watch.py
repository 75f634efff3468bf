"""What the core tells a watcher (the API's event stream) as it happens: plain, frozen data.

The core calls ``Core.watcher`` only while one is set, which the API does only while someone
watches: with nobody watching, each hook costs one attribute test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ..rib.loc_rib import Changes, Conflict
from ..wire.constants import Family
from ..wire.prefix import prefix_to_str


@dataclass(frozen=True, slots=True)
class SessionChange:
    """A session came up (``up``) or went down, as the core saw it. ``role``: "client" or
    "upstream". ``stale_time``: seconds its routes stay, stale (RFC 4724 §4.2); 0: withdrawn."""

    peer: str
    role: str
    up: bool
    stale_time: float = 0.0


@dataclass(frozen=True, slots=True)
class RouteChange:
    """Best-path changes of one family flushed to the upstreams (``to_upstreams``) or to the
    clients: prefixes as text."""

    to_upstreams: bool
    family: str
    announced: tuple[str, ...]
    withdrawn: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConflictSeen:
    """Several peers announce ``prefix``: ``best`` wins over ``losers`` for ``reason``."""

    prefix: str
    family: str
    best: str
    losers: tuple[str, ...]
    reason: str


Change = SessionChange | RouteChange | ConflictSeen


def route_changes(
    pending_up: Mapping[Family, Changes], pending_down: Mapping[Family, Changes]
) -> Iterator[RouteChange]:
    """The pending best-path changes (to the upstreams, to the clients) per family."""
    for to_upstreams, pending in ((True, pending_up), (False, pending_down)):
        for family, changes in pending.items():
            announced = tuple(prefix_to_str(family, p) for p, path in changes.items() if path)
            withdrawn = tuple(prefix_to_str(family, p) for p, path in changes.items() if not path)
            if announced or withdrawn:
                yield RouteChange(to_upstreams, str(family), announced, withdrawn)


def conflict_seen(conflict: Conflict, prefix: str, reason: str) -> ConflictSeen:
    """A Loc-RIB's conflict as the watcher gets it."""
    losers = tuple(p.source.name for p in conflict.losers)
    return ConflictSeen(prefix, str(conflict.family), conflict.best.source.name, losers, reason)
