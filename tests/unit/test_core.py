"""The core with a fake engine and in-memory client links: no sockets, no asyncio."""

from __future__ import annotations

import ipaddress

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import (
    ClientDown,
    ClientEstablished,
    ClientUpdate,
    Reconfigure,
    UpstreamDown,
    UpstreamEndOfRib,
    UpstreamEstablished,
    UpstreamRouteRefresh,
    UpstreamRoutes,
)
from bgpmux.engines.fake import FakeEngine
from bgpmux.session import DownReason
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, Update
from bgpmux.wire.prefix import prefix_from_str, prefix_to_str

from .core_helpers import CONFIG, EOR_V4, EOR_V6, FakeLink, announce, attrs, withdraw


def test_accepted_routes_reach_the_upstream_rewritten(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(
        ClientUpdate("calico", announce("10.244.1.0/26", "2001:db8:244:1::/64", med=7)), 1.0
    )
    core.flush(1.0)
    v4 = engine.table(IPV4_UNICAST)
    attrs4, nh4 = v4["10.244.1.0/26"]
    assert nh4 == ipaddress.ip_address("10.0.0.2").packed
    assert attrs4.as_path_flat() == (64512,)
    assert attrs4.local_pref is None and attrs4.med == 7
    _attrs6, nh6 = engine.table(IPV6_UNICAST)["2001:db8:244:1::/64"]
    assert nh6 == ipaddress.ip_address("2001:db8:ff::2").packed


def test_prefix_outside_accept_list_is_rejected_and_counted(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(
        ClientUpdate("metallb", announce("198.51.100.10/32", "203.0.113.7/32", as_path=(64514,))),
        1.0,
    )
    core.flush(1.0)
    assert set(engine.table(IPV4_UNICAST)) == {"198.51.100.10/32"}
    rejected = {
        prefix_to_str(f, p): r.value
        for (f, p), (r, _path) in core.clients["metallb"].channel.rejected.items()
    }
    assert rejected == {"203.0.113.7/32": "not_in_accept_list"}
    # the client's AS is not shown upstream, its tag community is added
    exported, _ = engine.table(IPV4_UNICAST)["198.51.100.10/32"]
    assert exported.as_path_flat() == (64512,)
    assert (64512 << 16 | 100) in exported.communities


def test_conflict_priority_wins_and_withdrawal_promotes_the_other(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.20/32", med=50)), 1.0)
    core.handle(ClientUpdate("calico", announce("198.51.100.20/32", med=10)), 1.0)
    core.flush(1.0)
    assert engine.table(IPV4_UNICAST)["198.51.100.20/32"][0].med == 10
    assert core.for_upstreams.conflicts_total == 1 and len(core.for_upstreams.conflicts) == 1
    core.handle(ClientUpdate("calico", withdraw("198.51.100.20/32")), 2.0)
    core.flush(2.0)
    assert engine.table(IPV4_UNICAST)["198.51.100.20/32"][0].med == 50
    assert not core.for_upstreams.conflicts


def test_max_prefixes_cuts_the_client_off_and_withdraws(setup) -> None:
    core, engine, _calico, metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.1/32")), 1.0)
    core.flush(1.0)
    assert "198.51.100.1/32" in engine.table(IPV4_UNICAST)
    many = [f"198.51.100.{i}/32" for i in range(2, 10)]
    core.handle(ClientUpdate("metallb", announce(*many)), 2.0)
    core.flush(2.0)
    assert [(n.code, n.subcode) for n in metallb.shutdowns] == [(6, 1)]
    assert not any(p.startswith("198.51.100.") for p in engine.table(IPV4_UNICAST))
    assert core.clients["metallb"].channel.cutoffs == 1


def test_session_down_without_graceful_restart_withdraws(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    core.flush(1.0)
    core.handle(ClientDown("calico", None), 2.0)
    core.flush(2.0)
    assert engine.table(IPV4_UNICAST) == {}


def test_graceful_restart_keeps_stale_routes_until_end_of_rib(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "10.244.2.0/26")), 1.0)
    core.flush(1.0)
    core.handle(ClientDown("calico", 120), 2.0)
    core.flush(2.0)
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26", "10.244.2.0/26"}
    assert core.clients["calico"].channel.rib.stale_count() == 2
    withdrawals_before = len(engine.withdraws)
    link = FakeLink()
    core.handle(ClientEstablished("calico", link, True), 3.0)
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 3.0)
    core.flush(3.0)
    assert len(engine.withdraws) == withdrawals_before  # nothing withdrawn before End-of-RIB
    core.handle(ClientUpdate("calico", EOR_V4), 4.0)
    core.flush(4.0)
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}


