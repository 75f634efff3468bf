"""Clients added and removed on reload, on loopback. The daemon reloaded through the API's
path (``api.reload``): a client added gets its listener, one removed loses it, and a new
listen address that cannot be bound refuses the whole reload (field named, counted), with
nothing changed. The listeners and the core alone (a BGP speaker of the test's own): a removed
client's session ends with Cease/Peer De-configured; ``abandon`` undoes ``prepare``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpmux import daemon
from bgpmux.api.client import ApiClient
from bgpmux.config import Client, Config, parse_config
from bgpmux.config_types import parse_endpoint
from bgpmux.core import reload
from bgpmux.core.events import Reconfigure
from bgpmux.transport import client_set
from bgpmux.transport.listeners import ClientServer
from bgpmux.wire.errors import CeaseSubcode, ErrorCode
from bgpmux.wire.messages import Notification, Open

from . import test_listener_limits
from .test_daemon_health import free_port, http_status, wait_healthy
from .test_listener_limits import Speaker, announce, established
from .test_reload_metrics import document, scrape

serving = test_listener_limits.serving  # the fixture: a ClientServer and a core on loopback


async def accepts(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def api_reload(path: Path) -> dict[str, Any]:
    def call() -> dict[str, Any]:
        with ApiClient(path, timeout=10) as api:
            return api.reload()

    return await asyncio.to_thread(call)


async def test_clients_added_and_removed_bind_and_unbind_listeners(tmp_path: Path) -> None:
    metrics_port, kept_port, added_port = free_port(), free_port(), free_port()
    doc = document(tmp_path, metrics_port, free_port(), kept_port)
    path = tmp_path / "bgpmux.yaml"
    path.write_text(yaml.safe_dump(doc))
    api_sock = tmp_path / "api.sock"
    main = asyncio.create_task(daemon._main(parse_config(path.read_text(), env={}), path))
    busy = socket.socket()
    try:
        await wait_healthy(metrics_port)
        assert await accepts(kept_port) and not await accepts(added_port)
        metallb = {"name": "metallb", "listen": f"127.0.0.1:{added_port}", "asn": 64514}
        added = {**doc, "clients": [*doc["clients"], metallb]}
        path.write_text(yaml.safe_dump(added))
        assert await api_reload(api_sock) == {"ok": True, "errors": [], "needs_restart": []}
        assert await accepts(added_port) and await accepts(kept_port)

        path.write_text(yaml.safe_dump(doc))
        assert (await api_reload(api_sock))["ok"]
        assert not await accepts(added_port) and await accepts(kept_port)

        busy.bind(("127.0.0.1", added_port))
        busy.listen()
        path.write_text(yaml.safe_dump(added))
        result = await api_reload(api_sock)
        assert not result["ok"]
        [error] = result["errors"]
        assert error["field"] == "clients[1].listen" and "cannot listen" in error["message"]
        failures = (await scrape(metrics_port))["bgpmux_config_reload_failures_total"]
        assert failures == 1
        busy.close()
        # nothing changed: the same file applies once the address is free
        assert (await api_reload(api_sock))["ok"]
        assert await accepts(added_port)
    finally:
        busy.close()
        os.kill(os.getpid(), signal.SIGTERM)  # the daemon's handler: a clean stop
        assert await asyncio.wait_for(main, 10) == 0


async def test_a_reload_that_fails_in_the_core_fails_healthz_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_port = free_port()
    doc = document(tmp_path, metrics_port, free_port(), free_port())
    path = tmp_path / "bgpmux.yaml"
    path.write_text(yaml.safe_dump(doc))
    main = asyncio.create_task(daemon._main(parse_config(path.read_text(), env={}), path))
    await wait_healthy(metrics_port)

    def broken(*_args: object) -> list[str]:
        raise RuntimeError("a bug half way through")

    monkeypatch.setattr("bgpmux.core.routing.reconfigure", broken)
    try:
        path.write_text(yaml.safe_dump({**doc, "log": {"level": "debug"}}))
        result = await api_reload(tmp_path / "api.sock")
        assert not result["ok"] and "bgpmux exits" in result["errors"][0]["message"]
        assert await http_status(metrics_port, "/healthz") == 503
        assert await asyncio.wait_for(main, 10) == 1
    finally:
        if not main.done():
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(main, 10)


# ------------------------------------------------------------- the listeners and the core alone


async def reload_clients(server: ClientServer, config: Config) -> None:
    """What the daemon's reload does: one plan, prepare, the core, then the listeners."""
    plan = reload.plan(server.runner.core.config, config)
    prepared = await client_set.prepare(server, config, plan)
    assert await server.runner.request(Reconfigure(config, plan)) == []
    client_set.reloaded(server, prepared, config)


async def test_a_client_removed_gets_peer_deconfigured_and_added_back_comes_up(
    serving: tuple[ClientServer, int],
) -> None:
    server, port = serving
    config = server.config
    core = server.runner.core
    speaker = await established(port)
    speaker.send(announce("198.51.100.1/32"))
    async with asyncio.timeout(5):
        while not core.clients["metallb"].channel.rib.count():
            await asyncio.sleep(0.02)
    other = {"name": "calico", "listen": f"127.0.0.1:{free_port()}", "asn": 64512}
    only_calico = config.model_copy(update={"clients": (Client.model_validate(other),)})
    await reload_clients(server, only_calico)
    cease = await speaker.until(Notification)
    assert isinstance(cease, Notification)
    assert (cease.code, cease.subcode) == (ErrorCode.CEASE, CeaseSubcode.PEER_DECONFIGURED)
    assert [s.name for s in server.sessions()] == ["calico"]
    assert set(core.clients) == {"calico"} and not server.leaving
    with pytest.raises(OSError):
        await Speaker.connect(port)  # its listener stopped
    await reload_clients(server, config.model_copy(update={"clients": (
        Client.model_validate(other), *config.clients)}))  # fmt: skip
    back = await established(port)
    async with asyncio.timeout(5):
        while core.clients["metallb"].link is None:
            await asyncio.sleep(0.02)
    assert [s.name for s in server.sessions()] == ["calico", "metallb"]  # added ones last
    back.close()


async def test_abandon_undoes_prepare(serving: tuple[ClientServer, int]) -> None:
    server, port = serving
    config = server.config
    speaker = await established(port)
    new_port = free_port()
    moved = config.clients[0].model_copy(update={"listen": parse_endpoint(f"127.0.0.1:{new_port}")})
    new = config.model_copy(update={"clients": (moved,)})
    prepared = await client_set.prepare(server, new, reload.plan(config, new))
    assert prepared.plan.clients_removed == ["metallb"] and server.leaving
    refused = await Speaker.connect(new_port)  # bound, but accepts nobody yet
    assert await refused.until(Open) is None
    client_set.abandon(server, prepared)
    assert not server.leaving and server.by_listen[f"127.0.0.1:{port}"] == [config.clients[0]]
    with pytest.raises(OSError):
        await Speaker.connect(new_port)
    speaker.send(announce("198.51.100.1/32"))  # the session goes on, reported to the core
    core = server.runner.core
    async with asyncio.timeout(5):
        while not core.clients["metallb"].channel.rib.count():
            await asyncio.sleep(0.02)
    speaker.close()
