"""The local API: one JSON request line per connection on a unix socket, one JSON reply line.

Routing answers come from the core itself: the server puts a request event (``RoutesQuery``,
``PeersQuery``) on the core's queue through ``CoreRunner.request`` and waits for its result, so
each answer reflects the state between two events. Session states come from the listeners and
the engine. ``{"cmd": "status"}`` lists every session; ``{"cmd": "routes", "client": NAME}`` a
client's Adj-RIB-In (with stale and rejected prefixes), ``{"cmd": "routes", "upstream": NAME}``
what an upstream sent, and ``{"cmd": "routes"}`` the best client routes, sent to the upstreams.
A line that is not JSON, or an unknown command, gets ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from .core.events import PeersQuery, RoutesQuery
from .core.port import Engine
from .core.runner import CoreRunner
from .transport.listeners import ClientServer

log = logging.getLogger("bgpmux.api")
MAX_REQUEST = 64 * 1024


class ApiServer:
    """Serves the local API on the unix socket at ``path``; routing state comes from the core
    as answers to requests (``RoutesQuery``, ``PeersQuery``), sessions from the listeners and
    the engine."""

    def __init__(
        self, path: Path, runner: CoreRunner, clients: ClientServer, engine: Engine
    ) -> None:
        self.path = path
        self.runner = runner
        self.clients = clients
        self.engine = engine
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        """Listen on ``path`` (replacing a stale socket file; mode 0660). Raises OSError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self.server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST
        )
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        """Stop listening and remove the socket file."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                request = json.loads(line)
                reply = await self.handle(request)
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"error": f"bad request: {exc}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to one decoded request: ``{"peers": [...]}`` for ``status``, the core's
        ``RoutesQuery`` result for ``routes``, ``{"error": ...}`` for anything else."""
        cmd = request.get("cmd")
        if cmd == "status":
            return {"peers": await self.status()}
        if cmd == "routes":
            query = RoutesQuery(request.get("client"), request.get("upstream"))
            result = await self.runner.request(query)
            assert isinstance(result, dict)
            return result
        return {"error": f"unknown command {cmd!r}"}

    async def status(self) -> list[dict[str, Any]]:
        """One dict per session, clients then upstreams: peer, role, state, uptime (seconds,
        None while down), the core's ``PeersQuery`` counts, and ``detail`` for upstreams."""
        counts = await self.runner.request(PeersQuery())
        assert isinstance(counts, dict)
        now = asyncio.get_running_loop().time()
        peers: list[dict[str, Any]] = []
        for info in self.clients.sessions():
            peers.append(
                {
                    "peer": info.name,
                    "role": "client",
                    "state": info.state.name,
                    "uptime": round(now - info.established_at, 1) if info.established_at else None,
                    **counts.get(info.name, {}),
                }
            )
        for status in self.engine.status():
            upstream = counts.get(status.name, {"prefixes": 0, "advertised": 0})
            peers.append(
                {
                    "peer": status.name,
                    "role": "upstream",
                    "state": status.state.name,
                    "uptime": round(now - status.established_at, 1)
                    if status.established_at
                    else None,
                    **upstream,
                    "detail": status.detail,
                }
            )
        return peers
