"""What a ``Session`` tells its owner, as immutable values (popped with ``next_event``)."""

from __future__ import annotations

from dataclasses import dataclass

from bgpmux.wire import Notification, RouteRefresh, Update

from .negotiation import Negotiated
from .states import DownReason, State


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The session moved from ``old`` to ``new`` (a key of ``TRANSITIONS``)."""

    old: State
    new: State


@dataclass(frozen=True, slots=True)
class SessionEstablished:
    """The peer's KEEPALIVE arrived in OPEN_CONFIRM: ESTABLISHED with ``negotiated``."""

    negotiated: Negotiated


@dataclass(frozen=True, slots=True)
class UpdateReceived:
    """An UPDATE decoded in ESTABLISHED; it may be treat-as-withdraw (RFC 7606)."""

    update: Update


@dataclass(frozen=True, slots=True)
class RouteRefreshReceived:
    """A ROUTE-REFRESH for a family we advertised, of a subtype we offered (RFC 2918, 7313)."""

    message: RouteRefresh


@dataclass(frozen=True, slots=True)
class SessionDown:
    """The session went to IDLE: why, the NOTIFICATION involved, and text for the logs."""

    reason: DownReason
    # The one we sent or received; after ``stop`` without a connection, the one not sent.
    notification: Notification | None
    detail: str


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """Active role: the glue should dial the peer now."""


Event = (
    StateChanged
    | SessionEstablished
    | UpdateReceived
    | RouteRefreshReceived
    | SessionDown
    | ConnectRequested
)
