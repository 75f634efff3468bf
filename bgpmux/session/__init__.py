"""The RFC 4271 BGP state machine, sans-IO: bytes and ``now`` in; events, bytes, deadlines out."""

from .config import SessionConfig, local_open
from .events import (
    ConnectRequested,
    Event,
    RouteRefreshReceived,
    SessionDown,
    SessionEstablished,
    StateChanged,
    UpdateReceived,
)
from .negotiation import Negotiated, negotiate
from .notifications import cease_shutdown
from .session import Session
from .states import TRANSITIONS, DownReason, State
from .stats import SessionStats

__all__ = [
    "TRANSITIONS",
    "ConnectRequested",
    "DownReason",
    "Event",
    "Negotiated",
    "RouteRefreshReceived",
    "Session",
    "SessionConfig",
    "SessionDown",
    "SessionEstablished",
    "SessionStats",
    "State",
    "StateChanged",
    "UpdateReceived",
    "cease_shutdown",
    "local_open",
    "negotiate",
]
