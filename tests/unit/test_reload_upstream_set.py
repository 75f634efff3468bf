"""Upstreams added and removed on reload: ``reload.plan`` says which, the core adds or removes
them through the engine without touching the other upstreams (fake engine, no sockets)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from bgpmux.config import Config, parse_config
from bgpmux.core import Core
from bgpmux.core.events import (
    ClientEstablished,
    ClientUpdate,
    Reconfigure,
    RoutesQuery,
    UpstreamDown,
    UpstreamEndOfRib,
    UpstreamEstablished,
    UpstreamRoutes,
)
from bgpmux.core.reload import plan
from bgpmux.engines.fake import FakeEngine
from bgpmux.placement import place
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import CONFIG, EOR_V4, EOR_V6, FakeLink, announce, attrs

ONE = CONFIG
TWO = CONFIG.replace(
    "upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]",
    "upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}, "
    "{name: tor-b, address: 10.0.0.9, asn: 65000}]",
)
ONLY_B = CONFIG.replace(
    "upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]",
    "upstreams: [{name: tor-b, address: 10.0.0.9, asn: 65000}]",
)


def placed(text: str) -> Config:
    return place(parse_config(text, env={}), lambda version: ip_address("10.0.0.1")).config


# ------------------------------------------------------------------ plan


def test_plan_names_the_upstreams_added_and_removed() -> None:
    added = plan(placed(ONE), placed(TWO))
    assert [u.name for u in added.upstreams_added] == ["tor-b"]
    assert added.upstreams_removed == [] and added.pending == [] and added.resets == []
    removed = plan(placed(TWO), placed(ONLY_B))
    assert removed.upstreams_removed == ["tor"] and removed.upstreams_added == []
    assert removed.pending == [] and removed.resets == []
    assert [u.name for u in removed.upstream_policies] == ["tor-b"]  # kept: its policy applies
    both = plan(placed(ONE), placed(ONLY_B))
    assert [u.name for u in both.upstreams_added] == ["tor-b"]
    assert both.upstreams_removed == ["tor"]


def test_a_pure_reorder_is_no_change() -> None:
    a, b = (
        "{name: tor, address: 10.0.0.1, asn: 65000}",
        "{name: tor-b, address: 10.0.0.9, asn: 65000}",
    )
    swapped = TWO.replace(f"[{a}, {b}]", f"[{b}, {a}]")
    assert swapped != TWO
    result = plan(placed(TWO), placed(swapped))
    assert result.upstreams_added == [] and result.upstreams_removed == []
    assert result.pending == [] and result.resets == []


def test_node_cidrs_add_or_remove_an_upstream_on_this_node() -> None:
    elsewhere = TWO.replace(
        "{name: tor-b, address: 10.0.0.9, asn: 65000}",
        "{name: tor-b, address: 10.0.0.9, asn: 65000, node_cidrs: [10.9.0.0/16]}",
    )
    result = plan(placed(TWO), placed(elsewhere))  # tor-b no longer applies on this node
    assert result.upstreams_removed == ["tor-b"] and result.pending == []
    result = plan(placed(elsewhere), placed(TWO))
    assert [u.name for u in result.upstreams_added] == ["tor-b"] and result.pending == []


# ------------------------------------------------------------------ the core


def tor_route(core: Core, name: str, prefix: str, now: float) -> None:
    a = attrs(as_path=(65000,), next_hop=ip_address("10.0.0.1").packed)
    core.handle(
        UpstreamRoutes(name, IPV4_UNICAST, a, a.next_hop, [prefix_from_str(prefix)[1]]), now
    )


def synced_core() -> tuple[Core, FakeEngine, FakeLink]:
    """A core with ``tor`` up and synced, calico up with a route and receiving tor's."""
    engine = FakeEngine(["tor"])
    core = Core(placed(ONE), engine, now=0.0)
    link = FakeLink()
    core.handle(ClientEstablished("calico", link, False), 0.0)
    core.handle(ClientUpdate("calico", announce("10.244.1.0/24")), 0.1)
    core.handle(ClientUpdate("calico", EOR_V4), 0.1)
    core.handle(ClientUpdate("calico", EOR_V6), 0.1)
    core.handle(UpstreamEstablished("tor"), 0.2)
    tor_route(core, "tor", "203.0.113.0/24", 0.3)
    core.handle(UpstreamEndOfRib("tor", IPV4_UNICAST), 0.3)
    core.handle(UpstreamEndOfRib("tor", IPV6_UNICAST), 0.3)
    core.flush(0.3)
    core.handle_timer(40.0)  # past every sync deadline
    core.flush(40.0)
    assert engine.eor_sent("tor", IPV4_UNICAST)
    assert "203.0.113.0/24" in link.table()
    return core, engine, link


