"""The client listener's bounds on loopback, with a hand-rolled BGP speaker: the idle hold after
max_prefixes, the cap on connections before Established, one takeover candidate at a time, who
may connect, and the output limit of a connection (on an in-memory transport)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from bgpmux.config import Config, parse_config
from bgpmux.core import Core
from bgpmux.core.runner import CoreRunner
from bgpmux.engines.fake import FakeEngine
from bgpmux.session import DownReason, State
from bgpmux.session.events import SessionDown
from bgpmux.transport import client_set, listeners
from bgpmux.transport.connection import BGPConnection
from bgpmux.transport.listeners import (
    ClientServer,
    is_host_address,
    normalize_ip,
)
from bgpmux.transport.profiles import client_session_config
from bgpmux.wire import (
    IPV4_UNICAST,
    KEEPALIVE,
    Capabilities,
    CeaseSubcode,
    ErrorCode,
    Framer,
    GracefulRestart,
    Message,
    Notification,
    Open,
    PathAttributes,
    Update,
    decode_body,
    encode_message,
    encode_update,
    prefix_from_str,
)
from bgpmux.wire.constants import MAX_EXTENDED_MESSAGE_LEN

from .test_daemon_health import free_port

CLIENT_AS = 64514


def make_config(port: int, **client: Any) -> Config:
    doc = {
        "node": {"asn": 64512, "router_id": "10.0.0.2", "address": "10.0.0.2"},
        "engine": "native",
        "upstreams": [{"name": "tor", "address": "10.0.0.1", "asn": 65000}],
        "clients": [
            {
                "name": "metallb",
                "listen": f"127.0.0.1:{port}",
                "asn": CLIENT_AS,
                "accept": ["198.51.100.0/24 le 32"],
                "max_prefixes": 2,
                **client,
            }
        ],
    }
    return parse_config(yaml.safe_dump(doc), env={})


class Speaker:
    """One TCP connection speaking just enough BGP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = Framer(MAX_EXTENDED_MESSAGE_LEN)
        self.received: list[Message] = []

    @classmethod
    async def connect(cls, port: int) -> Speaker:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def send_open(self, graceful: bool = False) -> None:
        gr = GracefulRestart(120, families=((IPV4_UNICAST, True),)) if graceful else None
        caps = Capabilities(
            multiprotocol=(IPV4_UNICAST,), four_octet_as=CLIENT_AS, graceful_restart=gr
        )
        self.send(encode_message(Open(CLIENT_AS, 90, "198.51.100.200", caps)))
        self.send(encode_message(KEEPALIVE))

    async def until(self, wanted: type, timeout: float = 5.0) -> Message | None:
        """Read until a ``wanted`` message arrives (returned) or the connection ends (None)."""
        async with asyncio.timeout(timeout):
            while True:
                for msg in self.received:
                    if isinstance(msg, wanted):
                        self.received.remove(msg)
                        return msg
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.received += [decode_body(k, b) for k, b in self.framer.feed(data)]

    def close(self) -> None:
        self.writer.close()


def announce(*prefixes: str) -> bytes:
    attrs = PathAttributes(next_hop=bytes((127, 0, 0, 1)), as_path=((2, (CLIENT_AS,)),))
    nlri = tuple(prefix_from_str(p)[1] for p in prefixes)
    return encode_update(Update(attributes=attrs, nlri=nlri))


@pytest.fixture
async def serving(request: pytest.FixtureRequest) -> AsyncIterator[tuple[ClientServer, int]]:
    port = free_port()
    config = make_config(port, **getattr(request, "param", {}))
    loop = asyncio.get_running_loop()
    runner = CoreRunner(Core(config, FakeEngine(), loop.time()))
    core = asyncio.create_task(runner.run())
    server = ClientServer(config, runner)
    await server.start()
    try:
        yield server, port
    finally:
        await server.stop()
        core.cancel()


async def established(port: int, graceful: bool = False) -> Speaker:
    speaker = await Speaker.connect(port)
    speaker.send_open(graceful)
    assert isinstance(await speaker.until(Open), Open)
    assert await speaker.until(type(KEEPALIVE)) is not None
    return speaker


async def test_max_prefixes_holds_the_client_down_until_the_hold_ends_or_a_reload(
    serving: tuple[ClientServer, int],
) -> None:
    server, port = serving
    speaker = await established(port)
    speaker.send(announce("198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"))
    cease = await speaker.until(Notification)
    assert isinstance(cease, Notification)
    assert (cease.code, cease.subcode) == (ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED)
    speaker.close()
    loop = asyncio.get_running_loop()
    assert server.idle_hold("metallb", loop.time()) == pytest.approx(60, abs=1)
    for _ in range(3):  # refused at once with the same Cease, however often it dials
        again = await Speaker.connect(port)
        note = await again.until(Notification)
        assert note == cease
        assert await again.until(Open) is None  # and closed, no OPEN
        again.close()
    refused = server.refused
    client_set.reloaded(server, None, server.config)
    assert server.idle_hold("metallb", loop.time()) == 0
    back = await established(port)
    back.close()
    assert server.refused == refused


async def test_a_second_breach_soon_after_doubles_the_hold(
    serving: tuple[ClientServer, int],
) -> None:
    server, port = serving
    loop = asyncio.get_running_loop()
    for expected in (60, 120):
        speaker = await established(port)
        speaker.send(announce("198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"))
        assert isinstance(await speaker.until(Notification), Notification)
        speaker.close()
        assert server.idle_hold("metallb", loop.time()) == pytest.approx(expected, abs=1)
        server.holds["metallb"].until = loop.time()  # as if the hold had run out


