"""Listeners for clients: match each incoming connection to a configured client, run its session,
and tell the core what happened. Several clients may share a listen address when each names a
``peer_address``; a connection that matches no client is refused with Cease/Connection Rejected.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from ..config import Client, Config
from ..core.events import ClientDown, ClientEstablished, ClientRouteRefresh, ClientUpdate
from ..core.runner import CoreRunner
from ..logs import peer_logger
from ..session import DownReason, SessionStats, State, cease_shutdown
from ..session.events import (
    RouteRefreshReceived,
    SessionDown,
    SessionEstablished,
    StateChanged,
    UpdateReceived,
)
from ..session.graceful import graceful_families, stale_time_after
from ..wire.errors import CeaseSubcode, ErrorCode
from ..wire.messages import Notification, encode_notification
from .connection import BGPConnection
from .profiles import client_session_config

log = logging.getLogger("bgpmux.transport")


@dataclass
class ClientSessionInfo:
    """A snapshot of one client's session: ``established_at`` in seconds on the loop's clock,
    ``stats`` the current session's ``SessionStats`` (None before any connection)."""

    name: str
    state: State
    peer_ip: str | None
    established_at: float | None
    stats: Any


class ClientServer:
    """Every client listener; reports the clients' sessions to the core through ``runner``."""

    def __init__(self, config: Config, runner: CoreRunner) -> None:
        self.config = config
        self.runner = runner
        self.by_listen: dict[str, list[Client]] = {}
        for client in config.clients:
            self.by_listen.setdefault(str(client.listen), []).append(client)
        self.servers: list[asyncio.base_events.Server] = []
        self.current: dict[str, BGPConnection] = {}  # client name -> its session's connection
        self.takeovers: dict[str, BGPConnection] = {}  # a restarted client's new connection
        self.established_at: dict[str, float] = {}
        self.finished: dict[str, SessionStats] = {}  # counters of a client's closed sessions
        self.refused = 0

    async def start(self) -> None:
        """Bind one listener per distinct ``listen`` endpoint; raises OSError when one cannot
        be bound."""
        loop = asyncio.get_running_loop()
        for listen, clients in self.by_listen.items():
            endpoint = clients[0].listen
            host, port = str(endpoint.host), endpoint.port
            server = await loop.create_server(
                functools.partial(_Accepting, self, clients), host, port, reuse_address=True
            )
            self.servers.append(server)
            log.info("listening on %s for %s", listen, ", ".join(c.name for c in clients))

    async def stop(self, message: str = "bgpmux shutting down") -> None:
        """Stop listening and end every session with Cease/Administrative Shutdown carrying
        ``message`` (RFC 8203); waits up to 1 s for the NOTIFICATIONs to leave."""
        for server in self.servers:
            server.close()
        for conn in list(self.current.values()):
            conn.shutdown(cease_shutdown(message))
        for _ in range(20):  # give the NOTIFICATIONs a moment to leave
            if all(c.closed for c in self.current.values()):
                break
            await asyncio.sleep(0.05)
        for server in self.servers:
            await server.wait_closed()

    def sessions(self) -> list[ClientSessionInfo]:
        """One snapshot per configured client, in config order."""
        out = []
        for client in self.config.clients:
            conn = self.current.get(client.name)
            out.append(
                ClientSessionInfo(
                    name=client.name,
                    state=conn.session.state if conn and not conn.closed else State.IDLE,
                    peer_ip=conn.peer_ip if conn else None,
                    established_at=self.established_at.get(client.name),
                    stats=conn.session.stats if conn else None,
                )
            )
        return out

    def totals(self, name: str) -> SessionStats:
        """A client's message counters over all its sessions since start."""
        total = self.finished.get(name, SessionStats()).snapshot()
        conn = self.current.get(name)
        if conn is not None and not conn.closed:
            add_stats(total, conn.session.stats)
        return total

    # --------------------------------------------------------------------- accepting

    def match(self, clients: list[Client], peer_ip: str) -> Client | None:
        """The client a connection from ``peer_ip`` belongs to: the one naming that
        ``peer_address``, else the only one naming none; None when there is no such client."""
        for client in clients:
            if client.peer_address is not None and str(client.peer_address) == peer_ip:
                return client
        unnamed = [c for c in clients if c.peer_address is None]
        return unnamed[0] if len(unnamed) == 1 else None

    def admit(self, client: Client, conn: BGPConnection) -> Notification | None:
        """Collision handling (RFC 4271 §6.8, RFC 4724 §4.2) for a new connection of a client:
        the NOTIFICATION that refuses ``conn``, or None when it is admitted."""
        existing = self.current.get(client.name)
        if existing is not None and not existing.closed:
            state = existing.session.state
            negotiated = existing.session.negotiated
            if state is State.ESTABLISHED:
                if graceful_families(negotiated):
                    # RFC 4724 §4.2: the client restarted. The old session is given up only
                    # once the new one is Established, so a stray connection cannot flap it.
                    conn.log.info("new connection while established: the client may have restarted")
                    self.takeovers[client.name] = conn
                    return None
                else:
                    return Notification(
                        ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION
                    )
            else:
                existing.shutdown(
                    Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION),
                    DownReason.COLLISION,
                )
        self.current[client.name] = conn
        return None

    def _client_gone(self, name: str, conn: BGPConnection, reason: DownReason) -> None:
        """Tell the core the client's session ended, and whether its routes may stay stale."""
        self.established_at.pop(name, None)
        negotiated = conn.session.negotiated
        stale_time = stale_time_after(negotiated, reason)
        self.runner.submit(ClientDown(name, stale_time, graceful_families(negotiated)))

    # --------------------------------------------------------------------- events

    def on_event(self, conn: BGPConnection, event: object) -> None:
        """A session event of ``conn``, turned into core events (and pausing while the core
        is congested)."""
        name = conn.session.config.peer_name
        runner = self.runner
        now = conn.loop.time()
        if isinstance(event, UpdateReceived):
            runner.submit(ClientUpdate(name, event.update))
            if runner.congested():
                conn.pause_reading()
                runner.when_drained(conn.resume_reading)
        elif isinstance(event, SessionEstablished):
            negotiated = event.negotiated
            if self.takeovers.get(name) is conn:
                del self.takeovers[name]
                old = self.current.get(name)
                if old is not None and not old.closed:
                    self._client_gone(name, old, DownReason.PEER_RESTARTED)
                    old.abort()
                self.current[name] = conn
            self.established_at[name] = now
            gr = bool(graceful_families(negotiated))
            conn.log.info(
                "session established (hold %ds, families %s%s%s)",
                negotiated.hold_time,
                ", ".join(str(f) for f in negotiated.families),
                ", graceful restart" if gr else "",
                ", ADD-PATH declined" if negotiated.peer_offered_add_path else "",
            )
            runner.submit(ClientEstablished(name, conn, gr))
        elif isinstance(event, SessionDown):
            add_stats(self.finished.setdefault(name, SessionStats()), conn.session.stats)
            was_up = name in self.established_at and self.current.get(name) is conn
            detail = f" ({event.detail})" if event.detail else ""
            notification = f": {event.notification.describe()}" if event.notification else ""
            conn.log.warning(
                "session down: %s%s%s", event.reason.name.lower(), notification, detail
            )
            if self.takeovers.get(name) is conn:
                del self.takeovers[name]
            if was_up:
                self._client_gone(name, conn, event.reason)
        elif isinstance(event, RouteRefreshReceived):
            runner.submit(ClientRouteRefresh(name))
        elif isinstance(event, StateChanged):
            conn.log.debug("state %s -> %s", event.old.name, event.new.name)


