"""The native engine's upstream status on loopback, against a hand-rolled ToR: its
``SessionFacts`` (identity, negotiated capabilities and timers, the last error) and its message
counters, NOTIFICATIONs by code and subcode."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import yaml

from bgpmux.config import parse_config
from bgpmux.core.port import UpstreamStatus
from bgpmux.engines.native import NativeEngine
from bgpmux.session import State
from bgpmux.wire import (
    IPV4_UNICAST,
    KEEPALIVE,
    Capabilities,
    Keepalive,
    Notification,
    Open,
    encode_message,
)

from .test_daemon_health import free_port
from .test_listener_limits import Speaker


class Events:
    """The core's side of the engine port, recording only what this test needs."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.calls.append(name)

    def congested(self) -> bool:
        return False


async def status_until(engine: NativeEngine, check: Any) -> UpstreamStatus:
    for _ in range(250):
        [status] = engine.status()
        if check(status):
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"status never matched: {status}")


async def test_native_upstream_facts_and_counters() -> None:
    port = free_port()
    accepted: asyncio.Queue[Speaker] = asyncio.Queue()

    async def tor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(Speaker(reader, writer))

    server = await asyncio.start_server(tor, "127.0.0.1", port)
    doc = {
        "node": {"asn": 64512, "router_id": "10.0.0.2", "address": "127.0.0.1"},
        "engine": "native",
        "upstreams": [{"name": "tor", "address": "127.0.0.1", "port": port, "asn": 65000,
                       "hold_time": 9}],
        "clients": [{"name": "calico", "listen": "127.0.0.1:1790", "asn": 64512}],
    }  # fmt: skip
    engine = NativeEngine(parse_config(yaml.safe_dump(doc), env={}), Events())  # type: ignore[arg-type]
    await engine.start()
    try:
        speaker = await asyncio.wait_for(accepted.get(), 10)
        assert isinstance(await speaker.until(Open), Open)
        caps = Capabilities(multiprotocol=(IPV4_UNICAST,), route_refresh=True,
                            four_octet_as=65000)  # fmt: skip
        speaker.send(encode_message(Open(65000, 30, "10.0.0.1", caps)))
        speaker.send(encode_message(KEEPALIVE))
        assert await speaker.until(Keepalive) is not None
        up = await status_until(engine, lambda s: s.state is State.ESTABLISHED)
        facts = up.facts
        assert (facts.address, facts.asn, facts.local_address) == ("127.0.0.1", 65000, "127.0.0.1")
        assert facts.capabilities == ("ipv4-unicast", "route-refresh", "4-octet-as")
        assert (facts.hold_time, facts.keepalive, facts.graceful_restart) == (9, 3, "")
        assert up.messages is not None
        assert up.messages.messages_sent["OPEN"] == 1 and up.messages.messages_received["OPEN"] == 1

        speaker.send(encode_message(Notification(6, 4)))  # Cease/Administrative Reset
        down = await status_until(engine, lambda s: s.facts.last_error)
        assert down.facts.last_error == "received Cease/Administrative Reset"
        assert down.facts.capabilities == () and down.facts.hold_time is None
        assert down.messages is not None
        assert down.messages.notifications_received == {(6, 4): 1}
        assert down.messages.messages_received["NOTIFICATION"] == 1
        speaker.close()
    finally:
        await engine.stop()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def test_native_bad_peer_as_is_an_open_error() -> None:
    """A ToR answering in another AS than configured gets OPEN Message Error/Bad Peer AS: the
    last error is one that keeps /readyz not ready (``is_open_error``)."""
    from bgpmux.session.describe import is_open_error

    port = free_port()
    accepted: asyncio.Queue[Speaker] = asyncio.Queue()

    async def tor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(Speaker(reader, writer))

    server = await asyncio.start_server(tor, "127.0.0.1", port)
    doc = {
        "node": {"asn": 64512, "router_id": "10.0.0.2", "address": "127.0.0.1"},
        "engine": "native",
        "upstreams": [{"name": "tor", "address": "127.0.0.1", "port": port, "asn": 65000}],
        "clients": [{"name": "calico", "listen": "127.0.0.1:1790", "asn": 64512}],
    }
    engine = NativeEngine(parse_config(yaml.safe_dump(doc), env={}), Events())  # type: ignore[arg-type]
    await engine.start()
    try:
        speaker = await asyncio.wait_for(accepted.get(), 10)
        assert isinstance(await speaker.until(Open), Open)
        caps = Capabilities(multiprotocol=(IPV4_UNICAST,), four_octet_as=65099)
        speaker.send(encode_message(Open(65099, 30, "10.0.0.1", caps)))
        down = await status_until(engine, lambda s: s.facts.last_error)
        assert down.facts.last_error.startswith("sent Open Message/Bad Peer As")
        assert is_open_error(down.facts.last_error)
        speaker.close()
    finally:
        await engine.stop()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
