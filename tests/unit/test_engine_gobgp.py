"""The gobgp engine's pure parts: attributes and prefixes to ``apipb.Path`` and back, the peer
``AddPeer`` gets, what ``ListPeer`` reports in bgpmux's terms, the global-table mirror, and the
engine's calls from the core up to the queued operations (no gobgpd: that is in
tests/interop/test_gobgp_engine.py)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("bgpmux.engines.gobgp_api.gobgp_pb2", reason="run `make deps` (stubs)")

from bgpmux.config import Config, parse_config
from bgpmux.engines import gobgp_paths as paths
from bgpmux.engines import gobgp_peers as peers
from bgpmux.engines.gobgp import GoBGPEngine
from bgpmux.engines.gobgp_api import attribute_pb2, capability_pb2, gobgp_pb2
from bgpmux.engines.gobgp_rib import GlobalTable
from bgpmux.session import State
from bgpmux.wire.attributes import PathAttributes
from bgpmux.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpmux.wire.prefix import prefix_from_str

BASE = """
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2, address_v6: "fd00::2"}
engine: gobgp
upstreams:
  - {name: tor, address: 10.0.0.1, asn: 65000, hold_time: 30, graceful_restart: 90}
  - {name: ibgp, address: "fd00::1", asn: 64512, port: 1179, graceful_restart: 0,
     ttl_security: true}
clients:
  - {name: calico, listen: 127.0.0.1:1790, asn: 64512}
