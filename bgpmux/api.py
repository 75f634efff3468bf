"""The local API: one JSON request line per connection on a unix socket, one JSON reply line.

Routing answers come from the core itself: the server puts a request event (``RoutesQuery``,
``PeersQuery``) on the core's queue through ``CoreRunner.request`` and waits for its result, so
each answer reflects the state between two events. Session states come from the listeners and
the engine. ``{"cmd": "status"}`` lists every session; ``{"cmd": "routes", "client": NAME}`` a
client's Adj-RIB-In (with stale and rejected prefixes), ``{"cmd": "routes", "upstream": NAME}``
what an upstream sent (with the prefixes its import policy refused), and ``{"cmd": "routes"}``
the best client routes, sent to the upstreams.
A line that is not JSON, or an unknown command, gets ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

from .core.events import PeersQuery, RoutesQuery
from .core.port import Engine
from .core.runner import CoreRunner
from .transport.listeners import ClientServer

log = logging.getLogger("bgpmux.api")
MAX_REQUEST = 64 * 1024
SOCKET_MODE = 0o600  # only bgpmux's user (root in the DaemonSet) may ask
DIRECTORY_MODE = 0o700  # of the socket's directory, when bgpmux creates it


class ApiPathError(OSError):
    """The API cannot listen at ``api.listen``; the message names the field and says why."""


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a socket"


def _check_directory(directory: Path) -> None:
    """Create ``directory`` with mode 0700 when it is missing; refuse (ApiPathError) one that
    another user could change: whoever can replace the socket can answer ``bgpmux status``
    in bgpmux's place. An existing directory's mode is the operator's and is left alone."""
    try:
        directory.mkdir(mode=DIRECTORY_MODE, parents=True)
        os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise ApiPathError(f"api.listen: cannot create {directory}: {exc.strerror}") from None
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise ApiPathError(f"api.listen: {directory} is not a directory")
    if info.st_uid not in (0, os.geteuid()):
        raise ApiPathError(
            f"api.listen: {directory} belongs to uid {info.st_uid} (neither root nor bgpmux's"
            " user), who could replace the socket"
        )
    # With the sticky bit (as /tmp) others can write the directory but not remove or rename
    # what bgpmux put there.
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not info.st_mode & stat.S_ISVTX:
        raise ApiPathError(
            f"api.listen: {directory} is writable by its group or others (mode"
            f" {stat.S_IMODE(info.st_mode):04o}), who could replace the socket; use a directory"
            " only its owner can write (bgpmux creates a missing one with mode 0700)"
        )


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
        self.bound: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we bound

    async def start(self) -> None:
        """Listen on ``path``, a socket of mode 0600, in a directory created with mode 0700
        when missing. A socket left at ``path`` (by an earlier run) is replaced. Raises
        ApiPathError (an OSError) naming ``api.listen`` when ``path`` holds anything else,
        its directory could be changed by another user, or the socket cannot be bound."""
        _check_directory(self.path.parent)
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(mode):
                raise ApiPathError(
                    f"api.listen: {self.path} is {_kind(mode)}; bgpmux replaces only a socket"
                    " (left by an earlier run): remove it or choose another path"
                )
            try:
                self.path.unlink()
            except OSError as exc:
                msg = f"api.listen: cannot remove the old socket {self.path}: {exc.strerror}"
                raise ApiPathError(msg) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Linux creates the socket file with the unbound socket's mode (less the umask),
            # so the socket is never open to others, not even until the chmod below.
            with contextlib.suppress(OSError):
                os.fchmod(sock.fileno(), SOCKET_MODE)
            sock.bind(str(self.path))
            os.chmod(self.path, SOCKET_MODE)
            info = os.lstat(self.path)
        except OSError as exc:
            sock.close()
            raise ApiPathError(f"api.listen: cannot bind {self.path}: {exc.strerror}") from None
        self.bound = (info.st_dev, info.st_ino)
        self.server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_REQUEST)

    async def stop(self) -> None:
        """Remove the socket file, unless it is no longer the one ``start`` bound (another
        process took the path since), and stop listening."""
        # Checked while still listening: the inode cannot be freed and reused meanwhile.
        bound, self.bound = self.bound, None
        with contextlib.suppress(FileNotFoundError):
            info = os.lstat(self.path)
            if bound == (info.st_dev, info.st_ino):
                self.path.unlink(missing_ok=True)
            elif bound is not None:
                log.warning("api.listen: %s is no longer our socket; left in place", self.path)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

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
