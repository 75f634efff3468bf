"""Graceful restart, both sides, as pure functions of what the OPENs negotiated.

- The receiving side (RFC 4724 §4.2, RFC 8538 §4): which of a peer's routes outlive its
  session, and for how long, given why the session ended.
- The restarting side (RFC 4724 §4.1, RFC 8538 §3): how we end a session when bgpmux itself
  goes away (SIGTERM), so that the peer keeps what it learned from us.
"""

from __future__ import annotations

from collections.abc import Iterable

from bgpmux.wire import CeaseSubcode, ErrorCode, Family, GracefulRestart, Notification

from .negotiation import Negotiated
from .states import DownReason

# Session ends after which a peer that negotiated graceful restart keeps its routes as stale:
# the TCP connection went away without a NOTIFICATION (RFC 4724 §4.2), our hold timer expired
# (though we then send a NOTIFICATION), or the peer came back on a new connection while the old
# one still looked up.
GRACEFUL_REASONS = frozenset(
    {DownReason.CONNECTION_LOST, DownReason.HOLD_TIMER_EXPIRED, DownReason.PEER_RESTARTED}
)

# Seconds a peer's stale routes may wait for its End-of-RIB once its session is back, client
# or upstream: the usual stale-path time (FRR's and Cisco's default). Long enough for a ToR
# with a full table to send it, short enough that a route the peer no longer has does not
# linger for long if its End-of-RIB never comes.
STALE_PATH_TIME = 360.0


def graceful_families(negotiated: Negotiated | None) -> frozenset[Family]:
    """The negotiated families the peer can restart gracefully for: those its graceful-restart
    capability lists (RFC 4724 §3). FRR's helper-only capability lists none, so its routes go
    at once when it drops. Empty without a negotiated capability."""
    if negotiated is None or negotiated.peer_graceful_restart is None:
        return frozenset()
    listed = {family for family, _forwarding in negotiated.peer_graceful_restart.families}
    return frozenset(listed & set(negotiated.families))


def is_hard_reset(notification: Notification) -> bool:
    """Whether ``notification`` is a Cease/Hard Reset (RFC 8538 §3)."""
    return notification.code == ErrorCode.CEASE and notification.subcode == CeaseSubcode.HARD_RESET


def ended_gracefully(
    negotiated: Negotiated | None, reason: DownReason, notification: Notification | None
) -> bool:
    """Whether a session that ended for ``reason``, with ``notification`` sent or received
    (None: none), ended the graceful way. Without RFC 8538's N bit on both sides: only the
    ``GRACEFUL_REASONS``. With it (RFC 8538 §4): also any NOTIFICATION, sent or received, other
    than Cease/Hard Reset; a Hard Reset never is."""
    if negotiated is not None and negotiated.hard_reset and notification is not None:
        return not is_hard_reset(notification)
    return reason in GRACEFUL_REASONS


def stale_time_after(
    negotiated: Negotiated | None,
    reason: DownReason,
    notification: Notification | None = None,
) -> int | None:
    """Seconds the peer's routes stay, marked stale, after its session ended for ``reason``
    with ``notification`` sent or received: the restart time its capability gave (RFC 4724
    §4.2). None: they go at once (no graceful restart negotiated, a restart time of 0, or an
    end that was not graceful: see ``ended_gracefully``)."""
    if not ended_gracefully(negotiated, reason, notification):
        return None
    if not graceful_families(negotiated):
        return None
    assert negotiated is not None and negotiated.peer_graceful_restart is not None
    return negotiated.peer_graceful_restart.restart_time or None


def peer_keeps_our_routes(negotiated: Negotiated | None) -> bool:
    """Whether the peer keeps what it learned from us when we go away gracefully (RFC 4724
    §4.2, the peer as receiving speaker): it sent a graceful-restart capability (a helper-only
    one is enough) and ours listed at least one negotiated family."""
    if negotiated is None or negotiated.peer_graceful_restart is None:
        return False
    ours = negotiated.local_open.capabilities.graceful_restart
    if ours is None:
        return False
    listed = {family for family, _forwarding in ours.families}
    return bool(listed & set(negotiated.families))


def shutdown_notification(
    negotiated: Negotiated | None, cease: Notification
) -> Notification | None:
    """What to send when bgpmux itself stops (SIGTERM); ``cease`` is our Cease (Administrative
    Shutdown, never a Hard Reset). None (close TCP without a NOTIFICATION, RFC 4724 §4.1) when
    the peer keeps our routes and RFC 8538's N bit was not negotiated; ``cease`` when it was
    (the peer keeps our routes all the same, RFC 8538 §4), and when the peer keeps nothing
    anyway (no graceful restart, or no family listed in ours), so it learns at once that we
    are gone."""
    if is_hard_reset(cease):
        raise ValueError("a Hard Reset is never a graceful shutdown")
    if peer_keeps_our_routes(negotiated) and not (negotiated and negotiated.hard_reset):
        return None
    return cease


# ---------------------------------------------------------------- from the capability alone
# For engines that see the peer's graceful-restart capability but no ``Negotiated`` (ExaBGP
# reports the peer's OPEN and why a session ended, as text).


def stale_window(
    capability: GracefulRestart | None, families: Iterable[Family], reason: DownReason
) -> tuple[int | None, frozenset[Family]]:
    """(seconds, families) for which a dropped peer's routes stay, marked stale (RFC 4724
    §4.2): the restart time of ``capability`` (the peer's, received on the session that
    ended; None when we offered no graceful restart) and the families of ``families`` (those
    the session carried) it lists. (None, empty) when its routes go at once: no capability,
    no family listed, a restart time of 0, or an end that was not a restart."""
    if capability is None or reason not in GRACEFUL_REASONS:
        return None, frozenset()
    listed = {family for family, _forwarding in capability.families} & set(families)
    if not listed or not capability.restart_time:
        return None, frozenset()
    return capability.restart_time, frozenset(listed)


def stale_kept_on_return(
    capability: GracefulRestart | None, families: Iterable[Family]
) -> frozenset[Family]:
    """A peer whose routes were kept stale is back: the families of ``families`` whose stale
    routes may wait for its End-of-RIB, after the graceful-restart ``capability`` of its new
    session (None: it sent none, or we offered none). RFC 4724 §4.2 removes them at once for a
    family the capability does not list, and for one whose forwarding-state (F) bit is clear.
    The F bit is heeded only when the peer says it restarted (the R bit): a peer that did not
    restart (our side or the path failed) clears F but kept forwarding all along, so its stale
    routes wait for its End-of-RIB as well."""
    if capability is None:
        return frozenset()
    wanted = set(families)
    return frozenset(
        family
        for family, forwarding in capability.families
        if family in wanted and (forwarding or not capability.restarting)
    )


def restart_note(capability: GracefulRestart | None) -> str:
    """Words for the log line of an Established session: what the peer's graceful-restart
    capability says of a restart it went through (RFC 4724 §3: the R bit, and the F bit per
    family); empty when it says it did not restart."""
    if capability is None or not capability.restarting:
        return ""
    kept = ", ".join(str(family) for family, forwarding in capability.families if forwarding)
    return f"the peer restarted (graceful restart), forwarding kept for: {kept or 'none'}"
