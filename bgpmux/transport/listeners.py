"""Listeners for clients: match each incoming connection to a configured client, run its session,
and tell the core what happened.

Who may connect: a client that names a ``peer_address`` only from there; one that names none
only from the node's own addresses (loopback, ``node.address``, ``node.address_v6`` and any
other address of this host). Several clients may share a listen address when each names a
``peer_address``. A connection is refused with a NOTIFICATION, then closed:

* Cease/Connection Rejected: no client is configured for its source;
* the Cease the client was cut off with (Maximum Number of Prefixes Reached), while the client
  is held down after passing ``max_prefixes`` (``max_prefixes_restart``);
* Cease/Out of Resources: ``MAX_PENDING_PER_LISTENER`` connections on the listener are still
  before Established;
* Cease/Connection Collision Resolution: the client is Established without graceful restart.

Refusals are logged at most once per 10 s per cause, with the count held back.

A reload adds and removes clients live (``client_set``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import Client, Config
from ..core.events import ClientDown, ClientEstablished, ClientRouteRefresh, ClientUpdate
from ..core.runner import CoreRunner
from ..logs import Throttle, peer_logger
from ..session import DownReason, Negotiated, SessionStats, State, cease_shutdown
from ..session.describe import down_words, with_negotiated
from ..session.events import (
    RouteRefreshReceived,
    SessionDown,
    SessionEstablished,
    StateChanged,
    UpdateReceived,
)
from ..session.facts import SessionFacts
from ..session.graceful import graceful_families, stale_time_after
from ..session.idle_hold import IdleHold
from ..session.notifications import OUT_OF_RESOURCES
from ..wire.errors import CeaseSubcode, ErrorCode
from ..wire.messages import Notification, encode_notification
from .addresses import is_host_address as is_host_address  # re-exported
from .addresses import normalize_ip as normalize_ip
from .connection import BGPConnection
from .md5 import md5_keys, md5_listening_socket
from .profiles import CLIENT_OPEN_HOLD_TIME, TAKEOVER_OPEN_HOLD_TIME, client_session_config

log = logging.getLogger("bgpmux.transport")

MAX_PENDING_PER_LISTENER = 16  # connections before Established, per listen address
MIB = 1024 * 1024
CONNECTION_REJECTED = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_REJECTED)
COLLISION = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)


@dataclass
class ClientSessionInfo:
    """A snapshot of one client's session: ``established_at`` in seconds on the loop's clock,
    ``stats`` the current session's ``SessionStats`` (None before any connection), ``facts``
    its identity and negotiated parameters."""

    name: str
    state: State
    peer_ip: str | None
    established_at: float | None
    stats: Any
    facts: SessionFacts = field(default_factory=SessionFacts)


class ClientServer:
    """Every client listener; reports the clients' sessions to the core through ``runner``."""

    def __init__(self, config: Config, runner: CoreRunner) -> None:
        self.config = config
        self.runner = runner
        self.by_listen: dict[str, list[Client]] = {}
        for client in config.clients:
            self.by_listen.setdefault(str(client.listen), []).append(client)
        self.servers: dict[str, asyncio.base_events.Server] = {}  # by listen endpoint
        self.leaving: set[BGPConnection] = set()  # sessions of removed clients, unreported
        self.current: dict[str, BGPConnection] = {}  # client name -> its session's connection
        self.takeovers: dict[str, BGPConnection] = {}  # a restarted client's new connection
        self.established_at: dict[str, float] = {}
        self.finished: dict[str, SessionStats] = {}  # counters of a client's closed sessions
        self.refused = 0
        self.by_name = {client.name: client for client in config.clients}
        self.holds: dict[str, IdleHold] = {}  # clients held down after passing max_prefixes
        self.hold_notifications: dict[str, Notification] = {}  # what each was cut off with
        self.pending: dict[BGPConnection, str] = {}  # connections not yet up -> their listen
        self.node_addresses = {
            str(a) for a in (config.node.address, config.node.address_v6) if a is not None
        }
        self.throttle = Throttle()
        self.last_errors: dict[str, tuple[str, float]] = {}  # client -> (words, Unix time)
        self.stale_until: dict[str, float] = {}  # client -> loop time its routes stay stale

    async def start(self) -> None:
        """Bind one listener per distinct ``listen`` endpoint, with the TCP-MD5 keys of its
        clients; raises OSError when one cannot be bound or a password file read."""
        for listen, clients in self.by_listen.items():
            self.servers[listen] = await self.listen_on(listen, clients, clients)

    async def listen_on(
        self, listen: str, clients: list[Client], configured: list[Client]
    ) -> asyncio.base_events.Server:
        """A listener on ``listen`` accepting ``clients`` (the list is read at each
        connection), with the TCP-MD5 keys of ``configured``. Raises OSError."""
        loop = asyncio.get_running_loop()
        protocol = functools.partial(_Accepting, self, listen, clients)
        keys = md5_keys(configured)
        endpoint = configured[0].listen
        if keys:
            sock = md5_listening_socket(endpoint, keys)
            server = await loop.create_server(protocol, sock=sock)
        else:
            host, port = str(endpoint.host), endpoint.port
            server = await loop.create_server(protocol, host, port, reuse_address=True)
        signed = f" (TCP-MD5 from {', '.join(keys)})" if keys else ""
        names = ", ".join(c.name for c in configured)
        log.info("listening on %s for %s%s", listen, names, signed)
        return server

    async def stop(self, message: str = "bgpmux shutting down") -> None:
        """Stop listening and end every session, waiting up to 1 s for the connections to
        close. A client that keeps our routes across a restart (``shutdown_notification``:
        it negotiated graceful restart and we listed families) is closed the graceful way:
        without a NOTIFICATION, or with Cease/Administrative Shutdown where RFC 8538's N bit
        was negotiated. Every other session gets Cease/Administrative Shutdown carrying
        ``message`` (RFC 8203)."""
        for server in self.servers.values():
            server.close()
        cease = cease_shutdown(message)
        conns = {*self.current.values(), *self.takeovers.values(), *self.pending}
        for conn in conns:
            if not conn.closed:
                conn.shutdown_for_restart(cease)
        for _ in range(20):  # give the NOTIFICATIONs a moment to leave
            if all(c.closed for c in conns):
                break
            await asyncio.sleep(0.05)
        for server in self.servers.values():
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
                    facts=self.facts(client, conn),
                )
            )
        return out

    def facts(self, client: Client, conn: BGPConnection | None) -> SessionFacts:
        """``client``'s ``SessionFacts``: its source address once it connected (else its
        ``peer_address``), its configured AS, the listen address (our end of the connection
        once there is one), what its current session negotiated, its last error."""
        up = conn is not None and not conn.closed and conn.session.state is State.ESTABLISHED
        address = normalize_ip(conn.peer_ip) if conn and conn.peer_ip else None
        local = normalize_ip(conn.local_ip) if conn and conn.local_ip else None
        words, at = self.last_errors.get(client.name, ("", None))
        facts = SessionFacts(
            address=address or (str(client.peer_address) if client.peer_address else ""),
            asn=client.asn,
            local_address=local or str(client.listen.host),
            last_error=words,
            last_error_at=at,
        )
        stale_until = self.stale_until.get(client.name)
        stale_left = None
        if stale_until is not None:
            stale_left = stale_until - asyncio.get_running_loop().time()
        return with_negotiated(facts, conn.session.negotiated if up and conn else None, stale_left)

    def idle_hold(self, name: str, now: float) -> float:
        """Seconds the client stays held down after passing max_prefixes (``math.inf``: until
        a reload; 0: not held)."""
        hold = self.holds.get(name)
        return hold.remaining(now) if hold is not None else 0.0

    def totals(self, name: str) -> SessionStats:
        """A client's message counters over all its sessions since start."""
        total = self.finished.get(name, SessionStats()).snapshot()
        conn = self.current.get(name)
        if conn is not None and not conn.closed:
            total.add(conn.session.stats)
        return total

    # --------------------------------------------------------------------- accepting

    def match(self, clients: list[Client], peer_ip: str) -> Client | None:
        """The client a connection from ``peer_ip`` belongs to: the one naming that
        ``peer_address``, else the only one naming none if ``peer_ip`` is the node's own;
        None when there is no such client."""
        for client in clients:
            if client.peer_address is not None and str(client.peer_address) == peer_ip:
                return client
        unnamed = [c for c in clients if c.peer_address is None]
        if len(unnamed) == 1 and (peer_ip in self.node_addresses or is_host_address(peer_ip)):
            return unnamed[0]
        return None

    def screen(
        self, listen: str, clients: list[Client], peer_ip: str, now: float
    ) -> Client | Notification:
        """The client a new connection on ``listen`` from ``peer_ip`` belongs to, or the
        NOTIFICATION that refuses it (no client for that source, the client held down, too
        many connections before Established); refusals are counted and logged."""
        client = self.match(clients, peer_ip)
        if client is None:
            self.note_refusal(
                f"unknown {listen}",
                now,
                "refused a BGP connection from %s on %s: no client is configured for it "
                "(a client without peer_address accepts only this node's own addresses)",
                peer_ip,
                listen,
            )
            return CONNECTION_REJECTED
        held = self.idle_hold(client.name, now)
        if held:
            self.note_refusal(
                f"held {client.name}",
                now,
                "refused a connection from %s: held down %s after passing max_prefixes",
                peer_ip,
                "until a reload" if math.isinf(held) else f"for {held:.0f} s more",
                peer=client.name,
            )
            return self.hold_notifications.get(client.name, CONNECTION_REJECTED)
        if self.pending_on(listen) >= MAX_PENDING_PER_LISTENER:
            self.note_refusal(
                f"pending {listen}",
                now,
                "refused a connection from %s on %s: %d connections there are not yet Established",
                peer_ip,
                listen,
                MAX_PENDING_PER_LISTENER,
            )
            return OUT_OF_RESOURCES
        return client

    def pending_on(self, listen: str) -> int:
        """How many connections on ``listen`` are not yet Established."""
        return sum(1 for on in self.pending.values() if on == listen)

    def note_refusal(
        self, key: str, now: float, msg: str, *args: Any, peer: str | None = None
    ) -> None:
        """Count a refused connection; log ``msg % args`` at most once per 10 s per ``key``."""
        self.refused += 1
        held_back = self.throttle.allow(key, now)
        if held_back is None:
            return
        if held_back:
            msg += f" ({held_back} more like this not logged)"
        log.warning(msg, *args, extra={"peer": peer} if peer else None)

    def takeover_candidate(self, client: Client) -> bool:
        """Whether a new connection of ``client`` would be held as a possible graceful
        restart (RFC 4724 §4.2): its session is Established with graceful restart."""
        existing = self.current.get(client.name)
        return (
            existing is not None
            and not existing.closed
            and existing.session.state is State.ESTABLISHED
            and bool(graceful_families(existing.session.negotiated))
        )

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
                    # One candidate at a time: a newer one replaces it.
                    previous = self.takeovers.get(client.name)
                    if previous is not None and not previous.closed:
                        previous.shutdown(COLLISION, DownReason.COLLISION)
                    if self.throttle.allow(f"takeover {client.name}", conn.loop.time()) is not None:
                        conn.log.info(
                            "new connection while established: the client may have restarted"
                        )
                    self.takeovers[client.name] = conn
                    return None
                else:
                    return COLLISION
            else:
                existing.shutdown(COLLISION, DownReason.COLLISION)
        self.current[client.name] = conn
        return None

    def _client_gone(
        self,
        name: str,
        conn: BGPConnection,
        reason: DownReason,
        notification: Notification | None = None,
    ) -> None:
        """Tell the core the client's session ended (with ``notification`` sent or received),
        and whether its routes may stay stale (RFC 4724 §4.2, RFC 8538 §4)."""
        self.established_at.pop(name, None)
        negotiated = conn.session.negotiated
        stale_time = stale_time_after(negotiated, reason, notification)
        if stale_time:
            self.stale_until[name] = conn.loop.time() + stale_time
        else:
            self.stale_until.pop(name, None)
        self.runner.submit(ClientDown(name, stale_time, graceful_families(negotiated)))

    # --------------------------------------------------------------------- events

    def on_event(self, conn: BGPConnection, event: object) -> None:
        """A session event of ``conn``, turned into core events (and pausing while the core
        is congested)."""
        runner = self.runner
        if type(event) is UpdateReceived and conn not in self.leaving:  # the common case
            # ``handle_pending`` follows once the read's events are in (``after_read``)
            runner.submit_read(ClientUpdate(conn.session.config.peer_name, event.update))
            if runner.congested():
                conn.pause_reading()
                runner.when_drained(conn.resume_reading)
            return
        name = conn.session.config.peer_name
        now = conn.loop.time()
        if conn in self.leaving:  # its client was removed: the core has forgotten it
            if isinstance(event, SessionDown):
                self.leaving.discard(conn)
                self.pending.pop(conn, None)
            return
        if isinstance(event, SessionEstablished):
            self.pending.pop(conn, None)
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
                add_path_note(negotiated),
            )
            runner.submit(ClientEstablished(name, conn, gr))
        elif isinstance(event, SessionDown):
            self.pending.pop(conn, None)
            self.finished.setdefault(name, SessionStats()).add(conn.session.stats)
            was_up = name in self.established_at and self.current.get(name) is conn
            detail = f" ({event.detail})" if event.detail else ""
            notification = f": {event.notification.describe()}" if event.notification else ""
            if was_up or event.reason is not DownReason.COLLISION:
                words = down_words(event.reason, event.notification, event.detail)
                self.last_errors[name] = (words, time.time())
                conn.log.warning(
                    "session down: %s%s%s", event.reason.name.lower(), notification, detail
                )
            if self.takeovers.get(name) is conn:
                del self.takeovers[name]
            if event.reason is DownReason.MAX_PREFIXES and event.notification is not None:
                self._hold_down(name, event.notification, now)
            if was_up:
                self._client_gone(name, conn, event.reason, event.notification)
        elif isinstance(event, RouteRefreshReceived):
            message = event.message
            runner.submit(ClientRouteRefresh(name, message.family, message.subtype))
        elif isinstance(event, StateChanged):
            conn.log.debug("state %s -> %s", event.old.name, event.new.name)

    def _hold_down(self, name: str, notification: Notification, now: float) -> None:
        """The client passed max_prefixes (action restart): refuse it for its idle hold."""
        client = self.by_name[name]
        hold = self.holds.setdefault(name, IdleHold(client.max_prefixes_restart))
        hold.base = client.max_prefixes_restart
        since = self.established_at.get(name)
        seconds = hold.trip(now, None if since is None else now - since)
        self.hold_notifications[name] = notification
        log.warning(
            "held down %s (max_prefixes_restart, doubled on each repeat)",
            "until a reload" if math.isinf(seconds) else f"for {seconds:.0f} s",
            extra={"peer": name},
        )


