"""What two OPENs agree on (RFC 4271 §4.2, 4760, 6793, 2918, 7313, 8654, 4724, 7911)."""

from __future__ import annotations

from dataclasses import dataclass

from bgpmux.wire import (
    ADD_PATH_RECEIVE,
    ADD_PATH_SEND,
    IPV4_UNICAST,
    CodecOptions,
    Family,
    GracefulRestart,
    Open,
)
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
    # Whether the peer's OPEN carried ADD-PATH at all (for the logs).
    peer_offered_add_path: bool
    options: CodecOptions

    @property
    def add_path_send(self) -> tuple[Family, ...]:
        """The families whose NLRI we send with path identifiers, in ``families``' order: we
        offered ADD-PATH send and the peer receive (RFC 7911 §4), both negotiated. We never
        offer receive, so we get none. (The codec's ``options.add_path_send``.)"""
        return tuple(f for f in self.families if f in self.options.add_path_send)

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


def _add_path_send(local: Open, peer: Open, families: tuple[Family, ...]) -> tuple[Family, ...]:
    """RFC 7911 §4: a family's NLRI carry path identifiers from us when our capability has the
    send bit and the peer's the receive bit for it (a family listed twice: the last counts)."""
    ours = {f: bits for f, bits in local.capabilities.add_path if bits & ADD_PATH_SEND}
    if not ours:
        return ()
    theirs = dict(peer.capabilities.add_path)
    return tuple(f for f in families if f in ours and theirs.get(f, 0) & ADD_PATH_RECEIVE)


def negotiate(local: Open, peer: Open) -> Negotiated:
    """Combine our OPEN with the peer's (hold time RFC 4271 §4.2, 4-octet AS RFC 6793 §3,
    extended message RFC 8654, ADD-PATH RFC 7911 §4). Never raises: the session checks the
    peer's OPEN first."""
    lc, pc = local.capabilities, peer.capabilities
    hold = min(local.hold_time, peer.hold_time)
    keepalive = max(hold // 3, 1) if hold > 0 else 0
    peer_families = set(_families(peer))
    families = tuple(dict.fromkeys(f for f in _families(local) if f in peer_families))
    asn4 = lc.four_octet_as is not None and pc.four_octet_as is not None
    extended = lc.extended_message and pc.extended_message
    max_len = MAX_EXTENDED_MESSAGE_LEN if extended else MAX_MESSAGE_LEN
    add_path = _add_path_send(local, peer, families)
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
        options=CodecOptions(asn4, max_len, frozenset(add_path)),
    )
