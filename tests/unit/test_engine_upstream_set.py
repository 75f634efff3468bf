"""The engines' side of upstreams added and removed on reload (``add_upstream``,
``remove_upstream``): what each engine keeps, writes and queues, and nothing changed on
error. No daemon runs here, no socket is opened (the interop test drives the real ones)."""

from __future__ import annotations

import asyncio
import signal
from ipaddress import ip_address
from pathlib import Path

import pytest

from bgpmux.config import Config, Upstream, parse_config
from bgpmux.engines import exabgp_text as text
from bgpmux.engines.exabgp import ExaBGPEngine
from bgpmux.engines.gobgp import GoBGPEngine
from bgpmux.engines.native import NativeEngine
from bgpmux.session import State
from bgpmux.wire.attributes import PathAttributes
from bgpmux.wire.constants import IPV4_UNICAST
from bgpmux.wire.prefix import prefix_from_str

from .test_engine_exabgp import RecordingEvents

ONE = """
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2}
upstreams:
  - {name: tor, address: 10.0.0.1, asn: 65000}
clients: [{name: calico, listen: "127.0.0.1:1790", asn: 64512}]
"""
TWO = ONE.replace(
    "  - {name: tor, address: 10.0.0.1, asn: 65000}\n",
    "  - {name: tor, address: 10.0.0.1, asn: 65000}\n"
    "  - {name: tor-b, address: 10.0.0.9, asn: 65000}\n",
)


def config(text_: str) -> Config:
    return parse_config(text_, env={})


def tor_b(password_file: str | None = None) -> Upstream:
    b = next(u for u in config(TWO).upstreams if u.name == "tor-b")
    if password_file is None:
        return b
    return b.model_copy(update={"password_file": Path(password_file)})


def test_exabgp_add_then_remove_rewrites_its_config(tmp_path: Path) -> None:
    events = RecordingEvents()
    engine = ExaBGPEngine(config(ONE), events, tmp_path)
    engine._handle(text.StateChange("10.0.0.1", "up"), 1.0)
    engine.add_upstream(tor_b())
    written = engine.config_path.read_text()
    assert "neighbor 10.0.0.1 {" in written and "neighbor 10.0.0.9 {" in written
    assert [(s.name, s.state) for s in engine.status()] == [
        ("tor", State.ESTABLISHED), ("tor-b", State.IDLE),
    ]  # fmt: skip
    engine._handle(text.StateChange("10.0.0.9", "up"), 2.0)
    assert [args[0] for name, args in events.posts if name == "established"] == ["tor", "tor-b"]
    engine.remove_upstream("tor")
    written = engine.config_path.read_text()
    assert "neighbor 10.0.0.1 {" not in written and "neighbor 10.0.0.9 {" in written
    assert [s.name for s in engine.status()] == ["tor-b"]
    # what ExaBGP still says of the removed neighbor is no news to the core
    engine._handle(text.StateChange("10.0.0.1", "down", "removed"), 3.0)
    assert [name for name, _args in events.posts] == ["established", "established"]
    assert list(engine._queue) == []  # reloads (SIGUSR1 to a running ExaBGP), no command


class FakeProcess:
    """An ExaBGP that runs: records the signals it is sent."""

    returncode = None

    def __init__(self) -> None:
        self.signals: list[int] = []

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)


async def test_exabgp_remove_withdraws_then_reloads(tmp_path: Path) -> None:
    engine = ExaBGPEngine(config(TWO), RecordingEvents(), tmp_path)
    engine._handle(text.StateChange("10.0.0.1", "up"), 1.0)
    prefix = prefix_from_str("10.244.1.0/26")[1]
    engine.announce(["tor", "tor-b"], IPV4_UNICAST, PathAttributes(), bytes(4), [prefix])
    engine._queue.clear()
    proc = engine._proc = FakeProcess()  # type: ignore[assignment]
    engine.remove_upstream("tor")
    # ExaBGP closes a removed neighbor without a NOTIFICATION: what it was sent goes first
    assert list(engine._queue) == ["neighbor 10.0.0.1 withdraw attributes nlri 10.244.1.0/26"]
    await asyncio.sleep(0.2)
    assert proc.signals == []  # the withdrawal is not answered yet
    engine.counters["commands_sent"] += 1
    engine.counters["commands_done"] += 1
    await asyncio.sleep(0.2)
    assert proc.signals == [signal.SIGUSR1]
    engine._proc = None


