"""What ``bgpmux status PEER`` and the API show of a session beyond its state: the peer's
address and AS, what was negotiated in OPEN, and the last error. Plain data, filled by whoever
runs the session (the client listeners, an engine) and read at request time."""

from __future__ import annotations

from dataclasses import dataclass

# Names of negotiated capabilities, in the order ``capabilities`` lists them. Families come
# first, as "ipv4-unicast" / "ipv6-unicast"; then these (RFC in brackets).
CAPABILITY_NAMES = (
    "route-refresh",  # RFC 2918
    "enhanced-route-refresh",  # RFC 7313
    "4-octet-as",  # RFC 6793
    "graceful-restart",  # RFC 4724
    "graceful-notification",  # RFC 8538 N bit
    "add-path-send",  # RFC 7911, we send several paths
    "add-path-receive",  # RFC 7911, we receive several paths
    "extended-message",  # RFC 8654
    "extended-next-hop",  # RFC 8950
)


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """One session's identity and negotiated parameters, as of its last OPEN exchange.

    ``address``/``asn``: the peer's (configured; a client's source address once connected).
    ``local_address``: our end. ``capabilities``: negotiated, named as in CAPABILITY_NAMES
    plus the families; empty while not Established. ``hold_time``/``keepalive``: negotiated
    seconds (RFC 4271 §4.2), None while not Established. ``graceful_restart``: "" when not
    negotiated, else a short phrase ("negotiated, restart time 120 s", "helper",
    "stale for 118 s"). ``last_error``: the last NOTIFICATION sent or received, or
    connection error, in words ("sent Cease/Administrative Shutdown", "received Hold Timer
    Expired", "connect: Connection refused"); ``last_error_at`` its Unix time (seconds)."""

    address: str = ""
    asn: int | None = None
    local_address: str = ""
    capabilities: tuple[str, ...] = ()
    hold_time: int | None = None
    keepalive: int | None = None
    graceful_restart: str = ""
    last_error: str = ""
    last_error_at: float | None = None