def add_path_note(negotiated: Negotiated) -> str:
    """What the log says of ADD-PATH (RFC 7911): the families the client gets every
    upstream's path for, or that its offer was declined (it gets the best path)."""
    if negotiated.add_path_send:
        return ", ADD-PATH send " + ", ".join(str(f) for f in negotiated.add_path_send)
    return ", ADD-PATH declined" if negotiated.peer_offered_add_path else ""


class _Accepting(asyncio.Protocol):
    """The listener's protocol: finds the client, then hands everything to its ``BGPConnection``."""

    def __init__(self, server: ClientServer, listen: str, clients: list[Client]) -> None:
        self.server = server
        self.listen = listen
        self.clients = clients
        self.conn: BGPConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        server = self.server
        now = asyncio.get_running_loop().time()
        peer = transport.get_extra_info("peername")
        peer_ip = normalize_ip(peer[0]) if peer else "?"
        screened = server.screen(self.listen, self.clients, peer_ip, now)
        if isinstance(screened, Notification):
            transport.write(encode_notification(screened))
            transport.close()
            return
        client = screened
        logger = peer_logger(client.name, "client")
        open_hold = (
            TAKEOVER_OPEN_HOLD_TIME if server.takeover_candidate(client) else CLIENT_OPEN_HOLD_TIME
        )
        session_config = client_session_config(server.config, client, open_hold)
        conn = BGPConnection(
            session_config,
            server.on_event,
            logger,
            output_limit=client.output_limit_mib * MIB,
            after_read=server.runner.handle_pending,
        )
        refusal = server.admit(client, conn)
        if refusal is not None:
            server.note_refusal(
                f"second {client.name}",
                now,
                "refused a second connection from %s: already established",
                peer_ip,
                peer=client.name,
            )
            transport.write(encode_notification(refusal))
            transport.close()
            return
        self.conn = conn
        # reads go straight to the session's connection, without a hop through this method
        self.data_received = conn.data_received  # type: ignore[method-assign]
        server.pending[conn] = self.listen
        conn.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn.connection_lost(exc)
