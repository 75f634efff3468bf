"""The local API: one JSON request per line on a unix socket, one JSON reply per line.

Requests run on the event loop that owns the core, so they read consistent state without locks.
``{"cmd": "status"}`` lists every session; ``{"cmd": "routes", "client": NAME}`` a client's
Adj-RIB-In (with stale and rejected prefixes), ``{"cmd": "routes", "upstream": NAME}`` what an
upstream sent, and ``{"cmd": "routes"}`` the table exported to the upstreams.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from .core import Core
from .engines.base import Engine
from .transport.listeners import ClientServer
from .views import route_view
from .wire.prefix import prefix_to_str

log = logging.getLogger("bgpmux.api")
MAX_REQUEST = 64 * 1024


class ApiServer:
    def __init__(self, path: Path, core: Core, clients: ClientServer, engine: Engine) -> None:
        self.path = path
        self.core = core
        self.clients = clients
        self.engine = engine
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self.server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST
        )
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                request = json.loads(line)
                reply = self.handle(request)
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"error": f"bad request: {exc}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "status":
            return {"peers": self.status()}
        if cmd == "routes":
            return self.routes(request.get("client"), request.get("upstream"))
        return {"error": f"unknown command {cmd!r}"}

    def status(self) -> list[dict[str, Any]]:
        now = asyncio.get_running_loop().time()
        peers: list[dict[str, Any]] = []
        for info in self.clients.sessions():
            client = self.core.clients[info.name]
            peers.append(
                {
                    "peer": info.name,
                    "role": "client",
                    "state": info.state,
                    "uptime": round(now - info.established_at, 1) if info.established_at else None,
                    "prefixes": client.rib.count(),
                    "stale": client.rib.stale_count(),
                    "rejected": len(client.rejected),
                }
            )
        for status in self.engine.status():
            upstream = self.core.upstreams.get(status.name)
            peers.append(
                {
                    "peer": status.name,
                    "role": "upstream",
                    "state": status.state,
                    "uptime": round(now - status.established_at, 1)
                    if status.established_at
                    else None,
                    "prefixes": upstream.rib.count() if upstream else 0,
                    "advertised": sum(len(t) for t in self.core.loc_rib.values())
                    if upstream and upstream.up
                    else 0,
                    "detail": status.detail,
                }
            )
        return peers

    def routes(self, client: str | None, upstream: str | None) -> dict[str, Any]:
        core = self.core
        if client is not None:
            state = core.clients.get(client)
            if state is None:
                return {"error": f"no client named {client!r}"}
            routes = [
                route_view(f, p, path, stale=stale, best=core.loc_rib[f].get(p) is path)
                for f, p, path, stale in state.rib.items()
            ]
            rejected = [
                {"prefix": prefix_to_str(f, p), "family": str(f), "rejected": reason.value}
                for (f, p), (reason, _path) in state.rejected.items()
            ]
            return {"routes": routes, "rejected": rejected}
        if upstream is not None:
            ustate = core.upstreams.get(upstream)
            if ustate is None:
                return {"error": f"no upstream named {upstream!r}"}
            return {"routes": [route_view(f, p, path) for f, p, path, _ in ustate.rib.items()]}
        return {
            "routes": [
                route_view(f, p, path)
                for f, table in core.loc_rib.items()
                for p, path in table.items()
            ]
        }