"""

ATTRS = PathAttributes(
    origin=2,
    as_path=((2, (64512, 4_200_000_000)), (1, (65001, 65002))),
    med=7,
    local_pref=150,
    atomic_aggregate=True,
    aggregator=(65010, bytes([10, 9, 8, 7])),
    communities=((64514 << 16) | 10,),
    large_communities=((64512, 1, 2),),
    other=((0xE0, 99, b"opaque"),),
)
V4_HOP = ipaddress.ip_address("10.0.0.2").packed
V6_HOP = ipaddress.ip_address("fd00::2").packed


def config(text: str = BASE) -> Config:
    return parse_config(text, env={})


def p(*texts: str) -> list[bytes]:
    return [prefix_from_str(t)[1] for t in texts]


# ------------------------------------------------------------------------ attributes <-> apipb


@pytest.mark.parametrize(
    ("family", "hop", "prefix"),
    [(IPV4_UNICAST, V4_HOP, "10.244.1.0/24"), (IPV6_UNICAST, V6_HOP, "2001:db8:244::/48")],
)
def test_a_path_sent_reads_back_as_the_same_route(family: Any, hop: bytes, prefix: str) -> None:
    template = paths.path_template(family, ATTRS, hop)
    path = gobgp_pb2.Path.FromString(template.path(p(prefix)[0]))
    assert (path.family.afi, path.family.safi) == ((1, 1) if family == IPV4_UNICAST else (2, 1))
    assert not path.is_withdraw
    got = paths.received_path(path)
    assert got is not None
    assert (got.family, got.prefix, got.next_hop) == (family, p(prefix)[0], hop)
    # the IPv4 NEXT_HOP is an attribute too; IPv6's travels in MP_REACH_NLRI
    expected = ATTRS if family == IPV6_UNICAST else replace(ATTRS, next_hop=hop)
    assert got.attributes == expected


def test_attributes_are_sent_typed_in_type_code_order() -> None:
    path = gobgp_pb2.Path.FromString(paths.path_template(IPV4_UNICAST, ATTRS, V4_HOP).path(b"\0"))
    names = [a.type_url.rpartition(".")[2] for a in path.pattrs]
    assert names == [
        "OriginAttribute", "AsPathAttribute", "NextHopAttribute", "MultiExitDiscAttribute",
        "LocalPrefAttribute", "AtomicAggregateAttribute", "AggregatorAttribute",
        "CommunitiesAttribute", "LargeCommunitiesAttribute", "UnknownAttribute",
    ]  # fmt: skip
    as_path = attribute_pb2.AsPathAttribute()
    path.pattrs[1].Unpack(as_path)
    assert [(s.type, list(s.numbers)) for s in as_path.segments] == [
        (2, [64512, 4_200_000_000]), (1, [65001, 65002])
    ]  # fmt: skip
    assert not path.pattrs_binary  # gobgpd would guess the AS size of a binary AS_PATH


def test_withdrawal_and_stream_request() -> None:
    raw = paths.withdrawal(IPV6_UNICAST, p("2001:db8::/32")[0])
    path = gobgp_pb2.Path.FromString(raw)
    assert path.is_withdraw and not path.pattrs
    got = paths.received_path(path)
    assert got is not None and got.attributes is None and got.prefix == p("2001:db8::/32")[0]
    request = gobgp_pb2.AddPathStreamRequest.FromString(paths.add_path_stream_request([raw] * 3))
    assert request.table_type == gobgp_pb2.GLOBAL and len(request.paths) == 3


def test_the_node_as_gobgpd_prepends_is_taken_off_on_ebgp_only() -> None:
    sent = PathAttributes(as_path=((2, (64512, 64514)),))
    assert paths.for_gobgp(sent, 64512, ebgp=True).as_path == ((2, (64514,)),)
    assert paths.for_gobgp(PathAttributes(as_path=((2, (64512,)),)), 64512, True).as_path == ()
    assert paths.for_gobgp(sent, 64512, ebgp=False) is sent
    other = PathAttributes(as_path=((1, (64512,)),))  # an AS_SET is not ours to touch
    assert paths.for_gobgp(other, 64512, ebgp=True) is other


def test_received_paths_of_other_families_or_bad_prefixes() -> None:
    evpn = gobgp_pb2.Path(family=gobgp_pb2.Family(afi=25, safi=70))
    assert paths.received_path(evpn) is None
    wrong = gobgp_pb2.Path(family=paths.api_family(IPV4_UNICAST))
    wrong.nlri.Pack(attribute_pb2.IPAddressPrefix(prefix="fd00::", prefix_len=8))
    with pytest.raises(ValueError, match="in ipv4"):
        paths.received_path(wrong)


def test_received_mp_reach_takes_the_first_next_hop_and_clears_host_bits() -> None:
    path = gobgp_pb2.Path(family=paths.api_family(IPV6_UNICAST), neighbor_ip="fd00::1")
    path.nlri.Pack(attribute_pb2.IPAddressPrefix(prefix="2001:db8:1:ff::", prefix_len=56))
    mp = attribute_pb2.MpReachNLRIAttribute(next_hops=["fd00::1", "fe80::1"])
    path.pattrs.add().Pack(mp)
    path.pattrs.add().Pack(attribute_pb2.OriginAttribute(origin=0))
    got = paths.received_path(path)
    assert got is not None
    assert got.neighbor == "fd00::1" and got.prefix == p("2001:db8:1::/56")[0]
    assert got.next_hop == ipaddress.ip_address("fd00::1").packed
    assert got.attributes == PathAttributes()


# ------------------------------------------------------------------------ peers


def test_peer_config_carries_timers_md5_gr_families_local_address(tmp_path: Path) -> None:
    cfg = config()
    tor, ibgp = cfg.upstreams
    peer = peers.peer_config(cfg, tor, "s3cret")
    assert (peer.conf.neighbor_address, peer.conf.peer_asn, peer.conf.local_asn) == (
        "10.0.0.1", 65000, 64512
    )  # fmt: skip
    assert peer.conf.auth_password == "s3cret"
    assert (peer.timers.config.hold_time, peer.timers.config.keepalive_interval) == (30, 10)
    assert peer.transport.local_address == "10.0.0.2" and peer.transport.remote_port == 179
    assert peer.graceful_restart.enabled and peer.graceful_restart.restart_time == 90
    families = [(a.config.family.afi, a.mp_graceful_restart.config.enabled) for a in peer.afi_safis]
    assert families == [(1, True), (2, True)]
    other = peers.peer_config(cfg, ibgp, "")
    assert other.transport.local_address == "fd00::2" and other.transport.remote_port == 1179
    assert not other.graceful_restart.enabled
    assert other.ttl_security.enabled and other.ttl_security.ttl_min == 255
    global_ = peers.global_config(cfg)
    assert (global_.asn, global_.router_id, global_.listen_port) == (64512, "10.0.0.2", -1)


def test_password_must_be_ascii(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes("clé\n".encode())
    tor = config().upstreams[0].model_copy(update={"password_file": key})
    with pytest.raises(ValueError, match="ASCII"):
        peers.read_password(tor)
    key.write_bytes(b"plain\n")
    assert peers.read_password(tor) == "plain"


def listed_peer(state: int = gobgp_pb2.PeerState.ESTABLISHED) -> gobgp_pb2.Peer:
    peer = gobgp_pb2.Peer()
    peer.conf.neighbor_address, peer.conf.peer_asn = "10.0.0.1", 65000
    peer.state.session_state = state
    peer.transport.local_address = "10.0.0.2"
    peer.timers.state.negotiated_hold_time, peer.timers.state.keepalive_interval = 30, 10
    for cap in (
        capability_pb2.MultiProtocolCapability(family=paths.api_family(IPV4_UNICAST)),
        capability_pb2.RouteRefreshCapability(),
        capability_pb2.FourOctetASNCapability(asn=65000),
        capability_pb2.GracefulRestartCapability(
            flags=0x08, time=120,
            tuples=[capability_pb2.GracefulRestartCapabilityTuple(
                family=paths.api_family(IPV4_UNICAST), flags=0x80)],
        ),
    ):  # fmt: skip
        peer.state.remote_cap.add().Pack(cap)
        peer.state.local_cap.add().Pack(cap)
    peer.state.messages.sent.update, peer.state.messages.received.notification = 5, 1
    afi_safi = peer.afi_safis.add()
    afi_safi.state.family.CopyFrom(paths.api_family(IPV4_UNICAST))
    afi_safi.mp_graceful_restart.state.end_of_rib_received = True
    peer.afi_safis.add().state.family.CopyFrom(paths.api_family(IPV6_UNICAST))
    return peer


def test_list_peer_in_bgpmux_terms() -> None:
    peer = listed_peer()
    ours = (IPV4_UNICAST, IPV6_UNICAST)
    assert peers.session_state(peer) is State.ESTABLISHED
    assert peers.session_state(listed_peer(gobgp_pb2.PeerState.OPENCONFIRM)) is State.OPEN_CONFIRM
    assert peers.negotiated_families(peer, ours) == (IPV4_UNICAST,)
    capability = peers.graceful_restart(peer)
    assert capability is not None
    assert (capability.restart_time, capability.restarting) == (120, True)
    assert capability.families == ((IPV4_UNICAST, True),)
    facts = peers.facts(peer, ours, "connection lost", 12.0)
    assert facts.capabilities == ("ipv4-unicast", "route-refresh", "4-octet-as",
                                  "graceful-restart")  # fmt: skip
    assert (facts.address, facts.asn, facts.local_address) == ("10.0.0.1", 65000, "10.0.0.2")
    assert (facts.hold_time, facts.keepalive) == (30, 10)
    assert facts.graceful_restart == "negotiated, restart time 120 s"
    assert (facts.last_error, facts.last_error_at) == ("connection lost", 12.0)
    stats = peers.messages(peer)
    assert stats.messages_sent["UPDATE"] == 5 and stats.messages_received["NOTIFICATION"] == 1
    # WatchEvent does not report End-of-RIB: ListPeer's afi_safis state does
    assert peers.end_of_rib_received(peer) == {IPV4_UNICAST}


# ------------------------------------------------------------------------ the global table


def test_global_table_sends_only_changes_and_sweeps_what_was_not_sent_again() -> None:
    table = GlobalTable()
    route, other = (PathAttributes(), V4_HOP), (PathAttributes(med=1), V4_HOP)
    a, b, c = p("10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16")
    assert table.announce(IPV4_UNICAST, route, [a, b]) == [a, b]
    assert table.announce(IPV4_UNICAST, route, [a, b]) == []  # gobgpd has them so
    assert table.announce(IPV4_UNICAST, other, [b]) == [b]
    table.resync()
    assert table.announce(IPV4_UNICAST, route, [a, c]) == [c]
    assert table.end_of_rib(IPV6_UNICAST) == []
    assert table.end_of_rib(IPV4_UNICAST) == [b]  # not sent again: withdrawn from gobgpd
    assert table.end_of_rib(IPV4_UNICAST) == []
    assert table.withdraw(IPV4_UNICAST, [a, b]) == [a]
    table.adopt(IPV4_UNICAST, [b])  # found in an external gobgpd
    assert table.announce(IPV4_UNICAST, route, [b]) == [b]
    assert len(table) == 2


# ------------------------------------------------------------------------ the engine's calls


class Events:
    def __init__(self) -> None:
        self.posts: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.posts.append((name, args, kwargs))


def test_engine_queues_the_table_then_adds_the_peer_after_every_end_of_rib() -> None:
    cfg = config()
    engine = GoBGPEngine(cfg, Events())  # type: ignore[arg-type]
    engine._stub = object()  # type: ignore[assignment]  # as if gobgpd were up
    engine._core_up("tor")
    assert engine.events.posts == [("established", ("tor", None, None), {"table_first": True})]  # type: ignore[attr-defined]
    sent = PathAttributes(as_path=((2, (64512,)),))
    assert engine.announce(["tor", "ibgp"], IPV4_UNICAST, sent, V4_HOP, p("10.244.0.0/24")) == {}
    engine.end_of_rib("tor", IPV4_UNICAST)
    assert [kind for kind, _ in engine._ops] == ["paths"]  # no peer before every family
    engine.withdraw(["tor"], IPV4_UNICAST, p("10.244.0.0/24", "10.9.0.0/16"))
    engine.end_of_rib("tor", IPV6_UNICAST)
    assert [kind for kind, _ in engine._ops] == ["paths", "paths", "add"]
    first = gobgp_pb2.Path.FromString(engine._ops[0][1][0])
    as_path = attribute_pb2.AsPathAttribute()
    first.pattrs[1].Unpack(as_path)
    assert not as_path.segments  # gobgpd prepends the node AS on eBGP
    assert len(engine._ops[1][1]) == 1  # only what gobgpd had is withdrawn
    engine.end_of_rib("tor", IPV4_UNICAST)
    assert [kind for kind, _ in engine._ops][-1] == "add"  # once
    # the ibgp upstream is not up for the core: nothing goes for it alone
    engine.withdraw(["ibgp"], IPV4_UNICAST, p("10.244.0.0/24"))
    assert len(engine._ops) == 3
    assert engine.status()[1].facts.address == "fd00::1"


def test_engine_command_binds_the_api_to_loopback_without_pprof() -> None:
    cfg = config(BASE.replace("engine: gobgp", "engine: gobgp\ngobgp: {api: '[::1]:50099'}"))
    argv = GoBGPEngine(cfg, Events()).command()  # type: ignore[arg-type]
    assert argv[argv.index("--api-hosts") + 1] == "[::1]:50099"
    assert "--pprof-disable" in argv and "-f" not in argv  # no config file: no listener on 179
    assert "gobgpd" in argv[argv.index("--api-hosts") - 1]


def test_a_tor_session_that_ends_is_down_then_table_first_again() -> None:
    """gobgpd keeps the peer and its global table when the ToR session ends, and sends that
    table the moment the ToR is back: the engine reports the session down and asks the core for
    the table again at once (``table_first``), so what changes meanwhile reaches gobgpd."""
    import asyncio

    from bgpmux.engines.gobgp_events import WatchReader

    engine = GoBGPEngine(config(), Events())  # type: ignore[arg-type]
    engine._stub = object()  # type: ignore[assignment]  # as if gobgpd were up
    engine._core_up("tor")
    peer = engine.peers["tor"]
    peer.state, peer.added = State.ESTABLISHED, True
    reader = WatchReader(engine, engine._stub)  # type: ignore[arg-type]

    async def no_peers(address: str = "") -> dict[str, Any]:
        return {}

    reader.list_peers = no_peers  # type: ignore[method-assign]
    engine.events.posts.clear()  # type: ignore[attr-defined]
    asyncio.run(reader._down("tor", peer))
    kinds = [(name, kwargs) for name, _args, kwargs in engine.events.posts]  # type: ignore[attr-defined]
    assert kinds == [("down", {}), ("established", {"table_first": True})]
    assert peer.core_up and peer.added  # the peer stays in gobgpd: no second AddPeer
    assert engine.announce(["tor"], IPV4_UNICAST, PathAttributes(), V4_HOP, p("10.1.0.0/24")) == {}
    assert [kind for kind, _ in engine._ops] == ["paths"]


def test_end_of_rib_waits_for_the_adj_rib_in_read_back() -> None:
    """``ListPeer`` may show the ToR's End-of-RIB before ``WatchEvent`` delivered its paths;
    the core sweeps the ToR's stale routes at End-of-RIB, so the engine first reads the
    Adj-RIB-In (``ListPath``) and reports it, and only then the End-of-RIB."""
    import asyncio

    from bgpmux.engines.gobgp_events import WatchReader

    engine = GoBGPEngine(config(), Events())  # type: ignore[arg-type]
    engine._core_up("tor")
    peer = engine.peers["tor"]
    peer.state = State.ESTABLISHED
    received = gobgp_pb2.Path(neighbor_ip="10.0.0.1", family=paths.api_family(IPV4_UNICAST))
    received.nlri.Pack(attribute_pb2.IPAddressPrefix(prefix="10.99.0.0", prefix_len=16))
    received.pattrs.add().Pack(attribute_pb2.OriginAttribute(origin=0))
    received.pattrs.add().Pack(attribute_pb2.NextHopAttribute(next_hop="10.0.0.1"))
    asked: list[gobgp_pb2.ListPathRequest] = []

    class Stub:
        def ListPath(self, request: gobgp_pb2.ListPathRequest, timeout: float) -> Any:
            asked.append(request)

            async def stream() -> Any:
                yield gobgp_pb2.ListPathResponse(
                    destination=gobgp_pb2.Destination(prefix="10.99.0.0/16", paths=[received])
                )

            return stream()

    reader = WatchReader(engine, Stub())  # type: ignore[arg-type]

    async def listed(address: str = "") -> dict[str, Any]:
        return {"10.0.0.1": listed_peer()}  # End-of-RIB received for IPv4

    reader.list_peers = listed  # type: ignore[method-assign]
    engine.events.posts.clear()  # type: ignore[attr-defined]

    async def one_poll() -> None:
        task = asyncio.create_task(reader.poll(3600))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(one_poll())
    assert [(r.table_type, r.name) for r in asked] == [(gobgp_pb2.ADJ_IN, "10.0.0.1")]
    kinds = [name for name, _args, _kwargs in engine.events.posts]  # type: ignore[attr-defined]
    assert kinds == ["routes", "end_of_rib"]
    assert peer.eor_reported == {IPV4_UNICAST}
