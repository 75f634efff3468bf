"""The API server: the ``bgpmux.v1.Mux`` service (proto/bgpmux/v1/mux.proto) on ``grpc.aio``.

Routing answers come from the core itself: each query is a request event (``RoutesQuery``,
``PeersQuery``) put on the core's queue through ``CoreRunner.request``, so an answer reflects
the state between two events and the core stays the one owner of routing state. Session states
and facts come from the client listeners and the engine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from ..config import Config
from ..core.events import PeersQuery, RoutesQuery
from ..core.port import Engine
from ..core.runner import CoreRunner
from ..transport.listeners import ClientServer
from ..v1 import events_pb2, mux_pb2_grpc, peers_pb2, routes_pb2
from ..wire.constants import IPV4_UNICAST, IPV6_UNICAST
from .convert import PeerSnapshot, peer_message, reload_message, route_message
from .events import EventHub, ReloadOutcome
from .unix import ApiPathError, clear_path, remove_ours, secure_bound, socket_umask

log = logging.getLogger("bgpmux.api")
ROUTES_PER_MESSAGE = 1000  # routes per ListRoutesResponse of the stream
FAMILIES = {"ipv4": str(IPV4_UNICAST), "ipv6": str(IPV6_UNICAST),
            str(IPV4_UNICAST): str(IPV4_UNICAST), str(IPV6_UNICAST): str(IPV6_UNICAST)}  # fmt: skip
Reloader = Callable[[], Awaitable[ReloadOutcome]]


class MuxService(mux_pb2_grpc.MuxServicer):
    """The RPCs; see mux.proto."""

    def __init__(
        self,
        runner: CoreRunner,
        clients: ClientServer,
        engine: Engine,
        hub: EventHub,
        reload: Callable[[], Awaitable[events_pb2.ReloadEvent]],
    ) -> None:
        self.runner = runner
        self.clients = clients
        self.engine = engine
        self.hub = hub
        self._reload = reload

    async def peers(self) -> list[peers_pb2.Peer]:
        """Every session: clients, then upstreams, in configuration order."""
        counts = await self.runner.request(PeersQuery())
        assert isinstance(counts, dict)
        config: Config = self.runner.core.config
        loop_now, now = asyncio.get_running_loop().time(), time.time()

        def unix(at: float | None) -> float | None:
            return None if at is None else now - (loop_now - at)

        by_name_c = {c.name: c for c in config.clients}
        peers = []
        for info in self.clients.sessions():
            cfg = by_name_c.get(info.name)
            address = info.peer_ip or (str(cfg.peer_address or "") if cfg else "")
            snapshot = PeerSnapshot(
                info.name, "client", info.state, info.facts, address, cfg.asn if cfg else None,
                unix(info.established_at), now, counts.get(info.name, {}),
            )  # fmt: skip
            peers.append(peer_message(snapshot))
        by_name_u = {u.name: u for u in config.upstreams}
        for status in self.engine.status():
            ucfg = by_name_u.get(status.name)
            snapshot = PeerSnapshot(
                status.name, "upstream", status.state, status.facts,
                str(ucfg.address) if ucfg else "", ucfg.asn if ucfg else None,
                unix(status.established_at), now, counts.get(status.name, {}), status.detail,
            )  # fmt: skip
            peers.append(peer_message(snapshot))
        return peers

    async def ListPeers(
        self, request: peers_pb2.ListPeersRequest, context: Any
    ) -> peers_pb2.ListPeersResponse:
        return peers_pb2.ListPeersResponse(peers=await self.peers())

    async def GetPeer(self, request: peers_pb2.GetPeerRequest, context: Any) -> peers_pb2.Peer:
        for peer in await self.peers():
            if peer.name == request.name:
                return peer
        await context.abort(grpc.StatusCode.NOT_FOUND, f"no peer named {request.name!r}")
        raise AssertionError  # abort raises

    async def ListRoutes(
        self, request: routes_pb2.ListRoutesRequest, context: Any
    ) -> AsyncIterator[routes_pb2.ListRoutesResponse]:
        if request.client and request.received_from:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "client and received_from: give one of them"
            )
        try:
            keep = route_filter(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise AssertionError from None
        # the filter runs in the core, as rows are made: a narrow query holds only its rows
        query = RoutesQuery(request.client or None, request.received_from or None,
                            request.upstream or None, request.rejected, keep)  # fmt: skip
        result = await self.runner.request(query)
        assert isinstance(result, dict)
        if "error" in result:
            await context.abort(grpc.StatusCode.NOT_FOUND, result["error"])
        chunk: list[routes_pb2.Route] = []
        for row in result["routes"]:
            chunk.append(route_message(row))
            if len(chunk) >= ROUTES_PER_MESSAGE:
                yield routes_pb2.ListRoutesResponse(routes=chunk)
                chunk = []
        if chunk:
            yield routes_pb2.ListRoutesResponse(routes=chunk)

    async def WatchEvents(
        self, request: events_pb2.WatchEventsRequest, context: Any
    ) -> AsyncIterator[events_pb2.Event]:
        watcher = self.hub.watch()
        try:
            async for event in watcher.events():
                yield event
        finally:
            self.hub.unwatch(watcher)

    async def Reload(
        self, request: events_pb2.ReloadRequest, context: Any
    ) -> events_pb2.ReloadResponse:
        return events_pb2.ReloadResponse(result=await self._reload())


def route_filter(request: routes_pb2.ListRoutesRequest) -> Callable[[dict[str, Any]], bool]:
    """The test a route row must pass: ``prefix`` (a prefix: equal; an address: the routes
    that hold it), ``family``, ``rejected`` (refused only; with neither ``client`` nor
    ``received_from``: every client's), ``stale``. Raises ValueError for a bad filter."""
    family = None
    if request.family:
        family = FAMILIES.get(request.family)
        if family is None:
            raise ValueError(f"family {request.family!r}: not ipv4-unicast or ipv6-unicast")
    match: Callable[[str], bool] = lambda _prefix: True  # noqa: E731
    if request.prefix:
        try:
            if "/" in request.prefix:
                wanted = ipaddress.ip_network(request.prefix, strict=False)
                match = lambda p: ipaddress.ip_network(p) == wanted  # noqa: E731
            else:
                address = ipaddress.ip_address(request.prefix)
                match = lambda p: address in ipaddress.ip_network(p)  # noqa: E731
        except ValueError:
            raise ValueError(f"prefix {request.prefix!r}: not a prefix or address") from None

    def keep(row: dict[str, Any]) -> bool:
        if request.rejected and not row["reason"]:
            return False
        if request.stale and not row["stale"]:
            return False
        if family is not None and row["family"] != family:
            return False
        return match(row["prefix"])

    return keep


class ApiServer:
    """Serves ``bgpmux.v1.Mux`` on the unix socket at ``path`` (mode 0600) and, when given,
    on the loopback TCP endpoint ``tcp`` ("127.0.0.1:50052"); ``reload`` re-reads the
    configuration (None: this bgpmux has no file to read)."""

    def __init__(
        self,
        path: Path,
        runner: CoreRunner,
        clients: ClientServer,
        engine: Engine,
        reload: Reloader | None = None,
        tcp: str | None = None,
    ) -> None:
        self.path = path
        self.tcp = tcp
        self.hub = EventHub(runner)
        self._reloader = reload
        self.service = MuxService(runner, clients, engine, self.hub, self.reload)
        self.server: grpc.aio.Server | None = None
        self.bound: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we bound

    async def start(self) -> None:
        """Listen. A socket left at ``path`` (by an earlier run) is replaced. Raises
        ApiPathError (an OSError) naming ``api.listen`` (or ``api.listen_tcp``) when ``path``
        holds anything else, its directory could be changed by another user, or a listener
        cannot be bound."""
        clear_path(self.path)
        # gRPC unlinks the path it bound when it stops, even if another bgpmux has taken that
        # path since: so it binds a private name, renamed into place once listening.
        private = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        clear_path(private)
        server = grpc.aio.server()
        mux_pb2_grpc.add_MuxServicer_to_server(self.service, server)
        with socket_umask():
            try:
                server.add_insecure_port(f"unix:{private}")
            except RuntimeError as exc:
                raise ApiPathError(f"api.listen: cannot bind {self.path}: {exc}") from None
        if self.tcp is not None:
            try:
                server.add_insecure_port(self.tcp)
            except RuntimeError as exc:
                private.unlink(missing_ok=True)
                raise ApiPathError(f"api.listen_tcp: cannot bind {self.tcp}: {exc}") from None
        with socket_umask():
            await server.start()
        try:
            os.rename(private, self.path)
        except OSError as exc:
            await server.stop(None)
            raise ApiPathError(f"api.listen: cannot bind {self.path}: {exc.strerror}") from None
        self.bound = secure_bound(self.path)
        self.server = server

    async def stop(self) -> None:
        """Remove the socket file, unless it is no longer the one ``start`` bound (another
        process took the path since), and stop serving (streams end)."""
        bound, self.bound = self.bound, None
        remove_ours(self.path, bound)
        if self.server is not None:
            await self.server.stop(grace=1.0)

    async def reload(self) -> events_pb2.ReloadEvent:
        """Reload the configuration (SIGHUP and the Reload RPC come here); the outcome also
        goes to the event stream."""
        if self._reloader is None:
            outcome = ReloadOutcome([("", "this bgpmux runs without a configuration file")])
        else:
            outcome = await self._reloader()
        result = reload_message(outcome.errors, outcome.needs_restart)
        self.hub.publish(events_pb2.Event(time=time.time(), reload=result))
        return result
