"""``SessionFacts`` from what a session negotiated and how it last ended, pure: the names of the
negotiated capabilities, hold and keepalive times, the graceful-restart phrase, and the last
error in words. Used for client sessions, the native engine's upstreams and (through the OPENs
ExaBGP reports) the exabgp engine's."""

from __future__ import annotations

import dataclasses
import math

from bgpmux.wire import Notification
from bgpmux.wire.constants import IPV4_UNICAST, IPV6_UNICAST, CapabilityCode, Family
from bgpmux.wire.errors import ErrorCode, error_name

from .facts import SessionFacts
from .graceful import graceful_families
from .negotiation import Negotiated
from .states import DownReason

FAMILY_NAMES = {IPV4_UNICAST: "ipv4-unicast", IPV6_UNICAST: "ipv6-unicast"}


def family_name(family: Family) -> str:
    """``family`` as ``SessionFacts.capabilities`` names it ("ipv4-unicast", or "afi-A-safi-S"
    for a family bgpmux does not carry)."""
    return FAMILY_NAMES.get(family, f"afi-{family.afi}-safi-{family.safi}")


def capability_names(negotiated: Negotiated) -> tuple[str, ...]:
    """What both OPENs agree on, named as ``facts.CAPABILITY_NAMES`` and in its order, after
    the negotiated families (RFC 4760 §8). "graceful-restart" means the peer sent the
    capability and we offered ours (RFC 4724 §3); "graceful-notification" that both set the N
    bit (RFC 8538 §2); "add-path-send" that at least one family carries our path identifiers
    (RFC 7911 §4: we never offer receive)."""
    local, peer = negotiated.local_open.capabilities, negotiated.peer_open.capabilities
    held = {
        "route-refresh": negotiated.route_refresh,
        "enhanced-route-refresh": negotiated.enhanced_route_refresh,
        "4-octet-as": negotiated.asn4,
        "graceful-restart": negotiated.peer_graceful_restart is not None,
        "graceful-notification": negotiated.hard_reset,
        "add-path-send": bool(negotiated.add_path_send),
        "add-path-receive": False,
        "extended-message": negotiated.extended_message,
        # both OPENs carry it (bgpmux's codec keeps it among the unknown capabilities)
        "extended-next-hop": _has(local.unknown) and _has(peer.unknown),
    }
    families = tuple(family_name(f) for f in negotiated.families)
    return families + tuple(name for name, on in held.items() if on)


def _has(unknown: tuple[tuple[int, bytes], ...]) -> bool:
    return any(code == CapabilityCode.EXTENDED_NEXT_HOP for code, _value in unknown)


def graceful_phrase(negotiated: Negotiated | None) -> str:
    """The graceful-restart state of an Established session (RFC 4724 §3): "" when not
    negotiated; "negotiated, restart time T s" when the peer's capability lists a negotiated
    family (its routes are kept stale if it restarts); "helper" when it lists none (it only
    keeps ours: FRR's default)."""
    if negotiated is None or negotiated.peer_graceful_restart is None:
        return ""
    if graceful_families(negotiated):
        return f"negotiated, restart time {negotiated.peer_graceful_restart.restart_time} s"
    return "helper"


def stale_phrase(remaining: float) -> str:
    """The graceful-restart phrase of a session that is down while its routes are kept stale
    for ``remaining`` more seconds (RFC 4724 §4.2)."""
    return f"stale for {math.ceil(max(remaining, 0.0))} s"


def with_negotiated(
    facts: SessionFacts, negotiated: Negotiated | None, stale_left: float | None = None
) -> SessionFacts:
    """``facts`` with the capabilities, hold time, keepalive and graceful-restart phrase of
    ``negotiated`` (the session is Established); with those cleared when None, the
    graceful-restart phrase then saying how long the routes stay stale when ``stale_left``
    (seconds) is above 0 (RFC 4724 §4.2)."""
    if negotiated is None:
        graceful = stale_phrase(stale_left) if stale_left is not None and stale_left > 0 else ""
        return dataclasses.replace(
            facts, capabilities=(), hold_time=None, keepalive=None, graceful_restart=graceful
        )
    return dataclasses.replace(
        facts,
        capabilities=capability_names(negotiated),
        hold_time=negotiated.hold_time,
        keepalive=negotiated.keepalive_time,
        graceful_restart=graceful_phrase(negotiated),
    )


def notification_words(notification: Notification, received: bool) -> str:
    """ "sent Cease/Administrative Shutdown", "received Hold Timer Expired", ...: a NOTIFICATION
    in words (``Notification.describe``), with its direction."""
    return f"{'received' if received else 'sent'} {notification.describe()}"


def is_open_error(last_error: str) -> bool:
    """True when ``last_error`` (``SessionFacts.last_error``, as ``notification_words`` and
    ``down_words`` put it) is an OPEN Message Error NOTIFICATION (code 2, RFC 4271 §6.2), sent
    or received: bad peer AS, bad BGP identifier, unsupported capability or version,
    unacceptable hold time, role mismatch, authentication. The peer was reached and refused
    the session as configured: a configuration error, not a peer that is away."""
    major = error_name(ErrorCode.OPEN_MESSAGE, 0).partition("/")[0]
    return last_error.startswith((f"sent {major}/", f"received {major}/"))


def down_words(reason: DownReason, notification: Notification | None, detail: str = "") -> str:
    """Why a session ended, in words: the NOTIFICATION received or sent (``SessionDown``: a
    received one comes with ``NOTIFICATION_RECEIVED``), else the reason ("connection lost"),
    then ``detail`` in brackets when it says more."""
    if notification is not None:
        text = notification_words(notification, reason is DownReason.NOTIFICATION_RECEIVED)
    else:
        text = reason.value.replace("-", " ")
    return f"{text} ({detail})" if detail and detail not in text else text