async def test_exabgp_a_reload_that_removes_and_adds_signals_once_after_the_withdrawals(
    tmp_path: Path,
) -> None:
    engine = ExaBGPEngine(config(TWO), RecordingEvents(), tmp_path)
    engine._handle(text.StateChange("10.0.0.1", "up"), 1.0)
    prefix = prefix_from_str("10.244.1.0/26")[1]
    engine.announce(["tor", "tor-b"], IPV4_UNICAST, PathAttributes(), bytes(4), [prefix])
    engine._queue.clear()
    proc = engine._proc = FakeProcess()  # type: ignore[assignment]
    engine.remove_upstream("tor")
    tor_c = tor_b().model_copy(update={"name": "tor-c", "address": ip_address("10.0.0.7")})
    engine.add_upstream(tor_c)  # same reload: must not let ExaBGP drop tor before its withdrawal
    engine.reset_upstream(tor_b().model_copy(update={"hold_time": 30}))
    await asyncio.sleep(0.2)
    assert proc.signals == []
    engine.counters["commands_sent"] += 1
    engine.counters["commands_done"] += 1
    await asyncio.sleep(0.2)
    assert proc.signals == [signal.SIGUSR1]  # one reload for the three changes
    engine.add_upstream(
        tor_b().model_copy(update={"name": "tor-d", "address": ip_address("10.0.0.8")})
    )
    assert proc.signals == [signal.SIGUSR1] * 2  # nothing waits any more: at once
    engine._proc = None


def test_exabgp_add_with_an_unreadable_password_changes_nothing(tmp_path: Path) -> None:
    engine = ExaBGPEngine(config(ONE), RecordingEvents(), tmp_path)
    engine.write_config()
    before = engine.config_path.read_text()
    with pytest.raises(OSError):
        engine.add_upstream(tor_b("/nope"))
    assert [u.name for u in engine.config.upstreams] == ["tor"]
    assert list(engine.addresses) == ["tor"] and engine.config_path.read_text() == before


async def test_native_add_and_remove() -> None:
    engine = NativeEngine(config(ONE), RecordingEvents())
    with pytest.raises(OSError):
        engine.add_upstream(tor_b("/nope"))
    assert [u.name for u in engine.config.upstreams] == ["tor"] and not engine.upstreams
    engine._stopping = True  # no dial: nothing listens here
    engine.add_upstream(tor_b())
    assert [s.name for s in engine.status()] == ["tor", "tor-b"]
    engine.remove_upstream("tor-b")
    assert [s.name for s in engine.status()] == ["tor"] and "tor-b" not in engine.upstreams
    await asyncio.sleep(0)


async def test_gobgp_add_waits_for_the_table_and_remove_deletes_the_peer() -> None:
    engine = GoBGPEngine(config(ONE), RecordingEvents())
    with pytest.raises(OSError):
        engine.add_upstream(tor_b("/nope"))
    assert list(engine.peers) == ["tor"]
    engine.add_upstream(tor_b())
    assert list(engine.peers) == ["tor", "tor-b"] and list(engine._ops) == []  # no AddPeer yet
    engine.peers["tor-b"].added = True  # as after the core's table and End-of-RIB
    engine.remove_upstream("tor-b")
    assert list(engine._ops) == [("delete", "10.0.0.9")]
    assert [s.name for s in engine.status()] == ["tor"]
    assert [u.name for u in engine.config.upstreams] == ["tor"]