@pytest.mark.parametrize("serving", [{"max_prefixes_restart": 0}], indirect=True)
async def test_max_prefixes_restart_zero_holds_until_a_reload(
    serving: tuple[ClientServer, int],
) -> None:
    server, port = serving
    speaker = await established(port)
    speaker.send(announce("198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"))
    assert isinstance(await speaker.until(Notification), Notification)
    assert server.idle_hold("metallb", asyncio.get_running_loop().time()) == float("inf")


@pytest.mark.parametrize("serving", [{"max_prefixes_action": "block"}], indirect=True)
async def test_block_keeps_the_session(serving: tuple[ClientServer, int]) -> None:
    server, port = serving
    speaker = await established(port)
    speaker.send(announce("198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"))
    with pytest.raises(TimeoutError):
        await speaker.until(Notification, timeout=0.5)
    assert server.current["metallb"].session.state is State.ESTABLISHED
    speaker.close()


async def test_connections_before_established_are_capped_per_listener(
    serving: tuple[ClientServer, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the collision rules, one client's listener holds at most two such connections;
    # the cap guards listeners shared by many clients. Lowered here to see it act.
    server, port = serving
    monkeypatch.setattr(listeners, "MAX_PENDING_PER_LISTENER", 1)
    listen = f"127.0.0.1:{port}"
    idle = await Speaker.connect(port)
    assert isinstance(await idle.until(Open), Open)
    assert server.pending_on(listen) == 1
    extra = await Speaker.connect(port)
    note = await extra.until(Notification)
    assert isinstance(note, Notification)
    assert (note.code, note.subcode) == (ErrorCode.CEASE, CeaseSubcode.OUT_OF_RESOURCES)
    idle.close()
    for _ in range(50):  # its session ends, and the listener takes connections again
        if not server.pending_on(listen):
            break
        await asyncio.sleep(0.02)
    late = await established(port)
    assert not server.pending_on(listen)
    late.close()


async def test_a_newer_connection_replaces_one_still_opening(
    serving: tuple[ClientServer, int],
) -> None:
    _server, port = serving
    older = await Speaker.connect(port)
    assert isinstance(await older.until(Open), Open)
    newer = await established(port)
    note = await older.until(Notification)
    assert isinstance(note, Notification)
    assert note.subcode == CeaseSubcode.CONNECTION_COLLISION_RESOLUTION
    older.close()
    newer.close()


async def test_one_takeover_candidate_at_a_time(serving: tuple[ClientServer, int]) -> None:
    server, port = serving
    first = await established(port, graceful=True)
    candidates = []
    for _ in range(3):
        candidate = await Speaker.connect(port)
        assert isinstance(await candidate.until(Open), Open)  # held as a possible restart
        candidates.append(candidate)
    for old in candidates[:-1]:  # each was replaced by the next, with Cease/Collision
        note = await old.until(Notification)
        assert isinstance(note, Notification)
        assert note.subcode == CeaseSubcode.CONNECTION_COLLISION_RESOLUTION
    conn = server.takeovers["metallb"]
    assert conn.session.config.open_hold_time == 10.0  # a short OpenSent hold for candidates
    assert server.current["metallb"].session.state is State.ESTABLISHED
    for speaker in (first, *candidates):
        speaker.close()


def test_who_may_connect() -> None:
    config = make_config(1791)
    server = ClientServer(config, runner=None)  # type: ignore[arg-type]
    clients = list(config.clients)
    assert server.match(clients, "127.0.0.1") is clients[0]
    assert server.match(clients, "10.0.0.2") is clients[0]  # node.address
    assert server.match(clients, "203.0.113.7") is None  # not this host's
    pinned = make_config(1791, peer_address="203.0.113.7")
    assert server.match(list(pinned.clients), "203.0.113.7") is pinned.clients[0]
    assert normalize_ip("::ffff:127.0.0.1") == "127.0.0.1"
    assert is_host_address("::1") and not is_host_address("not an address")


class StuckTransport(asyncio.Transport):
    """A transport whose peer never reads: everything written stays in its buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()
        self.closed = self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buffer += data

    def get_write_buffer_size(self) -> int:
        return len(self.buffer)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_reading(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


async def test_output_over_the_limit_ends_the_session_with_out_of_resources() -> None:
    config = make_config(1791, output_limit_mib=1)
    events: list[object] = []
    conn = BGPConnection(
        client_session_config(config, config.clients[0]),
        lambda _conn, event: events.append(event),
        logging.LoggerAdapter(logging.getLogger("test")),
        output_limit=config.clients[0].output_limit_mib * 1024 * 1024,
    )
    transport = StuckTransport()
    conn.connection_made(transport)
    caps = Capabilities(multiprotocol=(IPV4_UNICAST,), four_octet_as=CLIENT_AS)
    conn.data_received(encode_message(Open(CLIENT_AS, 90, "198.51.100.200", caps)))
    conn.data_received(encode_message(KEEPALIVE))
    assert conn.session.state is State.ESTABLISHED
    update = announce(*[f"198.51.100.{i}/32" for i in range(1, 200)])
    for _ in range(2 * 1024 * 1024 // len(update)):
        if conn.closed:
            break
        conn.send([update])
    assert conn.closed and transport.closed
    (down,) = [e for e in events if isinstance(e, SessionDown)]
    assert down.reason is DownReason.OUTPUT_LIMIT
    assert down.notification is not None
    assert (down.notification.code, down.notification.subcode) == (
        ErrorCode.CEASE,
        CeaseSubcode.OUT_OF_RESOURCES,
    )
    assert transport.buffer.endswith(encode_message(down.notification))
