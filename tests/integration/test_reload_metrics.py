"""The daemon on loopback, reloaded with SIGHUP: a file that fails validation and one that needs
a restart count in ``bgpmux_config_reload_failures_total`` and set
``bgpmux_config_last_reload_successful`` to 0; one applied whole moves
``bgpmux_config_last_reload_success_timestamp_seconds`` and sets it back to 1."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import yaml

from bgpmux import daemon
from bgpmux.config import parse_config

from .test_daemon_health import free_port, wait_healthy


def document(tmp_path: Path, metrics_port: int, upstream_port: int, client_port: int) -> Any:
    return {
        "node": {"asn": 64512, "router_id": "10.0.0.2", "address": "127.0.0.1"},
        "engine": "native",
        "upstreams": [{"name": "tor", "address": "127.0.0.1", "port": upstream_port,
                       "asn": 65000}],
        "clients": [{"name": "calico", "listen": f"127.0.0.1:{client_port}", "asn": 64512,
                     "max_prefixes": 100}],
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "api": {"listen": f"unix:{tmp_path / 'api.sock'}"},
        "reload": {"watch": False},  # SIGHUP only: each reload counted once
    }  # fmt: skip


async def scrape(port: int) -> dict[str, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
    await writer.drain()
    body = (await reader.read()).decode().partition("\r\n\r\n")[2]
    writer.close()
    out = {}
    for line in body.splitlines():
        if line.startswith("bgpmux_config_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def reload_until(port: int, path: Path, doc: Any, check: Any) -> dict[str, float]:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    os.kill(os.getpid(), signal.SIGHUP)  # handled by the daemon's loop, this one
    for _ in range(100):
        await asyncio.sleep(0.05)
        values = await scrape(port)
        if check(values):
            return values
    raise AssertionError(f"the reload was not counted: {values}")


async def test_reload_failures_and_last_success(tmp_path: Path) -> None:
    metrics_port = free_port()
    doc = document(tmp_path, metrics_port, free_port(), free_port())
    path = tmp_path / "bgpmux.yaml"
    path.write_text(yaml.safe_dump(doc))
    main = asyncio.create_task(daemon._main(parse_config(path.read_text(), env={}), path))
    try:
        await wait_healthy(metrics_port)
        start = await scrape(metrics_port)
        failures = "bgpmux_config_reload_failures_total"
        last = "bgpmux_config_last_reload_success_timestamp_seconds"
        ok = "bgpmux_config_last_reload_successful"
        assert start[failures] == 0 and start[last] > 1.7e9 and start[ok] == 1

        refused = await reload_until(
            metrics_port, path, "node: {asn: nope}\n", lambda v: v[failures] == 1
        )
        assert refused[ok] == 0
        policy = {**doc, "clients": [{**doc["clients"][0], "max_prefixes": 200}]}
        applied = await reload_until(metrics_port, path, policy, lambda v: v[last] > start[last])
        assert applied[failures] == 1 and applied[ok] == 1
        restart = {**policy, "node": {**doc["node"], "asn": 64513}}  # needs a restart
        after = await reload_until(metrics_port, path, restart, lambda v: v[failures] == 2)
        assert after[last] == applied[last] and after[ok] == 0
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # the daemon's handler: a clean stop
        assert await asyncio.wait_for(main, 10) == 0