def test_graceful_restart_timer_sweeps_stale_routes(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    core.flush(1.0)
    core.handle_timer(30.0)  # past the initial sync
    core.handle(ClientDown("calico", 120), 31.0)
    assert core.get_timer() == pytest.approx(151.0)
    core.handle_timer(150.0)
    core.flush(150.0)
    assert "10.244.1.0/26" in engine.table(IPV4_UNICAST)
    core.handle_timer(151.0)
    core.flush(151.0)
    assert engine.table(IPV4_UNICAST) == {}


def test_upstream_routes_go_to_receiving_clients_only(setup) -> None:
    core, _engine, calico, metallb = setup
    calico.sent.clear()
    metallb.sent.clear()
    tor_attrs = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    prefixes = [prefix_from_str("0.0.0.0/0")[1], prefix_from_str("10.99.0.0/16")[1]]
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, prefixes), 1.0)
    core.flush(1.0)
    table = calico.table()
    assert set(table) == {"0.0.0.0/0", "10.99.0.0/16"}
    assert table["0.0.0.0/0"].next_hop == ipaddress.ip_address("10.0.0.1").packed
    assert table["0.0.0.0/0"].as_path_flat() == (65000,)
    assert table["0.0.0.0/0"].local_pref == 100
    assert metallb.sent == []
    core.handle(UpstreamDown("tor"), 2.0)
    core.flush(2.0)
    assert calico.table() == {}


def test_new_client_gets_upstream_table_and_end_of_rib(setup) -> None:
    core, _engine, _calico, _metallb = setup
    tor_attrs = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    core.handle(
        UpstreamRoutes(
            "tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, [prefix_from_str("0.0.0.0/0")[1]]
        ),
        1.0,
    )
    core.flush(1.0)
    link = FakeLink()
    core.handle(ClientDown("calico", None), 2.0)
    core.handle(ClientEstablished("calico", link, False), 2.0)
    assert {u.end_of_rib() for u in link.updates()} == {None}  # the ToR has not sent its table
    core.handle(UpstreamEndOfRib("tor", IPV4_UNICAST), 3.0)
    core.handle(UpstreamEndOfRib("tor", IPV6_UNICAST), 3.0)
    updates = link.updates()
    assert set(link.table()) == {"0.0.0.0/0"}
    assert {u.end_of_rib() for u in updates} >= {IPV4_UNICAST, IPV6_UNICAST}


