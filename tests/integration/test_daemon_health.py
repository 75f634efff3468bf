"""The daemon on loopback: a dead core task or engine supervisor fails /healthz and ends the
process non-zero."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest
import yaml

from bgpmux import daemon
from bgpmux.config import Config, parse_config
from bgpmux.core.port import SupervisorTask
from bgpmux.engines.fake import FakeEngine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def loopback_config(tmp_path: Path, metrics_port: int) -> Config:
    """A native-engine config on loopback whose upstream nobody answers (the engine just keeps
    retrying) and whose API socket is in ``tmp_path``."""
    doc = {
        "node": {"asn": 64512, "router_id": "10.0.0.2", "address": "127.0.0.1"},
        "engine": "native",
        "upstreams": [{"name": "tor", "address": "127.0.0.1", "port": free_port(), "asn": 65000}],
        "clients": [{"name": "calico", "listen": f"127.0.0.1:{free_port()}", "asn": 64512}],
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "api": {"listen": f"unix:{tmp_path / 'api.sock'}"},
    }
    return parse_config(yaml.safe_dump(doc), env={})


async def http_status(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


async def wait_healthy(port: int) -> None:
    """Wait (5 s at most) until bgpmux's /healthz on ``port`` answers 200."""
    for _ in range(100):
        await asyncio.sleep(0.05)
        try:
            if await http_status(port, "/healthz") == 200:
                return
        except OSError:
            continue
    raise AssertionError("bgpmux did not come up")


async def test_core_task_death_fails_healthz_and_exits_non_zero(tmp_path: Path) -> None:
    metrics_port = free_port()
    config = loopback_config(tmp_path, metrics_port)
    main = asyncio.create_task(daemon._main(config, None))
    await wait_healthy(metrics_port)
    [core] = [t for t in asyncio.all_tasks() if t.get_name() == "core"]
    core.cancel()
    await asyncio.sleep(0.1)
    assert await http_status(metrics_port, "/healthz") == 503
    assert await asyncio.wait_for(main, 10) == 1


class _FailingSupervisorEngine(FakeEngine):
    """An engine whose supervisor task dies with an exception shortly after start."""

    name = "failing"

    async def start(self) -> None:
        async def supervise() -> None:
            await asyncio.sleep(0.3)
            raise RuntimeError("the supervisor broke")

        self.task = asyncio.create_task(supervise(), name="failing-supervisor")

    def supervisors(self) -> list[SupervisorTask]:
        return [self.task]


async def test_engine_supervisor_death_fails_healthz_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_port = free_port()
    config = loopback_config(tmp_path, metrics_port)
    monkeypatch.setattr(daemon, "make_engine", lambda _config, _events: _FailingSupervisorEngine())
    main = asyncio.create_task(daemon._main(config, None))
    for _ in range(100):
        await asyncio.sleep(0.05)
        with contextlib.suppress(OSError):
            if await http_status(metrics_port, "/healthz") == 503:
                break
    else:
        raise AssertionError("/healthz never failed")
    assert await asyncio.wait_for(main, 10) == 1
