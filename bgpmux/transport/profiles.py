"""What bgpmux offers each peer in its OPEN: the one place a ``SessionConfig`` is built from the
configuration, for the client listeners and for the native engine's upstream sessions."""

from __future__ import annotations

from ..config import Client, Config, Upstream
from ..session import SessionConfig
from ..wire.constants import SUPPORTED_FAMILIES, Family

# Offered to clients: graceful restart (so they may restart gracefully; RFC 4724 §3 wants both
# sides to advertise it) with this restart time, in seconds: how long a client that receives
# upstream routes keeps them while bgpmux restarts.
CLIENT_RESTART_TIME = 120
CONNECT_RETRY_TIME = 5.0  # seconds between dials to an upstream (the session's connect-retry)
# Seconds a client's new connection may take to send its OPEN. Local speakers send it at once;
# RFC 4271's 4 minutes would let idle connections pile up on a listener.
CLIENT_OPEN_HOLD_TIME = 30.0
TAKEOVER_OPEN_HOLD_TIME = 10.0  # the same, for a connection that may replace an Established one


def client_session_config(
    config: Config, client: Client, open_hold_time: float = CLIENT_OPEN_HOLD_TIME
) -> SessionConfig:
    """Passive, iBGP or eBGP as the client's AS says, both unicast families, graceful restart,
    route refresh and extended messages (so one oversized route costs that route, not the
    session: it is refused at export, RFC 8654), ADD-PATH send when ``client.add_path``
    (every upstream's path to a client that can receive several, RFC 7911), and a router id
    that differs from the client's (``Config.client_router_id``). ``open_hold_time``: seconds
    to wait for the client's OPEN.

    Graceful restart (RFC 4724 §3, with RFC 8538's N bit): a client that receives upstream
    routes gets every family with its forwarding bit, so it keeps those routes while bgpmux
    restarts and redials on its own. A client that receives none gets a helper-only
    capability (no family): it has nothing of ours to keep, and a speaker that saw families
    would wait passively for the restarting side to dial (FRR's "NSF passive"), which bgpmux
    never does."""
    return SessionConfig(
        local_asn=config.node.asn,
        router_id=str(config.client_router_id(client)),
        peer_asn=client.asn,
        peer_name=client.name,
        passive=True,
        hold_time=client.hold_time,
        families=SUPPORTED_FAMILIES,
        graceful_restart_time=CLIENT_RESTART_TIME,
        graceful_restart_helper_only=not client.receive_upstream_routes,
        graceful_notification=True,
        route_refresh=True,
        extended_message=True,
        add_path_send=client.add_path,
        open_hold_time=open_hold_time,
    )


def upstream_session_config(
    config: Config, upstream: Upstream, families: tuple[Family, ...]
) -> SessionConfig:
    """Active (bgpmux dials, every ``CONNECT_RETRY_TIME`` seconds until it is up), the node's
    AS and router id, ``families``, graceful restart when ``upstream.graceful_restart`` is set
    (with RFC 8538's N bit), no extended messages (4096 octets is what every ToR takes)."""
    return SessionConfig(
        local_asn=config.node.asn,
        router_id=str(config.node.router_id),
        peer_asn=upstream.asn,
        peer_name=upstream.name,
        passive=False,
        hold_time=upstream.hold_time,
        connect_retry_time=CONNECT_RETRY_TIME,
        families=families,
        graceful_restart_time=upstream.graceful_restart or None,
        graceful_notification=True,
        route_refresh=True,
        extended_message=False,
    )