def test_an_added_upstream_gets_the_table_and_end_of_rib_the_others_nothing() -> None:
    core, engine, _link = synced_core()
    engine.clear()
    assert core.handle(Reconfigure(placed(TWO)), 41.0) == []
    assert [u.name for u in engine.added] == ["tor-b"]
    assert [u.name for u in core.config.upstreams] == ["tor", "tor-b"]
    assert engine.calls == []  # nothing until its session is up
    core.handle(UpstreamEstablished("tor-b"), 42.0)
    core.flush(42.0)
    assert "10.244.1.0/24" in engine.table(IPV4_UNICAST, "tor-b")
    assert engine.eor_sent("tor-b", IPV4_UNICAST) and engine.eor_sent("tor-b", IPV6_UNICAST)
    assert all(call.upstreams == ("tor-b",) for call in engine.announces)  # tor: nothing again
    assert all(call.upstream == "tor-b" for call in engine.eors)
    tor, tor_b = core.upstreams["tor"], core.upstreams["tor-b"]
    assert tor.up and tor.flaps == 0
    assert tor_b.channel.source.order > tor.channel.source.order  # ranks after, own path id
    # a new client route goes to both
    engine.clear()
    core.handle(ClientUpdate("calico", announce("10.244.2.0/24")), 43.0)
    core.flush(43.0)
    assert {u for call in engine.announces for u in call.upstreams} == {"tor", "tor-b"}


def test_a_removed_upstream_ends_and_its_routes_leave_the_clients() -> None:
    core, engine, link = synced_core()
    core.handle(Reconfigure(placed(TWO)), 41.0)
    core.handle(UpstreamEstablished("tor-b"), 42.0)
    tor_route(core, "tor-b", "198.18.0.0/24", 42.5)
    core.flush(42.5)
    assert "198.18.0.0/24" in link.table()
    engine.clear()
    assert core.handle(Reconfigure(placed(ONE)), 50.0) == []
    core.flush(50.0)
    assert engine.removed == ["tor-b"]
    assert "tor-b" not in core.upstreams and "tor-b" not in engine.states
    assert [u.name for u in core.config.upstreams] == ["tor"]
    table = link.table()
    assert "198.18.0.0/24" not in table and "203.0.113.0/24" in table  # tor's stays
    assert engine.calls == []  # tor was sent nothing again
    assert core.upstreams["tor"].up and core.upstreams["tor"].flaps == 0
    # events the engine had queued for it are ignored, not an error
    assert core.handle(UpstreamDown("tor-b"), 51.0) is None
    # a query naming it is answered: no such upstream (the API's NOT_FOUND)
    assert core.handle(RoutesQuery(upstream="tor-b"), 51.0) == {
        "error": "no upstream named 'tor-b'"
    }
    assert core.handle(RoutesQuery(received_from="tor-b"), 51.0) == {
        "error": "no upstream named 'tor-b'"
    }
    tor_route(core, "tor-b", "198.18.1.0/24", 51.0)
    core.flush(51.0)
    assert "198.18.1.0/24" not in link.table()
    # and it can come back
    assert core.handle(Reconfigure(placed(TWO)), 60.0) == []
    assert "tor-b" in core.upstreams and not core.upstreams_removed


def test_removing_the_first_upstream_keeps_the_second_and_its_routes() -> None:
    core, engine, link = synced_core()
    core.handle(Reconfigure(placed(TWO)), 41.0)
    core.handle(UpstreamEstablished("tor-b"), 42.0)
    tor_route(core, "tor-b", "203.0.113.0/24", 42.5)  # both have it
    core.flush(42.5)
    sent = len(link.sent)
    assert core.handle(Reconfigure(placed(ONLY_B)), 50.0) == []
    core.flush(50.0)
    assert engine.removed == ["tor"]
    assert "203.0.113.0/24" in link.table()  # now tor-b's
    assert len(link.sent) > sent  # the new best path was sent (its attributes are tor-b's)
    assert list(core.upstreams) == ["tor-b"] and core.upstreams["tor-b"].up


def test_an_engine_that_refuses_changes_nothing_and_reports_a_restart() -> None:
    core, engine, _link = synced_core()
    engine.refuse = OSError("password file unreadable")
    pending = core.handle(Reconfigure(placed(ONLY_B)), 41.0)
    assert pending == [
        "upstreams: tor removed (password file unreadable)",
        "upstreams: tor-b added (password file unreadable)",
    ]
    assert list(core.upstreams) == ["tor"] and core.upstreams["tor"].up
    assert [u.name for u in core.config.upstreams] == ["tor"]
    engine.refuse = None
    assert core.handle(Reconfigure(placed(ONLY_B)), 42.0) == []  # the next reload does it
    assert list(core.upstreams) == ["tor-b"]


def test_an_add_path_client_gets_the_added_upstreams_paths_under_their_own_id() -> None:
    core, _engine, _link = synced_core()
    link = FakeLink()
    link.options = replace(link.options, add_path_send=frozenset({IPV4_UNICAST}))
    core.handle(ClientEstablished("metallb", link, False), 40.5)
    core.handle(Reconfigure(placed(TWO)), 41.0)
    core.handle(UpstreamEstablished("tor-b"), 42.0)
    tor_route(core, "tor-b", "203.0.113.0/24", 42.5)
    core.flush(42.5)
    ids = core.client_export._ids
    assert sorted(ids.values()) == [1, 2]
