"""What two OPENs agree on (RFC 4271 §4.2, 4760, 6793, 2918, 7313, 8654, 4724, 7911)."""

from __future__ import annotations

from dataclasses import dataclass

from bgpmux.wire import IPV4_UNICAST, CodecOptions, Family, GracefulRestart, Open
from bgpmux.wire.constants import MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What both OPENs agree on; times in seconds. ``asn4`` and the capability flags hold only
    when both OPENs carry the capability; ``families`` are those both list (RFC 4760 §8).
    ``options`` is what the codec needs for this session."""

    peer_open: Open
    local_open: Open
    hold_time: int  # the smaller of both; 0 = neither keepalives nor hold timer
    keepalive_time: int  # hold_time // 3, at least 1 when hold_time > 0
    families: tuple[Family, ...]  # in our order
    asn4: bool
    route_refresh: bool
    enhanced_route_refresh: bool
    extended_message: bool
    # The peer's graceful-restart capability, only when we offered graceful restart too.
    peer_graceful_restart: GracefulRestart | None
    # We never send ADD-PATH, so path identifiers are never used; this is only for the logs.
    peer_offered_add_path: bool
    options: CodecOptions

    @property
    def hard_reset(self) -> bool:
        """Whether both graceful-restart capabilities set the N bit (RFC 8538 §2): then a
        NOTIFICATION keeps routes as stale unless it is a Cease/Hard Reset."""
        ours = self.local_open.capabilities.graceful_restart
        theirs = self.peer_graceful_restart
        return bool(ours and theirs and ours.notification and theirs.notification)


def _families(open_: Open) -> tuple[Family, ...]:
    # A speaker without any multiprotocol capability speaks IPv4 unicast only (RFC 4760 §8).
    return open_.capabilities.multiprotocol or (IPV4_UNICAST,)


def negotiate(local: Open, peer: Open) -> Negotiated:
    """Combine our OPEN with the peer's (hold time RFC 4271 §4.2, 4-octet AS RFC 6793 §3,
    extended message RFC 8654). Never raises: the session checks the peer's OPEN first."""
    lc, pc = local.capabilities, peer.capabilities
    hold = min(local.hold_time, peer.hold_time)
    keepalive = max(hold // 3, 1) if hold > 0 else 0
    peer_families = set(_families(peer))
    families = tuple(dict.fromkeys(f for f in _families(local) if f in peer_families))
    asn4 = lc.four_octet_as is not None and pc.four_octet_as is not None
    extended = lc.extended_message and pc.extended_message
    max_len = MAX_EXTENDED_MESSAGE_LEN if extended else MAX_MESSAGE_LEN
    return Negotiated(
        peer_open=peer,
        local_open=local,
        hold_time=hold,
        keepalive_time=keepalive,
        families=families,
        asn4=asn4,
        route_refresh=lc.route_refresh and pc.route_refresh,
        enhanced_route_refresh=lc.enhanced_route_refresh and pc.enhanced_route_refresh,
        extended_message=extended,
        peer_graceful_restart=pc.graceful_restart if lc.graceful_restart is not None else None,
        peer_offered_add_path=bool(pc.add_path),
        options=CodecOptions(asn4=asn4, max_message_len=max_len),
    )
