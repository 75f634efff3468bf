"""The daemon on loopback, reloaded through the API's path (``api.reload``): a client added gets
its listener, one removed loses it, and a new listen address that cannot be bound refuses the
whole reload (field named, counted), with nothing changed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import yaml

from bgpmux import daemon
from bgpmux.api.client import ApiClient
from bgpmux.config import parse_config

from .test_daemon_health import free_port, http_status
from .test_reload_metrics import document, scrape


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
        for _ in range(100):
            await asyncio.sleep(0.05)
            try:
                if await http_status(metrics_port, "/healthz") == 200:
                    break
            except OSError:
                continue
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
