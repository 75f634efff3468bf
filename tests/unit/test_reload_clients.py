"""Clients added and removed by a reload (``reload.plan``, ``core.client_set``): the core with
a fake engine and in-memory client links, no sockets."""

from __future__ import annotations

import pytest

from bgpmux.config import ConfigError, parse_config
from bgpmux.core.events import ClientDown, ClientEstablished, ClientUpdate, Reconfigure
from bgpmux.core.reload import plan
from bgpmux.engines.fake import AnnounceCall, WithdrawCall
from bgpmux.wire import IPV4_UNICAST
from bgpmux.wire.prefix import prefix_to_str

from .core_helpers import CONFIG, FakeLink, announce

KUBEVIP = """  - {name: kubevip, listen: "127.0.0.1:1792", asn: 64515, priority: 10,
     accept: ["198.51.100.0/24 le 32"]}
"""
WITH_KUBEVIP = CONFIG + KUBEVIP
WITHOUT_METALLB = CONFIG[: CONFIG.index("  - {name: metallb")]


def config(text: str):  # type: ignore[no-untyped-def]
    return parse_config(text, env={})


def prefixes(calls: list[object]) -> list[tuple[str, str]]:
    """(kind, prefix) for every announce and withdraw call."""
    out = []
    for call in calls:
        if isinstance(call, AnnounceCall | WithdrawCall):
            kind = "announce" if isinstance(call, AnnounceCall) else "withdraw"
            out += [(kind, prefix_to_str(call.family, p)) for p in call.prefixes]
    return out


# ------------------------------------------------------------------ plan


def test_plan_adds_and_removes_clients_by_name() -> None:
    added = plan(config(CONFIG), config(WITH_KUBEVIP))
    assert [c.name for c in added.clients_added] == ["kubevip"]
    assert added.clients_removed == [] and added.pending == []
    assert [c.name for c in added.policies] == ["calico", "metallb"]
    removed = plan(config(CONFIG), config(WITHOUT_METALLB))
    assert removed.clients_removed == ["metallb"] and removed.clients_added == []
    assert removed.pending == []


def test_plan_a_pure_reorder_is_no_change() -> None:
    head, calico_metallb = CONFIG.split("clients:\n")
    calico, metallb = calico_metallb.split("  - {name: metallb")
    reordered = plan(
        config(CONFIG), config(head + "clients:\n  - {name: metallb" + metallb + calico)
    )
    assert reordered.clients_added == [] and reordered.clients_removed == []
    assert reordered.pending == []


def test_plan_replaces_a_client_whose_identity_changed() -> None:
    moved = CONFIG.replace('"127.0.0.1:1791", asn: 64514', '"127.0.0.1:1793", asn: 64516')
    result = plan(config(CONFIG), config(moved))
    assert result.clients_removed == ["metallb"]
    assert [c.name for c in result.clients_added] == ["metallb"]
    assert result.client_fields == {"metallb": ["asn", "listen"]}
    assert [c.name for c in result.policies] == ["calico"] and result.pending == []


# ------------------------------------------------------------------ core


def test_a_client_added_live_exports_without_touching_the_others(setup) -> None:
    core, engine, calico, metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    core.flush(1.0)
    sent_calico, sent_metallb = len(calico.sent), len(metallb.sent)
    engine.calls.clear()
    assert core.handle(Reconfigure(config(WITH_KUBEVIP)), 2.0) == []
    core.flush(2.0)
    assert engine.calls == []  # nothing re-advertised
    assert [c.name for c in core.config.clients] == ["calico", "metallb", "kubevip"]
    kubevip = FakeLink()
    core.handle(ClientEstablished("kubevip", kubevip, False), 3.0)
    core.handle(ClientUpdate("kubevip", announce("198.51.100.7/32")), 3.0)
    core.flush(3.0)
    assert prefixes(engine.calls) == [("announce", "198.51.100.7/32")]
    assert (len(calico.sent), len(metallb.sent)) == (sent_calico, sent_metallb)
    assert calico.shutdowns == metallb.shutdowns == []
    # ranked after every client running (the last tie-breaker)
    orders = [core.clients[n].channel.source.order for n in ("calico", "metallb", "kubevip")]
    assert orders == [0, 1, 2]
    # what the core derives from its peers is rebuilt in one place: the clients' channels
    # first, in their order, then the upstreams' (as at start)
    clients = [p.channel for p in core.clients.values()]
    upstreams = [p.channel for p in core.upstreams.values()]
    assert core._channels == [*clients, *upstreams]
    assert core.for_upstreams.sources == [c.rib for c in clients]


