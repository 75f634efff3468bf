"""A session's configuration, checked once, and the OPEN it makes us send."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bgpmux.wire import (
    ADD_PATH_SEND,
    IPV4_UNICAST,
    IPV6_UNICAST,
    Capabilities,
    Family,
    GracefulRestart,
    Open,
)

from .timers import OPEN_SENT_HOLD_TIME

MAX_ASN = 0xFFFFFFFF
MAX_RESTART_TIME = 0x0FFF  # 12 bits (RFC 4724 §3)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One peer's session settings; times in seconds. Raises ValueError when a value is out of
    range (hold time 0 or 3..65535, RFC 4271 §4.2). ``route_refresh`` offers both RFC 2918 and
    RFC 7313; ``forbid_same_router_id`` also refuses our BGP identifier from another AS, which
    RFC 6286 §2.2 would allow."""

    local_asn: int
    router_id: str  # our BGP identifier, dotted IPv4
    peer_asn: int | None = None  # None accepts any AS
    peer_name: str = ""  # for the caller's logs only
    passive: bool = False  # True: we never dial
    hold_time: int = 90
    connect_retry_time: float = 5.0
    families: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)
    graceful_restart_time: int | None = None  # set: we offer graceful restart with this time
    # True: the capability lists no family (RFC 4724 §3): we are a helper only and the peer
    # keeps nothing of ours when we go; False: every family, forwarding state kept (F bit)
    graceful_restart_helper_only: bool = False
    restarting: bool = False  # the R bit of our graceful-restart capability
    # The N bit (RFC 8538): with the peer's, a NOTIFICATION other than Cease/Hard Reset keeps
    # routes as stale. Off: a NOTIFICATION ends the session and its routes.
    graceful_notification: bool = False
    route_refresh: bool = True
    extended_message: bool = False
    # ADD-PATH send for every family (RFC 7911 §4): the peer may take several paths per
    # prefix. Never receive: bgpmux takes one path per prefix from each peer.
    add_path_send: bool = False
    forbid_same_router_id: bool = True
    # RFC 4271 §8 suggests 4 minutes for the hold timer in OpenSent; a listener may ask for less.
    open_hold_time: float = OPEN_SENT_HOLD_TIME
    send_hold_time: float | None = None  # RFC 9687; None: max(480, twice the hold time)

    def __post_init__(self) -> None:
        if not 1 <= self.local_asn <= MAX_ASN:
            raise ValueError(f"local_asn {self.local_asn} is out of range")
        if self.peer_asn is not None and not 1 <= self.peer_asn <= MAX_ASN:
            raise ValueError(f"peer_asn {self.peer_asn} is out of range")
        try:
            rid = ipaddress.IPv4Address(self.router_id)
        except ValueError:
            raise ValueError(f"router_id {self.router_id!r} is not an IPv4 address") from None
        if int(rid) == 0:
            raise ValueError("router_id must not be 0.0.0.0")
        if self.hold_time != 0 and not 3 <= self.hold_time <= 0xFFFF:
            raise ValueError(f"hold_time {self.hold_time} must be 0 or 3..65535")
        if not self.connect_retry_time > 0:
            raise ValueError("connect_retry_time must be positive")
        if not self.open_hold_time > 0:
            raise ValueError("open_hold_time must be positive")
        if self.send_hold_time is not None and not self.send_hold_time > 0:
            raise ValueError("send_hold_time must be positive")
        if not self.families:
            raise ValueError("families must not be empty")
        grt = self.graceful_restart_time
        if grt is not None and not 0 <= grt <= MAX_RESTART_TIME:
            raise ValueError(f"graceful_restart_time {grt} must be 0..{MAX_RESTART_TIME}")


def local_open(config: SessionConfig) -> Open:
    """Our OPEN: 4-octet AS, one multiprotocol capability per family, route refresh (plain and
    enhanced), graceful restart (F bit set for every family, or no family at all when
    ``graceful_restart_helper_only``; the N bit of RFC 8538 when ``graceful_notification``),
    extended message and ADD-PATH send (never receive) when configured."""
    gr = None
    if config.graceful_restart_time is not None:
        gr = GracefulRestart(
            restart_time=config.graceful_restart_time,
            restarting=config.restarting,
            notification=config.graceful_notification,
            families=()
            if config.graceful_restart_helper_only
            else tuple((family, True) for family in config.families),
        )
    caps = Capabilities(
        multiprotocol=tuple(config.families),
        route_refresh=config.route_refresh,
        enhanced_route_refresh=config.route_refresh,
        four_octet_as=config.local_asn,
        graceful_restart=gr,
        extended_message=config.extended_message,
        add_path=tuple((f, ADD_PATH_SEND) for f in config.families) if config.add_path_send else (),
    )
    return Open(
        asn=config.local_asn,
        hold_time=config.hold_time,
        router_id=config.router_id,
        capabilities=caps,
    )