def test_end_of_rib_upstream_waits_for_clients(setup) -> None:
    config = parse_config(CONFIG, env={})
    engine = FakeEngine()
    core = Core(config, engine, now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    core.flush(0.0)
    assert engine.eors == []
    core.handle(
        ClientEstablished("calico", FakeLink(), True), 1.0
    )  # graceful restart: waits for its End-of-RIB
    core.handle(ClientEstablished("metallb", FakeLink(), False), 1.0)
    core.flush(1.0)
    assert engine.eors == []
    core.handle(ClientUpdate("calico", EOR_V4), 2.0)
    core.handle(ClientUpdate("calico", EOR_V6), 2.0)
    core.flush(2.0)
    assert engine.eors == []  # metallb, without graceful restart, has not sent its table
    core.handle(ClientUpdate("metallb", EOR_V4), 2.0)
    core.handle(ClientUpdate("metallb", EOR_V6), 2.0)
    core.flush(2.0)
    assert sorted(str(e.family) for e in engine.eors) == ["ipv4-unicast", "ipv6-unicast"]


def test_end_of_rib_upstream_after_timeout(setup) -> None:
    config = parse_config(CONFIG, env={})
    engine = FakeEngine()
    core = Core(config, engine, now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    core.flush(0.0)
    assert core.get_timer() == 30.0
    core.handle_timer(30.0)
    assert len(engine.eors) == 2


def test_treat_as_withdraw_removes_the_route(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    core.flush(1.0)
    bad = Update(nlri=(prefix_from_str("10.244.1.0/26")[1],), treat_as_withdraw="bad ORIGIN")
    core.handle(ClientUpdate("calico", bad), 2.0)
    core.flush(2.0)
    assert engine.table(IPV4_UNICAST) == {}


def test_reload_applies_policy_without_touching_sessions(setup) -> None:
    core, engine, calico, _metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.10/32", "203.0.113.7/32")), 1.0)
    core.flush(1.0)
    assert set(engine.table(IPV4_UNICAST)) == {"198.51.100.10/32"}
    widened = CONFIG.replace('"198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"]',
                             '"198.51.100.0/24 le 32", "203.0.113.0/24 le 32"]')  # fmt: skip
    pending = core.handle(Reconfigure(parse_config(widened, env={})), 2.0)
    core.flush(2.0)
    assert pending == []
    assert set(engine.table(IPV4_UNICAST)) == {"198.51.100.10/32", "203.0.113.7/32"}
    assert core.clients["metallb"].channel.rejected == {}
    assert core.clients["calico"].link is calico  # no session was reset


def test_reload_restarts_a_client_whose_identity_changed(setup) -> None:
    core, _engine, calico, metallb = setup
    changed = CONFIG.replace(
        'listen: "127.0.0.1:1791", asn: 64514', 'listen: "127.0.0.1:1792", asn: 64514'
    )
    pending = core.handle(Reconfigure(parse_config(changed, env={})), 1.0)
    assert pending == []  # applied: removed and added again (test_reload_clients)
    assert core.clients["metallb"].link is None  # the listeners end its session
    assert metallb.shutdowns == calico.shutdowns == []


def test_end_of_rib_to_receiving_client_waits_for_the_upstreams_or_the_timeout(setup) -> None:
    core, _engine, calico, metallb = setup
    assert not any(u.end_of_rib() for u in calico.updates())
    assert {u.end_of_rib() for u in metallb.updates()} == {IPV4_UNICAST, IPV6_UNICAST}
    core.handle_timer(30.0)  # initial_sync_timeout
    assert {u.end_of_rib() for u in calico.updates()} == {IPV4_UNICAST, IPV6_UNICAST}


def test_graceful_restart_keeps_only_the_families_the_client_can_restart(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "2001:db8:244:1::/64")), 1.0)
    core.flush(1.0)
    core.handle(ClientDown("calico", 120, frozenset({IPV4_UNICAST})), 2.0)
    core.flush(2.0)
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}
    assert engine.table(IPV6_UNICAST) == {}


def test_upstream_routes_with_the_node_as_in_the_path_are_loops(setup) -> None:
    core, _engine, calico, _metallb = setup
    calico.sent.clear()
    looped = attrs((65000, 64512), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    fine = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    prefix = prefix_from_str("10.244.1.0/26")[1]
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, fine, fine.next_hop, [prefix]), 1.0)
    core.flush(1.0)
    assert set(calico.table()) == {"10.244.1.0/26"}
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, looped, looped.next_hop, [prefix]), 2.0)
    core.flush(2.0)
    assert calico.table() == {}  # the reflected route replaced the old one: withdrawn
    assert core.upstreams["tor"].channel.looped == {(IPV4_UNICAST, prefix)}


