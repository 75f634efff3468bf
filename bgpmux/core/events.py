"""What the core is told, as typed, frozen values (in the manner of aioquic's events and
GoBGP's typed FSM messages). Sessions, engines and the API build them; the runner queues them
and the core's ``handle`` takes them one at a time, with the time they were submitted.

Requests (``Reconfigure``, ``RoutesQuery``, ``PeersQuery``) get a result back from ``handle``;
the other events return None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.messages import Update
from ..wire.prefix import Prefix

if TYPE_CHECKING:
    from ..config import Config
    from .peers import ClientLink
    from .reload import Plan


# ---------------------------------------------------------------------------- clients


@dataclass(frozen=True, slots=True, eq=False)
class ClientEstablished:
    """A client's session reached Established; ``link`` is how the core sends to it.
    ``graceful_restart``: the client can restart gracefully (RFC 4724), so it will send
    End-of-RIB and its stale routes wait for it."""

    client: str
    link: ClientLink
    graceful_restart: bool


@dataclass(frozen=True, slots=True)
class ClientUpdate:
    """An UPDATE the client sent (End-of-RIB included)."""

    client: str
    update: Update


@dataclass(frozen=True, slots=True)
class ClientRouteRefresh:
    """A ROUTE-REFRESH from the client, for ``family`` (None: every family it negotiated).
    ``subtype`` 0 asks for our routes again (RFC 2918); 1 (BoRR) and 2 (EoRR) frame the
    client's own re-advertisement (RFC 7313 §4)."""

    client: str
    family: Family | None = None
    subtype: int = 0


@dataclass(frozen=True, slots=True)
class ClientDown:
    """The client's session ended. With ``stale_time`` (seconds) it may come back gracefully:
    its routes of ``stale_families`` (None: all) stay, stale, that long (RFC 4724 §4.2)."""

    client: str
    stale_time: float | None = None
    stale_families: frozenset[Family] | None = None


# ---------------------------------------------------------------------------- upstreams


@dataclass(frozen=True, slots=True)
class UpstreamEstablished:
    """The engine's session to ``upstream`` reached Established: the core sends it the whole
    table, then End-of-RIB once the clients have synced. ``stale_kept``: the families whose
    routes kept stale since the session dropped may wait for the upstream's End-of-RIB (RFC
    4724 §4.2, see ``session.graceful.stale_kept_on_return``); the others go at once. None:
    all of them wait. ``families``: those the session negotiated (None: every family of the
    node); the core sends nothing of another. ``table_first``: the engine wants the table
    before it opens the session (gobgpd), so the session is not up yet: its own table is not
    waited for (initial sync) until the engine reports it established again without it."""

    upstream: str
    stale_kept: frozenset[Family] | None = None
    families: tuple[Family, ...] | None = None
    table_first: bool = False


@dataclass(frozen=True, slots=True)
class UpstreamDown:
    """The engine's session to ``upstream`` ended. With ``stale_time`` (seconds) the upstream
    may restart gracefully (RFC 4724 §4.2, bgpmux the receiving speaker): its routes of
    ``stale_families`` (None: all) stay, stale, that long or until its End-of-RIB."""

    upstream: str
    stale_time: float | None = None
    stale_families: frozenset[Family] | None = None


@dataclass(frozen=True, slots=True)
class UpstreamRoutes:
    """``prefixes`` announced by ``upstream`` with one attribute set and next hop."""

    upstream: str
    family: Family
    attributes: PathAttributes
    next_hop: bytes
    prefixes: Sequence[Prefix]


@dataclass(frozen=True, slots=True)
class UpstreamWithdrawn:
    """``prefixes`` of ``family`` withdrawn by ``upstream``."""

    upstream: str
    family: Family
    prefixes: Sequence[Prefix]


@dataclass(frozen=True, slots=True)
class UpstreamEndOfRib:
    """``upstream`` has sent its whole table of ``family`` (RFC 4724 §2)."""

    upstream: str
    family: Family


@dataclass(frozen=True, slots=True)
class UpstreamRouteRefresh:
    """A ROUTE-REFRESH from ``upstream`` for ``family``: ``subtype`` 0 asks for our routes
    again (RFC 2918); 1 (BoRR) and 2 (EoRR) frame its own re-advertisement (RFC 7313 §4)."""

    upstream: str
    family: Family
    subtype: int = 0


UPSTREAM_EVENTS = (
    UpstreamEstablished,
    UpstreamDown,
    UpstreamRoutes,
    UpstreamWithdrawn,
    UpstreamEndOfRib,
    UpstreamRouteRefresh,
)
"""The events an engine reports about one upstream (``upstream``: its name)."""


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True, eq=False)
class Reconfigure:
    """A new, validated configuration. Result: ``list[str]``, the changes that need a restart
    (not applied); client policies apply at once. ``plan``: ``reload.plan`` of the running
    configuration and ``config``, as the daemon computed it for the listeners too (None: the
    core computes it). Raising out of it is a bug, the core then half changed."""

    config: Config
    plan: Plan | None = None


@dataclass(frozen=True, slots=True)
class RoutesQuery:
    """Result: ``{"routes": [row, ...]}`` (plain data, as the API returns it; a row is the dict
    of ``views.route_view``): a client's Adj-RIB-In with ``client`` (each route marked
    ``stale`` and ``best``, then the prefixes it had refused, ``reason`` set), what an upstream
    sent with ``received_from`` (then what its import policy refused), every client's refused
    prefixes with ``rejected`` alone, otherwise the routes exported to each upstream (only to
    ``upstream`` when given), attributes as sent.
    ``client`` wins over ``received_from``; ``{"error": ...}`` for an unknown name. ``keep``:
    only the rows it passes are kept (a filter applied as rows are made, so that a narrow query
    of a large table does not hold every row at once)."""

    client: str | None = None
    received_from: str | None = None
    upstream: str | None = None
    rejected: bool = False
    keep: Callable[[dict[str, Any]], bool] | None = None


@dataclass(frozen=True, slots=True)
class PeersQuery:
    """Result: ``dict[str, dict[str, Any]]``, the core's counts per peer name (see
    ``views.peer_counts``)."""


Event = (
    ClientEstablished
    | ClientUpdate
    | ClientRouteRefresh
    | ClientDown
    | UpstreamEstablished
    | UpstreamDown
    | UpstreamRoutes
    | UpstreamWithdrawn
    | UpstreamEndOfRib
    | UpstreamRouteRefresh
    | Reconfigure
    | RoutesQuery
    | PeersQuery
)
