"""What the config's listen-clash check assumes of the listeners: IPv6 ones are IPv6-only, so
0.0.0.0 and :: on one port bind side by side, and a wildcard beside a specific address does not.
If a listener ever binds ``::`` dual-stack, the first test fails: change ``_listen_clashes``
in config.py with it."""

from __future__ import annotations

import socket
import types
from typing import Any

import pytest
import yaml

from bgpmux.config import Config, parse_config
from bgpmux.metrics import MetricsServer
from bgpmux.transport.listeners import ClientServer
from tests.environment import unavailable


def free_port_on_both_families() -> int:
    for _ in range(20):
        with socket.socket() as v4:
            v4.bind(("0.0.0.0", 0))
            port: int = v4.getsockname()[1]
            with socket.socket(socket.AF_INET6) as v6:
                v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    v6.bind(("::", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no port free on both families")


def config(*listens: str, metrics: str) -> Config:
    doc = {
        "node": {"asn": 64512, "router_id": "10.0.0.2", "address": "127.0.0.1"},
        "upstreams": [{"name": "tor", "address": "127.0.0.1", "asn": 65000}],
        "clients": [
            {"name": f"c{i}", "listen": listen, "asn": 64512} for i, listen in enumerate(listens)
        ],
        "metrics": {"listen": metrics},
    }
    return parse_config(yaml.safe_dump(doc), env={})


@pytest.fixture(autouse=True)
def _needs_ipv6() -> None:
    if not socket.has_ipv6:
        unavailable("no IPv6")
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", 0))
        except OSError:
            unavailable("no IPv6 loopback")


async def test_ipv4_and_ipv6_wildcards_share_a_port() -> None:
    port, metrics_port = free_port_on_both_families(), free_port_on_both_families()
    # accepted by the check, and bound side by side
    cfg = config(f"0.0.0.0:{port}", f"[::]:{port}", metrics=f"[::]:{metrics_port}")
    nothing: Any = None
    core: Any = types.SimpleNamespace()
    clients = ClientServer(cfg, nothing)
    metrics = MetricsServer("0.0.0.0", metrics_port, core, clients, nothing)
    metrics6 = MetricsServer("::", metrics_port, core, clients, nothing)
    try:
        await clients.start()
        await metrics.start()
        await metrics6.start()
        assert len(clients.servers) == 2
    finally:
        await clients.stop()
        await metrics.stop()
        await metrics6.stop()


async def test_a_wildcard_beside_a_specific_address_cannot_bind() -> None:
    # what the check refuses, bound by hand: the second bind fails
    port = free_port_on_both_families()
    nothing: Any = None
    first = ClientServer(config(f"0.0.0.0:{port}", metrics="127.0.0.1:1"), nothing)
    second = ClientServer(config(f"127.0.0.1:{port}", metrics="127.0.0.1:1"), nothing)
    try:
        await first.start()
        with pytest.raises(OSError):
            await second.start()
    finally:
        await second.stop()
        await first.stop()
