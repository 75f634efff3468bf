"""The core's record of each peer: its channel (routes and import policy) and the state of its
session as the core sees it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from itertools import filterfalse
from operator import is_
from typing import Protocol

from ..policy.channels import ClientChannel, UpstreamChannel
from ..rib.paths import Path
from ..session.states import DownReason
from ..wire.constants import Family
from ..wire.messages import CodecOptions, Notification
from ..wire.prefix import Prefix


class ClientLink(Protocol):
    """The core's handle on an Established client session (the transport provides it)."""

    @property
    def options(self) -> CodecOptions:
        """The codec options the session negotiated (4-octet ASNs, maximum message length)."""

    @property
    def families(self) -> tuple[Family, ...]:
        """The address families the session negotiated."""

    def send(self, messages: list[bytes]) -> None:
        """Queue whole, encoded messages for the client."""

    def shutdown(self, notification: Notification, reason: DownReason) -> None:
        """End the session with ``notification``; ``reason`` is recorded as why it ended."""

    def send_route_refresh(self, family: Family, subtype: int = 0) -> bool:
        """Queue a ROUTE-REFRESH of ``subtype`` (1 BoRR, 2 EoRR: RFC 7313 §4) for ``family``
        behind what was sent before; False, with nothing sent, where the session did not
        negotiate it."""


@dataclass(eq=False)
class ClientPeer:
    """The core's record of one client: its channel, its link while the session is
    Established, when that began and when its last UPDATE of this session came (seconds,
    runner's clock), and how often it went down."""

    channel: ClientChannel
    link: ClientLink | None = None
    established_at: float | None = None
    last_update_at: float | None = None
    flaps: int = 0

    @property
    def name(self) -> str:
        """The client's name."""
        return self.channel.name

    def note_update(self, now: float) -> None:
        """An UPDATE (End-of-RIB included) came from the client at ``now``."""
        self.last_update_at = now

    @property
    def receives_upstream_routes(self) -> bool:
        """Whether the client is Established and configured to receive the upstreams' routes."""
        return self.link is not None and self.channel.policy.receive_upstream_routes


@dataclass(eq=False)
class UpstreamPeer:
    """The core's record of one upstream: its channel, whether its session is up, the
    families that session negotiated, whether it was sent End-of-RIB, the families it sent
    End-of-RIB for, times (seconds, runner's clock) and how often it went down."""

    channel: UpstreamChannel
    up: bool = False
    families: tuple[Family, ...] = ()
    eor_sent: bool = False
    eor_received: set[Family] = field(default_factory=set)
    established_at: float | None = None
    last_update_at: float | None = None
    flaps: int = 0

    @property
    def name(self) -> str:
        """The upstream's name."""
        return self.channel.name


_ALL_SAME = object()


def group_by_path(
    changes: Mapping[Prefix, Path | None],
) -> tuple[dict[Path, list[Prefix]], list[Prefix]]:
    """Prefixes grouped by their (interned) path, and those withdrawn (path None).

    ``changes`` is a dict or a ``BestView``: a dict's ``values()`` is a view, a ``BestView``'s
    an iterator (one pass). The one-path check works with both: it takes the first value, then
    compares the rest (the view starts again, first included; the iterator goes on after it),
    and reads ``changes`` itself again, never the values it consumed."""
    # A bulk change is usually one path (or all withdrawals): checked in C, by identity and
    # without a copy, it needs no per-prefix step in Python.
    values = changes.values()
    first = next(iter(values), _ALL_SAME)  # a view (dict) or an iterator (``BestView``)
    if first is not _ALL_SAME and (
        next(filterfalse(partial(is_, first), values), _ALL_SAME) is _ALL_SAME
    ):
        if first is None:
            return {}, list(changes)
        assert isinstance(first, Path)
        return {first: list(changes)}, []
    by_path: dict[Path, list[Prefix]] = defaultdict(list)
    withdrawn: list[Prefix] = []
    for prefix, path in changes.items():
        if path is None:
            withdrawn.append(prefix)
        else:
            by_path[path].append(prefix)
    return by_path, withdrawn


def by_family(routes: Iterable[tuple[Family, Prefix]]) -> dict[Family, list[Prefix]]:
    """(family, prefix) pairs as the prefixes of each family, in order."""
    grouped: dict[Family, list[Prefix]] = defaultdict(list)
    for family, prefix in routes:
        grouped[family].append(prefix)
    return grouped