def test_a_client_removed_live_is_ceased_and_its_routes_leave(setup) -> None:
    core, engine, calico, metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.10/32", "198.51.100.20/32")), 1.0)
    core.handle(ClientUpdate("calico", announce("198.51.100.20/32", "10.244.1.0/26")), 1.0)
    core.flush(1.0)
    sent_calico, before = len(calico.sent), len(engine.calls)
    assert core.handle(Reconfigure(config(WITHOUT_METALLB)), 2.0) == []
    core.flush(2.0)
    # only metallb's own prefix is withdrawn; calico already won the shared one
    assert prefixes(engine.calls[before:]) == [("withdraw", "198.51.100.10/32")]
    assert set(engine.table(IPV4_UNICAST)) == {"198.51.100.20/32", "10.244.1.0/26"}
    assert metallb.shutdowns == []  # the listeners alone send the Cease (transport.client_set)
    assert "metallb" not in core.clients and len(core.for_upstreams.sources) == 1
    assert calico.shutdowns == [] and len(calico.sent) == sent_calico
    assert [c.name for c in core.config.clients] == ["calico"]


def test_removing_the_winner_of_a_conflict_promotes_the_other(setup) -> None:
    core, engine, _calico, metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.20/32", med=50)), 1.0)
    core.handle(ClientUpdate("calico", announce("198.51.100.20/32", med=10)), 1.0)
    core.flush(1.0)
    assert engine.table(IPV4_UNICAST)["198.51.100.20/32"][0].med == 10
    without_calico = CONFIG.replace(
        CONFIG[CONFIG.index("  - {name: calico") : CONFIG.index("  - {name: metallb")], ""
    )
    core.handle(Reconfigure(config(without_calico)), 2.0)
    core.flush(2.0)
    assert engine.table(IPV4_UNICAST)["198.51.100.20/32"][0].med == 50
    assert not core.for_upstreams.conflicts
    assert metallb.shutdowns == []


def test_a_client_whose_identity_changed_is_restarted_in_its_place(setup) -> None:
    core, engine, calico, metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.10/32")), 1.0)
    core.flush(1.0)
    moved = CONFIG.replace('"127.0.0.1:1791", asn: 64514', '"127.0.0.1:1793", asn: 64514')
    assert core.handle(Reconfigure(config(moved)), 2.0) == []
    core.flush(2.0)
    assert metallb.shutdowns == []  # the listeners send Cease/Other Configuration Change
    assert engine.table(IPV4_UNICAST) == {}
    assert str(core.config.clients[1].listen) == "127.0.0.1:1793"
    assert core.clients["metallb"].channel.source.order == 1  # keeps its place
    assert core.clients["metallb"].link is None and calico.shutdowns == []
    again = FakeLink()
    core.handle(ClientEstablished("metallb", again, False), 3.0)
    core.handle(ClientUpdate("metallb", announce("198.51.100.10/32")), 3.0)
    core.flush(3.0)
    assert set(engine.table(IPV4_UNICAST)) == {"198.51.100.10/32"}
    core.handle(ClientDown("metallb"), 4.0)  # the new session's events still work
    core.flush(4.0)
    assert engine.table(IPV4_UNICAST) == {}


# ------------------------------------------------------------------ config


def test_reload_watch_is_on_by_default_and_validated() -> None:
    assert config(CONFIG).reload.watch is True
    assert config(CONFIG + "reload: {watch: false}\n").reload.watch is False
    for bad, field in (("{watch: sometimes}", "reload.watch"), ("{wacth: true}", "reload.wacth")):
        with pytest.raises(ConfigError) as raised:
            config(CONFIG + f"reload: {bad}\n")
        assert [path for path, _msg in raised.value.errors] == [field]