def test_upstream_without_end_of_rib_counts_as_synced_after_a_quiet_moment(setup) -> None:
    core, _engine, calico, _metallb = setup  # the ToR came up at 0.0 and sends no End-of-RIB
    tor_attrs = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    default = [prefix_from_str("0.0.0.0/0")[1]]
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, default), 0.5)
    core.flush(0.5)
    assert core.get_timer() == pytest.approx(1.5)
    core.handle_timer(1.2)
    assert not any(u.end_of_rib() for u in calico.updates())
    core.handle_timer(1.5)
    assert {u.end_of_rib() for u in calico.updates()} >= {IPV4_UNICAST, IPV6_UNICAST}


def test_max_prefixes_cut_off_names_the_family_and_the_reason(setup) -> None:
    core, _engine, _calico, metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.1/32")), 1.0)
    v6 = [f"2001:db8:100::{i}/128" for i in range(1, 6)]
    core.handle(ClientUpdate("metallb", announce(*v6)), 2.0)
    [notification] = metallb.shutdowns
    assert (notification.code, notification.subcode) == (6, 1)
    assert notification.data == bytes.fromhex("00020100000005")  # IPv6 unicast, limit 5
    assert metallb.down_reasons == [DownReason.MAX_PREFIXES]


def test_upstream_graceful_restart_keeps_its_routes_until_end_of_rib(setup) -> None:
    core, _engine, calico, _metallb = setup
    tor_attrs = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    kept, gone = prefix_from_str("10.1.0.0/16")[1], prefix_from_str("10.2.0.0/16")[1]
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, [kept, gone]), 1)
    core.flush(1.0)
    core.handle(UpstreamDown("tor", 120, None), 2.0)
    core.flush(2.0)
    assert set(calico.table()) == {"10.1.0.0/16", "10.2.0.0/16"}  # stale, still there
    assert core.upstreams["tor"].channel.stale_deadline == 122.0
    core.handle(UpstreamEstablished("tor"), 3.0)
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, [kept]), 3.0)
    core.handle(UpstreamEndOfRib("tor", IPV4_UNICAST), 4.0)
    core.flush(4.0)
    assert set(calico.table()) == {"10.1.0.0/16"}


def test_upstream_graceful_restart_timer_sweeps(setup) -> None:
    core, _engine, calico, _metallb = setup
    tor_attrs = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    prefix = prefix_from_str("10.1.0.0/16")[1]
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, [prefix]), 1)
    core.handle(UpstreamDown("tor", 60, None), 2.0)
    core.handle_timer(62.0)
    core.flush(62.0)
    assert calico.table() == {}


def test_upstream_route_refresh_sends_the_table_again(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    core.flush(1.0)
    engine.clear()
    core.handle(UpstreamRouteRefresh("tor", IPV4_UNICAST), 2.0)
    assert [c.prefixes for c in engine.announces] == [(prefix_from_str("10.244.1.0/26")[1],)]


def test_a_table_first_upstream_gets_the_table_and_the_clients_wait_for_its_session() -> None:
    """An engine that needs the table before it opens the session (gobgpd) reports
    ``table_first``: the table and End-of-RIB go to it, and the clients' End-of-RIB waits for
    the session it reports later (at most ``TABLE_FIRST_GRACE`` past the timeout)."""
    from bgpmux.core.sync import TABLE_FIRST_GRACE

    engine = FakeEngine()
    core = Core(parse_config(CONFIG, env={}), engine, now=0.0)
    core.handle(UpstreamEstablished("tor", table_first=True), 0.0)
    calico, metallb = FakeLink(), FakeLink()
    core.handle(ClientEstablished("calico", calico, False), 0.0)
    core.handle(ClientEstablished("metallb", metallb, False), 0.0)
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 0.5)
    core.handle_timer(30.0)  # initial_sync_timeout: End-of-RIB to the upstream
    assert "10.244.1.0/26" in engine.table(IPV4_UNICAST)
    assert engine.eor_sent("tor", IPV4_UNICAST)
    assert not any(u.end_of_rib() for u in calico.updates())  # no ToR session yet
    assert core.get_timer() == pytest.approx(30.0 + TABLE_FIRST_GRACE)
    core.handle(UpstreamEstablished("tor"), 36.0)  # the session, 6 s later
    core.handle_timer(36.2)  # past the timeout, but its table is still on its way
    assert not any(u.end_of_rib() for u in calico.updates())
    core.handle(UpstreamEndOfRib("tor", IPV4_UNICAST), 36.5)
    core.handle(UpstreamEndOfRib("tor", IPV6_UNICAST), 36.5)
    assert {u.end_of_rib() for u in calico.updates()} >= {IPV4_UNICAST, IPV6_UNICAST}


