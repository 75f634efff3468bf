"""Graceful restart, the receiving side (RFC 4724 §4.2): which of a peer's routes outlive its
session, and for how long. Pure functions of what the OPENs negotiated and why the session ended.
"""

from __future__ import annotations

from bgpmux.wire import Family

from .negotiation import Negotiated
from .states import DownReason

# Session ends after which a peer that negotiated graceful restart keeps its routes as stale:
# the TCP connection went away without a NOTIFICATION (RFC 4724 §4.2), our hold timer expired
# (though we then send a NOTIFICATION), or the peer came back on a new connection while the old
# one still looked up.
GRACEFUL_REASONS = frozenset(
    {DownReason.CONNECTION_LOST, DownReason.HOLD_TIMER_EXPIRED, DownReason.PEER_RESTARTED}
)


def graceful_families(negotiated: Negotiated | None) -> frozenset[Family]:
    """The negotiated families the peer can restart gracefully for: those its graceful-restart
    capability lists (RFC 4724 §3). FRR's helper-only capability lists none, so its routes go
    at once when it drops. Empty without a negotiated capability."""
    if negotiated is None or negotiated.peer_graceful_restart is None:
        return frozenset()
    listed = {family for family, _forwarding in negotiated.peer_graceful_restart.families}
    return frozenset(listed & set(negotiated.families))


def stale_time_after(negotiated: Negotiated | None, reason: DownReason) -> int | None:
    """Seconds the peer's routes stay, marked stale, after its session ended for ``reason``: the
    restart time its capability gave (RFC 4724 §4.2). None: they go at once (no graceful
    restart negotiated, a restart time of 0, or an end that was not a restart)."""
    if reason not in GRACEFUL_REASONS or not graceful_families(negotiated):
        return None
    assert negotiated is not None and negotiated.peer_graceful_restart is not None
    return negotiated.peer_graceful_restart.restart_time or None
