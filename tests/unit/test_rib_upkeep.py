"""The core's upkeep of its tables: a compaction put off by the once-a-second limit still
runs (on the core's timer), a reload reads the routes as they were without copying them, and
an ADD-PATH client is not sent a path again that did not change."""

from __future__ import annotations

import sys

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import ClientEstablished, ClientUpdate, Reconfigure, UpstreamEstablished
from bgpmux.core.routing import COMPACT_AFTER_CHANGES
from bgpmux.engines.fake import FakeEngine
from bgpmux.rib.loc_rib import LocRib
from bgpmux.wire import IPV4_UNICAST

from .core_helpers import CONFIG, FakeLink, announce, withdraw
from .test_add_path import A_NH, _routes, dual  # noqa: F401  (``dual``: a fixture)


def test_a_compaction_put_off_runs_on_the_timer() -> None:
    """Withdrawals in small flushes within a second compact nothing at once; the core's timer
    asks for the compaction it owes, and the emptied table gives its memory back."""
    text = CONFIG.replace("max_prefixes: 10,", "max_prefixes: 100000,")
    config = parse_config(
        text.replace("initial_sync_timeout: 30", "initial_sync_timeout: 0.5"), env={}
    )
    core = Core(config, FakeEngine(), now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    core.handle(ClientEstablished("calico", FakeLink(), False), 0.0)
    core.flush(0.0)
    for _ in range(5):
        timer = core.get_timer()
        if timer is None or timer >= 1.0:
            break
        core.handle_timer(timer)  # the initial sync ends: its timer is out of the way
        core.flush(timer)
    assert core.sync.initial_sync_done and core.get_timer() is None
    prefixes = [f"10.244.{i >> 8}.{i & 255}/32" for i in range(40_000)]
    core.handle(ClientUpdate("calico", announce(*prefixes)), 1.0)
    core.flush(1.0)  # compacts (many changes): the next one is due a second later
    rib = core.clients["calico"].channel.rib
    step = COMPACT_AFTER_CHANGES - 100
    now = 1.0
    for i in range(0, 39_900, step):
        now += 0.01
        core.handle(ClientUpdate("calico", withdraw(*prefixes[i : i + step])), now)
        core.flush(now)
    assert now < 2.0 and rib.count() < 1000
    big = sys.getsizeof(rib.live[IPV4_UNICAST])
    timer = core.get_timer()
    assert timer is not None and now < timer <= 2.0
    core.handle_timer(timer)
    assert sys.getsizeof(rib.live[IPV4_UNICAST]) < big // 8
    assert core.get_timer() is None or core.get_timer() > timer  # nothing owed any more


def test_a_reload_reads_the_old_routes_without_copying_them(
    monkeypatch: pytest.MonkeyPatch, setup: tuple[Core, FakeEngine, FakeLink, FakeLink]
) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.0.1/32", "10.244.0.2/32")), 1.0)
    core.flush(1.0)
    table = core.clients["calico"].channel.rib.live[IPV4_UNICAST]
    seen: list[object] = []
    decide = LocRib.decide

    def spy(self: LocRib, family, prefixes, changed=None, path=None, old=None):  # type: ignore[no-untyped-def]
        seen.append(old)
        return decide(self, family, prefixes, changed, path, old)

    monkeypatch.setattr(LocRib, "decide", spy)
    new = CONFIG.replace("priority: 100,", "priority: 120,")
    core.handle(Reconfigure(parse_config(new, env={})), 2.0)
    core.flush(2.0)
    assert any(old is table for old in seen)  # the very table, not a copy of it
    assert core.clients["calico"].channel.rib.live[IPV4_UNICAST] is not table
    assert sorted(engine.table(IPV4_UNICAST)) == ["10.244.0.1/32", "10.244.0.2/32"]


def test_an_add_path_client_is_not_sent_an_unchanged_path_again(
    dual: tuple[Core, FakeEngine, FakeLink, FakeLink],  # noqa: F811
) -> None:
    """An upstream sending the same path again (a refresh) changes nothing: neither the
    ADD-PATH client nor the best-path one gets an UPDATE."""
    core, _engine, calico, plain = dual
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16"), 1.0)
    core.flush(1.0)
    assert calico.sent and plain.sent
    calico.sent.clear()
    plain.sent.clear()
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16"), 2.0)
    core.flush(2.0)
    assert calico.sent == [] and plain.sent == []