def add_stats(total: SessionStats, more: SessionStats) -> None:
    """Add ``more``'s counters into ``total``, in place."""
    for mine, theirs in (
        (total.messages_sent, more.messages_sent),
        (total.messages_received, more.messages_received),
    ):
        for kind, count in theirs.items():
            mine[kind] = mine.get(kind, 0) + count
    for mine_n, theirs_n in (
        (total.notifications_sent, more.notifications_sent),
        (total.notifications_received, more.notifications_received),
    ):
        for key, count in theirs_n.items():
            mine_n[key] = mine_n.get(key, 0) + count
    total.established += more.established


class _Accepting(asyncio.Protocol):
    """The listener's protocol: finds the client, then hands everything to its ``BGPConnection``."""

    def __init__(self, server: ClientServer, clients: list[Client]) -> None:
        self.server = server
        self.clients = clients
        self.conn: BGPConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        peer_ip = peer[0] if peer else "?"
        client = self.server.match(self.clients, peer_ip)
        if client is None:
            self.server.refused += 1
            log.warning("refused a BGP connection from %s: no client configured for it", peer_ip)
            transport.write(
                encode_notification(Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_REJECTED))
            )
            transport.close()
            return
        logger = peer_logger(client.name, "client")
        session_config = client_session_config(self.server.config, client)
        conn = BGPConnection(session_config, self.server.on_event, logger)
        refusal = self.server.admit(client, conn)
        if refusal is not None:
            logger.warning("refused a second connection from %s: already established", peer_ip)
            transport.write(encode_notification(refusal))
            transport.close()
            return
        self.conn = conn
        conn.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn.connection_lost(exc)
