"""The API's unix socket: where it may be created, what it may replace, its mode, and that
stopping removes only the socket bgpmux bound."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bgpmux.api import ApiPathError, ApiServer
from bgpmux.v1 import mux_pb2_grpc, routes_pb2
from tests.environment import unavailable


def server_at(path: Path) -> ApiServer:
    # start/stop and a refused filter touch neither the core, the listeners nor the engine
    nothing: Any = None
    return ApiServer(path, nothing, nothing, nothing)


@pytest.fixture
async def servers() -> AsyncIterator[list[ApiServer]]:
    started: list[ApiServer] = []
    yield started
    for server in started:
        await server.stop()


async def start(servers: list[ApiServer], path: Path) -> ApiServer:
    server = server_at(path)
    await server.start()
    servers.append(server)
    return server


async def ask(path: Path) -> grpc.StatusCode:
    """A call the server answers without the core: a contradictory filter."""
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        stub = mux_pb2_grpc.MuxStub(channel)
        request = routes_pb2.ListRoutesRequest(client="a", received_from="b")
        try:
            async for _chunk in stub.ListRoutes(request, timeout=10):
                pass
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def stale_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # closed without unlinking, as after a crash


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


async def test_missing_directory_is_created_0700_and_socket_is_0600(
    tmp_path: Path, servers: list[ApiServer]
) -> None:
    old_umask = os.umask(0)  # even a permissive umask leaves nothing open to others
    try:
        path = tmp_path / "run" / "bgpmux" / "api.sock"
        server = await start(servers, path)
    finally:
        os.umask(old_umask)
    assert mode(path.parent) == 0o700
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and mode(path) == 0o600
    assert await ask(path) == grpc.StatusCode.INVALID_ARGUMENT
    await server.stop()
    assert not path.exists()


async def test_existing_directory_keeps_its_mode(tmp_path: Path, servers: list[ApiServer]) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    directory.chmod(0o755)
    await start(servers, directory / "api.sock")
    assert mode(directory) == 0o755
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: others may write, but not remove or rename our socket
    await start(servers, sticky / "api.sock")
    assert mode(sticky) == 0o1777


@pytest.mark.parametrize("directory_mode", [0o770, 0o777, 0o722])
async def test_directory_others_can_write_is_refused(
    tmp_path: Path, servers: list[ApiServer], directory_mode: int
) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    directory.chmod(directory_mode)
    with pytest.raises(ApiPathError) as info:
        await start(servers, directory / "api.sock")
    assert str(info.value) == (
        f"api.listen: {directory} is writable by its group or others (mode"
        f" {directory_mode:04o}), who could replace the socket; use a directory only its"
        " owner can write (bgpmux creates a missing one with mode 0700)"
    )
    assert mode(directory) == directory_mode and not (directory / "api.sock").exists()


async def test_directory_of_another_user_is_refused(
    tmp_path: Path, servers: list[ApiServer]
) -> None:
    if os.geteuid() != 0:
        unavailable("needs root to give the directory away")
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    os.chown(directory, 12345, 12345)
    with pytest.raises(ApiPathError, match=r"belongs to uid 12345 \(neither root"):
        await start(servers, directory / "api.sock")


async def test_path_under_a_file_is_refused(tmp_path: Path, servers: list[ApiServer]) -> None:
    (tmp_path / "run").write_text("")
    with pytest.raises(ApiPathError, match=r"^api.listen: .*/run is not a directory$"):
        await start(servers, tmp_path / "run" / "api.sock")


async def test_stale_socket_is_replaced(tmp_path: Path, servers: list[ApiServer]) -> None:
    path = tmp_path / "api.sock"
    stale_socket(path)
    assert await ask(path) == grpc.StatusCode.UNAVAILABLE
    await start(servers, path)
    # gRPC shares a target's subchannel between channels: the one that just failed may still
    # be in its reconnect backoff, so the first calls can see UNAVAILABLE for a moment.
    for _ in range(50):
        answer = await ask(path)
        if answer != grpc.StatusCode.UNAVAILABLE:
            break
        await asyncio.sleep(0.1)
    assert answer == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("kind", ["a regular file", "a directory", "a symbolic link"])
async def test_anything_but_a_socket_is_left_alone(
    tmp_path: Path, servers: list[ApiServer], kind: str
) -> None:
    path = tmp_path / "api.sock"
    if kind == "a regular file":
        path.write_text("precious\n")
    elif kind == "a directory":
        path.mkdir()
    else:
        stale_socket(tmp_path / "elsewhere.sock")  # even a link to a socket
        path.symlink_to(tmp_path / "elsewhere.sock")
    with pytest.raises(ApiPathError) as info:
        await start(servers, path)
    assert str(info.value) == (
        f"api.listen: {path} is {kind}; bgpmux replaces only a socket (left by an earlier"
        " run): remove it or choose another path"
    )
    assert os.path.lexists(path)
    if kind == "a regular file":
        assert path.read_text() == "precious\n"


async def test_stop_leaves_a_socket_that_replaced_ours(
    tmp_path: Path, servers: list[ApiServer]
) -> None:
    path = tmp_path / "api.sock"
    first = await start(servers, path)
    second = await start(servers, path)  # a second bgpmux took the path over
    await first.stop()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert await ask(path) == grpc.StatusCode.INVALID_ARGUMENT
    await second.stop()
    assert not path.exists()


async def test_stop_after_the_socket_was_removed(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    server = server_at(path)
    await server.start()
    path.unlink()
    await server.stop()  # nothing to remove, no error
    await server.stop()
