"""Clients added and removed by a reload, on the listeners' side, in step with the core
(``core.client_set``); the daemon's ``Reloader`` runs the steps, one reload at a time.

1. ``prepare``, before the core applies the configuration: the listen address of a client
   added is bound if no listener has it yet, accepting nobody until step 3 (a connection then
   gets Cease/Connection Rejected and the client dials again). A client removed (or replaced:
   its identity changed) is detached: new connections of it are refused, and its sessions'
   events stop reaching the core, which forgets it in step 2. ``abandon`` undoes this step
   when the reload stops before the core was asked.
2. The core applies the configuration (withdraws the removed clients' routes and forgets
   their links).
3. ``reloaded``: the detached clients' connections end with a Cease (RFC 4486 §3: Peer
   De-configured, or Other Configuration Change when the client comes back with a new
   identity): this side alone sends it, since it knows every connection of the client,
   Established or not. Their state goes (counters, metrics series, holds); the added clients
   are accepted; a listener left without clients stops; new policies count from now and every
   idle hold ends. No other session is touched.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Client, Config
from ..core import reload
from ..core.reconfigure import running_clients
from ..session import DownReason
from ..wire.errors import CeaseSubcode, ErrorCode
from ..wire.messages import Notification
from .connection import BGPConnection
from .md5 import md5_keys, set_md5_key

if TYPE_CHECKING:
    from .listeners import ClientServer

log = logging.getLogger("bgpmux.transport")
Server = asyncio.base_events.Server
DECONFIGURED = Notification(ErrorCode.CEASE, CeaseSubcode.PEER_DECONFIGURED)
RECONFIGURED = Notification(ErrorCode.CEASE, CeaseSubcode.OTHER_CONFIGURATION_CHANGE)


class ListenError(OSError):
    """A new client's listen address could not be bound on reload; ``field`` is its path in
    the configuration (``clients[2].listen``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class Prepared:
    """A reload between ``prepare`` and ``apply``: its plan, the listeners bound for it with
    the (still empty) list of clients each accepts, the clients detached, by name, and their
    connections."""

    plan: reload.Plan
    bound: dict[str, tuple[Server, list[Client]]] = field(default_factory=dict)
    detached: dict[str, Client] = field(default_factory=dict)
    leaving: set[BGPConnection] = field(default_factory=set)


async def prepare(server: ClientServer, config: Config, plan: reload.Plan) -> Prepared:
    """Step 1 (see the module's docstring) for ``config``, whose clients ``plan`` (the
    daemon's, the core's too) says are added and removed. Raises ListenError, with nothing
    changed, when a new listen address cannot be bound or a password file read."""
    prepared = Prepared(plan)
    added = {c.name for c in prepared.plan.clients_added}
    for index, client in enumerate(config.clients):
        listen = str(client.listen)
        if client.name not in added or listen in server.servers or listen in prepared.bound:
            continue
        same = [c for c in config.clients if str(c.listen) == listen]
        accepted: list[Client] = []
        try:
            prepared.bound[listen] = (await server.listen_on(listen, accepted, same), accepted)
        except (OSError, ValueError) as exc:
            for bound, _ in prepared.bound.values():
                bound.close()
            raise ListenError(f"clients[{index}].listen", f"cannot listen: {exc}") from exc
    for name in prepared.plan.clients_removed:
        client = server.by_name[name]
        prepared.detached[name] = client
        on = server.by_listen.get(str(client.listen), [])
        on[:] = [c for c in on if c.name != name]
        conns = [server.current.get(name), server.takeovers.get(name)]
        conns += [c for c in server.pending if c.session.config.peer_name == name]
        prepared.leaving.update(c for c in conns if c is not None and not c.closed)
    server.leaving |= prepared.leaving
    return prepared


def abandon(server: ClientServer, prepared: Prepared) -> None:
    """Undo ``prepare``: the reload stopped before the core was asked to apply it."""
    for bound, _ in prepared.bound.values():
        bound.close()
    for client in prepared.detached.values():
        server.by_listen.setdefault(str(client.listen), []).append(client)
    server.leaving -= prepared.leaving


def reloaded(server: ClientServer, prepared: Prepared | None, config: Config) -> None:
    """Step 3 (see the module's docstring), once the core applied ``config``; with
    ``prepared`` None (no client added or removed), only the policies and the idle holds."""
    if prepared is not None:
        _apply(server, prepared)
        server.config = running_config(server.config, prepared)
    for client in config.clients:
        if client.name in server.by_name:
            server.by_name[client.name] = client
    for name, hold in server.holds.items():
        if hold.until is not None:
            log.info("released from its idle hold by the reload", extra={"peer": name})
        hold.release()


def _apply(server: ClientServer, prepared: Prepared) -> None:
    """The clients removed and added (``reloaded``)."""
    added = {c.name for c in prepared.plan.clients_added}
    for name in prepared.detached:
        _forget(server, name, RECONFIGURED if name in added else DECONFIGURED)
    for listen, (bound, accepted) in prepared.bound.items():
        server.servers[listen] = bound
        server.by_listen[listen] = accepted
    for client in prepared.plan.clients_added:
        listen = str(client.listen)
        if listen not in prepared.bound:
            _add_md5_key(server, listen, client)
        server.by_listen.setdefault(listen, []).append(client)
        server.by_name[client.name] = client
        log.info("accepting its session on %s", listen, extra={"peer": client.name})
    for listen in [k for k, on in server.by_listen.items() if not on]:
        del server.by_listen[listen]
        if listen in server.servers:
            server.servers.pop(listen).close()
            log.info("stopped listening on %s: no client left", listen)


def running_config(running: Config, prepared: Prepared) -> Config:
    """``running`` with its clients as they run after ``prepared`` (``running_clients``: in
    their order, policies new, the removed gone, the added last); the rest (the node) as it
    runs until a restart."""
    return running.model_copy(update={"clients": running_clients(running.clients, prepared.plan)})


def _forget(server: ClientServer, name: str, cease: Notification) -> None:
    """End every remaining session of the removed client ``name`` with ``cease``; drop its
    state (the listeners' side of its metrics series)."""
    for conn in [c for c in server.leaving if c.session.config.peer_name == name]:
        server.pending.pop(conn, None)
        if conn.closed:
            server.leaving.discard(conn)
        else:  # it leaves ``leaving`` at its SessionDown
            conn.shutdown(cease, DownReason.ADMIN_SHUTDOWN)
    tables: list[dict[str, Any]] = [
        server.current,
        server.takeovers,
        server.established_at,
        server.finished,
        server.holds,
        server.hold_notifications,
        server.last_errors,
        server.stale_until,
        server.by_name,
    ]
    for table in tables:
        table.pop(name, None)


def _add_md5_key(server: ClientServer, listen: str, client: Client) -> None:
    """A client added on a running listener: its TCP-MD5 key (RFC 2385) on the listening
    socket, which the connections accepted from then on inherit."""
    keys = md5_keys([client])
    listener = server.servers.get(listen)
    if not keys or listener is None:
        return
    for sock in listener.sockets:
        for peer, key in keys.items():
            set_md5_key(sock, peer, key)  # type: ignore[arg-type,unused-ignore]  # TransportSocket
