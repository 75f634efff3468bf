"""Route refresh both ways in the core (RFC 2918, RFC 7313): answers to clients and upstreams,
plain and enhanced, and the peers' BoRR/EoRR marking and sweeping, on a fake clock."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from bgpmux.core import Core
from bgpmux.core.events import (
    ClientRouteRefresh,
    ClientUpdate,
    UpstreamDown,
    UpstreamEndOfRib,
    UpstreamRouteRefresh,
    UpstreamRoutes,
)
from bgpmux.engines import exabgp_text as text
from bgpmux.engines.exabgp import ExaBGPEngine
from bgpmux.engines.exabgp_rib_out import RibOutMirror
from bgpmux.engines.exabgp_session import MessageSeen
from bgpmux.engines.fake import AnnounceCall, FakeEngine, RouteRefreshCall
from bgpmux.policy.enhanced_refresh import REFRESH_STALE_TIME
from bgpmux.session.events import RouteRefreshReceived
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, Family, PathAttributes, RouteRefresh
from bgpmux.wire.messages import encode_message
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import EOR_V4, EOR_V6, FakeLink, announce, attrs
from .test_engine_exabgp import RecordingEvents
from .test_engine_exabgp import config as exabgp_config
from .test_session import drain, established_pair, sent_notification

TOR_ATTRS = attrs((65000,), next_hop=ipaddress.ip_address("10.0.0.1").packed)


def pfx(text: str) -> bytes:
    return prefix_from_str(text)[1]


def tor_routes(core: Core, *prefixes: str, now: float = 1.0) -> None:
    event = UpstreamRoutes(
        "tor", IPV4_UNICAST, TOR_ATTRS, TOR_ATTRS.next_hop, [pfx(p) for p in prefixes]
    )
    core.handle(event, now)


def synced(core: Core, now: float = 1.0) -> None:
    """The ToR sent its tables: the clients are owed no End-of-RIB any more."""
    for family in (IPV4_UNICAST, IPV6_UNICAST):
        core.handle(UpstreamEndOfRib("tor", family), now)
    core.flush(now)


# ------------------------------------------------------------------ answering clients


def test_client_request_gets_the_table_again_without_framing(setup) -> None:
    core, _engine, calico, _metallb = setup
    tor_routes(core, "10.1.0.0/16", "10.2.0.0/16")
    synced(core)
    calico.sent.clear()
    calico.order.clear()
    core.handle(ClientRouteRefresh("calico", IPV4_UNICAST), 2.0)
    assert set(calico.table()) == {"10.1.0.0/16", "10.2.0.0/16"}
    assert all(item == "UPDATE" for item in calico.order)  # enhanced not negotiated: no BoRR
    assert calico.shutdowns == []


def test_client_request_is_framed_by_borr_and_eorr_where_enhanced(setup) -> None:
    core, _engine, calico, _metallb = setup
    calico.enhanced = True
    tor_routes(core, "10.1.0.0/16")
    synced(core)
    calico.sent.clear()
    calico.order.clear()
    core.handle(ClientRouteRefresh("calico", IPV4_UNICAST), 2.0)
    assert calico.order == [(IPV4_UNICAST, 1), "UPDATE", (IPV4_UNICAST, 2)]
    assert set(calico.table()) == {"10.1.0.0/16"}


def test_client_request_for_every_family_and_a_client_without_upstream_routes(setup) -> None:
    core, _engine, calico, metallb = setup
    calico.enhanced = metallb.enhanced = True
    synced(core)
    metallb.order.clear()
    core.handle(ClientRouteRefresh("metallb"), 2.0)  # family None: both it negotiated
    # nothing is exported to metallb: an empty refresh, still framed
    assert metallb.order == [(IPV4_UNICAST, 1), (IPV4_UNICAST, 2), (IPV6_UNICAST, 1),
                             (IPV6_UNICAST, 2)]  # fmt: skip
    calico.families = (IPV4_UNICAST,)
    calico.order.clear()
    core.handle(ClientRouteRefresh("calico", IPV6_UNICAST), 2.0)  # not negotiated: nothing
    assert calico.order == []


def test_client_request_before_its_end_of_rib_is_answered_unframed(setup) -> None:
    core, _engine, calico, _metallb = setup
    calico.enhanced = True
    tor_routes(core, "10.1.0.0/16")
    core.flush(1.0)
    assert "calico" in core.sync.eor_owed  # the ToR has not sent its table yet
    calico.order.clear()
    core.handle(ClientRouteRefresh("calico", IPV4_UNICAST), 1.5)
    assert calico.order == ["UPDATE"]  # an EoRR now would sweep what its End-of-RIB holds


# ------------------------------------------------------------------ answering upstreams


def test_upstream_request_framed_where_enhanced(setup) -> None:
    core, engine, _calico, _metallb = setup
    engine.enhanced.add("tor")
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    for name in ("calico", "metallb"):  # every client's table is in: End-of-RIB to the ToR
        core.handle(ClientUpdate(name, EOR_V4), 1.0)
        core.handle(ClientUpdate(name, EOR_V6), 1.0)
    core.flush(1.0)
    assert core.upstreams["tor"].eor_sent
    engine.clear()
    engine.calls.clear()
    core.handle(UpstreamRouteRefresh("tor", IPV4_UNICAST), 2.0)
    kinds = [type(c) for c in engine.calls]
    assert kinds == [RouteRefreshCall, AnnounceCall, RouteRefreshCall]
    first, last = engine.calls[0], engine.calls[-1]
    assert isinstance(first, RouteRefreshCall) and isinstance(last, RouteRefreshCall)
    assert (first.subtype, last.subtype) == (1, 2)
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}
    # as sent: next hop the node, AS path the node AS
    exported, next_hop = engine.table(IPV4_UNICAST)["10.244.1.0/26"]
    assert next_hop == ipaddress.ip_address("10.0.0.2").packed
    assert exported.as_path_flat() == (64512,)


def test_upstream_request_is_answered_after_the_pending_changes(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)  # not flushed yet
    core.handle(UpstreamRouteRefresh("tor", IPV4_UNICAST), 1.0)
    core.flush(1.0)
    announced = [c.prefixes for c in engine.announces]
    assert announced.count((pfx("10.244.1.0/26"),)) == 2  # the change, then the answer


def test_upstream_request_ignored_while_down_or_for_a_family_not_exported(setup) -> None:
    core, engine, _calico, _metallb = setup
    engine.enhanced.add("tor")
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    core.flush(1.0)
    engine.calls.clear()
    core.handle(UpstreamRouteRefresh("tor", Family(1, 128)), 2.0)
    core.handle(UpstreamDown("tor"), 3.0)
    core.handle(UpstreamRouteRefresh("tor", IPV4_UNICAST), 3.0)
    assert not [c for c in engine.calls if isinstance(c, AnnounceCall | RouteRefreshCall)]


# ------------------------------------------------------------------ the peers' BoRR and EoRR


def test_client_borr_eorr_sweeps_what_was_not_sent_again(setup) -> None:
    core, engine, calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "10.244.2.0/26")), 1.0)
    core.flush(1.0)
    calico.sent.clear()
    core.handle(ClientRouteRefresh("calico", IPV4_UNICAST, 1), 2.0)
    core.flush(2.0)
    assert calico.sent == []  # a BoRR is not a request for our routes
    channel = core.clients["calico"].channel
    assert channel.rib.stale_count() == 2
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26", "10.244.2.0/26"}  # still used
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 3.0)
    assert channel.rib.stale_count() == 1
    core.handle(ClientRouteRefresh("calico", IPV4_UNICAST, 2), 4.0)
    core.flush(4.0)
    assert calico.sent == []
    assert channel.rib.stale_count() == 0 and channel.refreshing == {}
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}


def test_borr_marks_only_its_family(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "2001:db8:244:1::/64")), 1.0)
    core.handle(ClientRouteRefresh("calico", IPV6_UNICAST, 1), 2.0)
    core.handle(ClientRouteRefresh("calico", IPV6_UNICAST, 2), 3.0)
    core.flush(3.0)
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}
    assert engine.table(IPV6_UNICAST) == {}


def test_eorr_without_borr_is_ignored(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 1.0)
    core.flush(1.0)
    core.handle(ClientRouteRefresh("calico", IPV4_UNICAST, 2), 2.0)
    core.flush(2.0)
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}
    assert engine.withdraws == []


def test_no_eorr_sweeps_at_the_refresh_deadline(setup) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "10.244.2.0/26")), 1.0)
    core.flush(1.0)
    core.handle(ClientRouteRefresh("calico", IPV4_UNICAST, 1), 10.0)
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 11.0)
    deadline = 10.0 + REFRESH_STALE_TIME
    timer = core.get_timer()
    assert timer is not None and timer <= deadline
    core.handle_timer(deadline - 1)
    core.flush(deadline - 1)
    assert len(engine.table(IPV4_UNICAST)) == 2
    core.handle_timer(deadline)
    core.flush(deadline)
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}
    assert core.clients["calico"].channel.refreshing == {}


def test_upstream_borr_eorr_sweeps_at_the_clients(setup) -> None:
    core, engine, calico, _metallb = setup
    tor_routes(core, "10.1.0.0/16", "10.2.0.0/16")
    synced(core)
    engine.calls.clear()
    core.handle(UpstreamRouteRefresh("tor", IPV4_UNICAST, 1), 2.0)
    tor_routes(core, "10.1.0.0/16", now=2.5)
    core.flush(2.5)
    assert set(calico.table()) == {"10.1.0.0/16", "10.2.0.0/16"}
    core.handle(UpstreamRouteRefresh("tor", IPV4_UNICAST, 2), 3.0)
    core.flush(3.0)
    assert set(calico.table()) == {"10.1.0.0/16"}
    assert engine.calls == []  # nothing re-sent to the ToR: a BoRR/EoRR is no request


def test_session_down_during_a_refresh_ends_it(setup) -> None:
    core, _engine, _calico, _metallb = setup
    tor_routes(core, "10.1.0.0/16")
    core.handle(UpstreamRouteRefresh("tor", IPV4_UNICAST, 1), 2.0)
    core.handle(UpstreamDown("tor", 120, None), 3.0)
    channel = core.upstreams["tor"].channel
    assert channel.refreshing == {} and channel.stale_deadline == 123.0


def test_fake_engine_refuses_refresh_where_not_enhanced() -> None:
    engine = FakeEngine(["tor"])
    assert not engine.send_route_refresh("tor", IPV4_UNICAST, 1)
    link = FakeLink()
    assert not link.send_route_refresh(IPV4_UNICAST, 1)


# ------------------------------------------------------------------ the session


def test_session_passes_borr_and_eorr_where_enhanced_was_negotiated() -> None:
    a, b = established_pair()
    assert b.refresh_negotiated(IPV4_UNICAST, 1) and not b.refresh_negotiated(Family(1, 128))
    b.send_route_refresh(IPV4_UNICAST, 1.0, 1)
    b.send_route_refresh(IPV4_UNICAST, 1.0, 2)
    a.receive_data(b.data_to_send(), 1.0)
    assert drain(a) == [RouteRefreshReceived(RouteRefresh(IPV4_UNICAST, s)) for s in (1, 2)]


def test_session_ignores_refreshes_where_it_did_not_offer_route_refresh() -> None:
    a, b = established_pair(a_kw={"route_refresh": False})
    assert not b.refresh_negotiated(IPV4_UNICAST) and not a.refresh_negotiated(IPV4_UNICAST, 1)
    raw = encode_message(RouteRefresh(IPV4_UNICAST, 1)) + encode_message(RouteRefresh(IPV4_UNICAST))
    a.receive_data(raw, 1.0)
    assert drain(a) == [] and a.data_to_send() == b""


def test_a_peer_without_the_capability_may_still_ask() -> None:
    # RFC 2918 §4: it received ours; the answer cannot be framed (it offered no enhanced refresh)
    a, b = established_pair(b_kw={"route_refresh": False})
    assert not a.refresh_negotiated(IPV4_UNICAST, 1) and not b.refresh_negotiated(IPV4_UNICAST)
    a.receive_data(encode_message(RouteRefresh(IPV4_UNICAST)), 1.0)
    assert drain(a) == [RouteRefreshReceived(RouteRefresh(IPV4_UNICAST, 0))]


def test_borr_of_the_wrong_length_gets_the_whole_message_back() -> None:
    a, _b = established_pair()
    bad = b"\xff" * 16 + b"\x00\x18\x05" + b"\x00\x01\x01\x01\x00"  # BoRR, 5 octets
    a.receive_data(bad, 1.0)
    note = sent_notification(a)
    assert (note.code, note.subcode, note.data) == (7, 1, bad)  # RFC 7313 §5


def test_unknown_subtype_is_ignored() -> None:
    a, _b = established_pair()
    a.receive_data(encode_message(RouteRefresh(IPV4_UNICAST, 3)), 1.0)
    assert drain(a) == [] and a.data_to_send() == b""


# ------------------------------------------------------------------ the exabgp engine

REFRESH = (
    '{ "exabgp": "5.0.0", "time": 1.0, "host" : "h", "pid" : 1, "ppid" : 1, "counter": 3, '
    '"type": "refresh", "neighbor": { "address": { "local": "10.0.0.2", "peer": "10.0.0.1" }, '
    '"asn": { "local": 64512, "peer": 65000 } , "direction": "receive", "route-refresh": '
    '{ "afi": "ipv4", "safi": "unicast", "subtype": "%s" } } }'
)


def test_exabgp_refresh_messages_parse() -> None:
    for word, subtype in (("begin", 1), ("end", 2)):
        parsed = text.parse_message(REFRESH % word)
        assert parsed == text.RouteRefreshReceived("10.0.0.1", IPV4_UNICAST, subtype)
    # a request ExaBGP answers itself, from its Adj-RIB-Out: not for the core
    query = text.parse_message(REFRESH % "query")  # counted only
    assert query == MessageSeen("10.0.0.1", "ROUTE_REFRESH", False)
    assert text.parse_message(REFRESH % "invalid") == query  # RFC 7313 §5: ignored


def test_rib_out_mirror_withdraws_what_exabgp_re_announced_and_is_gone() -> None:
    mirror = RibOutMirror()
    a, b, c = pfx("10.1.0.0/16"), pfx("10.2.0.0/16"), pfx("10.3.0.0/16")
    mirror.announced(["tor"], IPV4_UNICAST, [a, b, c])
    mirror.withdrawn(["tor"], IPV4_UNICAST, [c])
    mirror.session_up("tor")  # ExaBGP re-announces a and b
    mirror.announced(["tor"], IPV4_UNICAST, [a])  # the core's table holds only a
    assert mirror.leftovers("tor", IPV4_UNICAST) == [b]
    assert mirror.held["tor"][IPV4_UNICAST] == {a}
    assert mirror.leftovers("tor", IPV4_UNICAST) == []  # once
    mirror.clear()
    mirror.session_up("tor")
    assert mirror.leftovers("tor", IPV4_UNICAST) == []


def test_exabgp_engine_reports_borr_eorr_and_sweeps_its_rib_out(
    tmp_path: Path,
) -> None:
    events = RecordingEvents()
    engine = ExaBGPEngine(exabgp_config(), events, tmp_path)
    engine._handle(text.StateChange("10.0.0.1", "up"), 1.0)
    for word in ("begin", "end"):
        message = text.parse_message(REFRESH % word)
        assert message is not None
        engine._handle(message, 2.0)
    refreshes = [args for name, args in events.posts if name == "route_refresh"]
    assert refreshes == [("tor-a", IPV4_UNICAST, 1), ("tor-a", IPV4_UNICAST, 2)]
    nh = bytes([10, 0, 0, 2])
    engine.announce(["tor-a"], IPV4_UNICAST, PathAttributes(), nh, [pfx("10.1.0.0/16")])
    engine._handle(text.StateChange("10.0.0.1", "down", "gone"), 3.0)
    engine._handle(text.StateChange("10.0.0.1", "up"), 4.0)
    engine._queue.clear()
    engine.end_of_rib("tor-a", IPV4_UNICAST)  # the core did not send 10.1/16 again
    assert list(engine._queue) == [
        "neighbor 10.0.0.1 withdraw attributes nlri 10.1.0.0/16",
        "neighbor 10.0.0.1 announce eor ipv4 unicast",
    ]