def test_a_table_first_upstream_that_never_comes_up_holds_the_clients_only_so_long() -> None:
    from bgpmux.core.sync import TABLE_FIRST_GRACE

    core = Core(parse_config(CONFIG, env={}), FakeEngine(), now=0.0)
    core.handle(UpstreamEstablished("tor", table_first=True), 0.0)
    calico = FakeLink()
    core.handle(ClientEstablished("calico", calico, False), 0.0)
    core.handle_timer(30.0 + TABLE_FIRST_GRACE - 0.1)
    assert not any(u.end_of_rib() for u in calico.updates())
    core.handle_timer(30.0 + TABLE_FIRST_GRACE)
    assert {u.end_of_rib() for u in calico.updates()} >= {IPV4_UNICAST, IPV6_UNICAST}


def test_a_table_first_report_keeps_the_stale_routes_restart_time(setup) -> None:
    """The engine asks for the table again (gobgpd restarted) while the ToR's routes are kept
    stale: they keep the ToR's restart time (RFC 4724 §4.2), not the End-of-RIB wait of a
    session that is up, and the report is no session coming up (no flap, nothing counted as
    advertised)."""
    from bgpmux.core.views import advertised

    core, _engine, calico, _metallb = setup
    tor_attrs = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)
    prefix = prefix_from_str("10.1.0.0/16")[1]
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 0.5)
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, [prefix]), 1)
    core.handle(UpstreamDown("tor", 60, None), 2.0)
    flaps = core.upstreams["tor"].flaps
    core.handle(UpstreamEstablished("tor", table_first=True), 3.0)
    assert core.upstreams["tor"].channel.stale_deadline == 62.0
    assert advertised(core, "tor", IPV4_UNICAST) == 0
    core.handle(UpstreamDown("tor", 60, None), 4.0)  # gone again before its session came up
    assert core.upstreams["tor"].flaps == flaps
    core.handle_timer(62.0)
    core.flush(62.0)
    assert "10.1.0.0/16" not in calico.table()


def test_a_routes_query_keeps_only_the_rows_its_filter_passes(setup) -> None:
    from bgpmux.core.events import RoutesQuery
    from bgpmux.core.views import routes_view

    core, _engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "10.244.2.0/26")), 1.0)
    core.flush(1.0)
    wanted = RoutesQuery(keep=lambda row: row["prefix"] == "10.244.2.0/26")
    assert [r["prefix"] for r in routes_view(core, wanted)["routes"]] == ["10.244.2.0/26"]
    mine = RoutesQuery(client="calico", keep=lambda row: row["prefix"] == "10.244.1.0/26")
    assert [r["prefix"] for r in routes_view(core, mine)["routes"]] == ["10.244.1.0/26"]
    assert routes_view(core, RoutesQuery(client="nobody", keep=bool)) == {
        "error": "no client named 'nobody'"
    }
