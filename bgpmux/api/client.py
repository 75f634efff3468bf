"""A blocking client of the API (the CLI's, and the lab's): each call returns plain data, the
dicts of ``convert`` (the CLI's JSON contract), or raises APIError with a one-line reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from ..v1 import events_pb2, mux_pb2_grpc, peers_pb2, routes_pb2
from .convert import event_dict, peer_dict, reload_dict, route_dict

API_TIMEOUT = 10.0  # seconds a call may take
ROUTES_TIMEOUT = 12  # times API_TIMEOUT the whole ListRoutes stream may take (a million rows)
MAX_MESSAGE = 64 * 1024 * 1024


class APIError(Exception):
    """The API could not be reached or refused the call; the message says why in one line."""


def _closed_dir(path: Path) -> Path | None:
    """The first directory on the way from / to ``path`` that this user may not search, or
    None (also when the way ends at a missing directory)."""
    for directory in reversed(path.parents):
        if not directory.is_dir():
            return None
        if not os.access(directory, os.X_OK):
            return directory
    return None


class ApiClient:
    """Calls ``bgpmux.v1.Mux`` at ``target``: a unix socket path, or "host:port" (the loopback
    ``api.listen_tcp``). Use as a context manager, or ``close`` it."""

    def __init__(self, target: Path | str, timeout: float = API_TIMEOUT) -> None:
        self.path = target if isinstance(target, Path) else None
        self.where = str(target)
        self.timeout = timeout
        address = f"unix:{target}" if self.path is not None else str(target)
        options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
        self.channel = grpc.insecure_channel(address, options=options)
        self.stub = mux_pb2_grpc.MuxStub(self.channel)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _precheck(self) -> None:
        """Clear errors for the usual unix-socket failures, before gRPC's own words."""
        path = self.path
        if path is None:
            return
        try:
            exists = path.exists()
        except PermissionError:  # a directory above it is closed to us (/run/bgpmux is 0700)
            exists = None
        if not exists:
            closed = _closed_dir(path)
            if exists is None or closed is not None:
                where = path if closed is None else closed
                raise APIError(f"permission denied on {where} (run as root or bgpmux's user)")
            raise APIError(f"no API socket at {path}: is bgpmux running?")
        if not os.access(path, os.R_OK | os.W_OK):
            raise APIError(f"permission denied on {path} (run as root or bgpmux's user)")

    def _error(self, exc: grpc.RpcError, timeout: float | None = None) -> APIError:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        if code == grpc.StatusCode.UNAVAILABLE:
            return APIError(f"nothing is listening on {self.where}: is bgpmux running?")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            seconds = self.timeout if timeout is None else timeout
            return APIError(f"no reply from {self.where} within {seconds:g} s")
        return APIError(details or str(code))

    def peers(self) -> list[dict[str, Any]]:
        """Every session (``convert.peer_dict``), clients then upstreams."""
        self._precheck()
        try:
            reply = self.stub.ListPeers(peers_pb2.ListPeersRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return [peer_dict(p) for p in reply.peers]

    def peer(self, name: str) -> dict[str, Any]:
        """One session by name."""
        self._precheck()
        try:
            reply = self.stub.GetPeer(peers_pb2.GetPeerRequest(name=name), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return peer_dict(reply)

    def routes(self, **filters: Any) -> list[dict[str, Any]]:
        """Route rows (``convert.route_dict``); ``filters`` are ``ListRoutesRequest``'s fields
        (client, received_from, upstream, prefix, family, rejected, stale); None is unset."""
        self._precheck()
        request = routes_pb2.ListRoutesRequest(
            **{k: v for k, v in filters.items() if v is not None}
        )
        rows: list[dict[str, Any]] = []
        timeout = self.timeout * ROUTES_TIMEOUT
        try:
            for chunk in self.stub.ListRoutes(request, timeout=timeout):
                rows += (route_dict(r) for r in chunk.routes)
        except grpc.RpcError as exc:
            raise self._error(exc, timeout) from None
        return rows

    def reload(self) -> dict[str, Any]:
        """Reload the configuration: ``convert.reload_dict``."""
        self._precheck()
        try:
            reply = self.stub.Reload(events_pb2.ReloadRequest(), timeout=self.timeout * 3)
        except grpc.RpcError as exc:
            raise self._error(exc, self.timeout * 3) from None
        return reload_dict(reply.result)

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """The event stream (``convert.event_dict`` each), for ``timeout`` seconds (None: until
        the daemon stops or the caller stops iterating)."""
        self._precheck()
        stream = self.stub.WatchEvents(events_pb2.WatchEventsRequest(), timeout=timeout)
        try:
            for event in stream:
                yield event_dict(event)
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return
            raise self._error(exc) from None
        finally:
            stream.cancel()
