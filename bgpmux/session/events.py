"""What a ``Session`` tells its owner, as immutable values (popped with ``next_event``)."""

from __future__ import annotations

from dataclasses import dataclass

from bgpmux.wire import Notification, RouteRefresh, Update

from .negotiation import Negotiated
from .states import DownReason, State


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class SessionEstablished:
    negotiated: Negotiated


@dataclass(frozen=True, slots=True)
class UpdateReceived:
    update: Update


@dataclass(frozen=True, slots=True)
class RouteRefreshReceived:
    message: RouteRefresh


@dataclass(frozen=True, slots=True)
class SessionDown:
    reason: DownReason
    notification: Notification | None  # the one we sent or received, if any
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
