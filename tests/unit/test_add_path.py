"""ADD-PATH towards clients (RFC 7911): what is negotiated, how path identifiers are packed,
and what the core sends an ADD-PATH client (every upstream's path) and a client without it
(the best path)."""

from __future__ import annotations

import ipaddress

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import (
    ClientDown,
    ClientEstablished,
    ClientRouteRefresh,
    Reconfigure,
    UpstreamDown,
    UpstreamEstablished,
    UpstreamRoutes,
    UpstreamWithdrawn,
)
from bgpmux.engines.fake import FakeEngine
from bgpmux.session import SessionConfig, local_open, negotiate
from bgpmux.transport.profiles import client_session_config
from bgpmux.wire import (
    ADD_PATH_RECEIVE,
    ADD_PATH_SEND,
    IPV4_UNICAST,
    IPV6_UNICAST,
    Capabilities,
    CodecOptions,
    Family,
    Open,
    PathAttributes,
)
from bgpmux.wire.messages import encode_open
from bgpmux.wire.packing import pack_announce, pack_withdraw
from bgpmux.wire.prefix import Prefix, prefix_from_str, prefix_to_str

from .add_path_decode import NO_PATH_ID, decode_path_update, path_table, path_updates
from .core_helpers import FakeLink

BOTH = (IPV4_UNICAST, IPV6_UNICAST)

# ---------------------------------------------------------------------------- negotiation


def _ours(add_path_send: bool = True) -> Open:
    return local_open(
        SessionConfig(local_asn=64512, router_id="10.0.0.2", passive=True, add_path_send=True)
        if add_path_send
        else SessionConfig(local_asn=64512, router_id="10.0.0.2", passive=True)
    )


def _peer(*add_path: tuple[Family, int], families: tuple[Family, ...] = BOTH) -> Open:
    caps = Capabilities(multiprotocol=families, four_octet_as=64512, add_path=add_path)
    return Open(64512, 90, "10.0.0.3", caps)


def test_our_open_offers_add_path_send_for_every_family_and_never_receive() -> None:
    ours = _ours()
    assert ours.capabilities.add_path == (
        (IPV4_UNICAST, ADD_PATH_SEND),
        (IPV6_UNICAST, ADD_PATH_SEND),
    )
    assert _ours(add_path_send=False).capabilities.add_path == ()
    encode_open(ours)  # encodes


@pytest.mark.parametrize(
    ("peer_add_path", "expected"),
    [
        # BIRD `add paths rx`: receive for both families -> we send several paths for both.
        (((IPV4_UNICAST, ADD_PATH_RECEIVE), (IPV6_UNICAST, ADD_PATH_RECEIVE)), BOTH),
        # send/receive counts as receive.
        (((IPV4_UNICAST, ADD_PATH_SEND | ADD_PATH_RECEIVE),), (IPV4_UNICAST,)),
        # The peer only sends (`add paths tx`): it takes one path; we never take its paths.
        (((IPV4_UNICAST, ADD_PATH_SEND), (IPV6_UNICAST, ADD_PATH_SEND)), ()),
        # No ADD-PATH from the peer: best path only.
        ((), ()),
    ],
)
def test_add_path_is_negotiated_per_family_where_the_peer_receives(
    peer_add_path: tuple[tuple[Family, int], ...], expected: tuple[Family, ...]
) -> None:
    neg = negotiate(_ours(), _peer(*peer_add_path))
    assert neg.add_path_send == expected
    assert neg.options.add_path_send == frozenset(expected)
    assert neg.peer_offered_add_path == bool(peer_add_path)


def test_add_path_needs_the_family_negotiated_and_our_offer() -> None:
    # The peer asks for IPv6 paths but negotiated IPv4 only: nothing for IPv6.
    peer = _peer((IPV6_UNICAST, ADD_PATH_RECEIVE), families=(IPV4_UNICAST,))
    assert negotiate(_ours(), peer).add_path_send == ()
    # clients[].add_path: false -> no capability from us, so the best path only.
    peer = _peer((IPV4_UNICAST, ADD_PATH_RECEIVE))
    assert negotiate(_ours(add_path_send=False), peer).add_path_send == ()


def test_client_profile_follows_clients_add_path() -> None:
    config = parse_config(_config(add_path_plain=False), env={})
    calico, plain = config.clients[0], config.clients[1]
    assert calico.add_path is True  # the default
    assert client_session_config(config, calico).add_path_send is True
    assert client_session_config(config, plain).add_path_send is False


# ---------------------------------------------------------------------------- packing

V4 = [prefix_from_str(f"10.99.{i // 256}.{i % 256}/32")[1] for i in range(2000)]
V6 = [prefix_from_str(f"2001:db8:99::{i:x}/128")[1] for i in range(1000)]
NH4 = ipaddress.ip_address("10.0.1.1").packed
NH6 = ipaddress.ip_address("2001:db8:1::1").packed


@pytest.mark.parametrize(
    ("family", "prefixes", "nh"), [(IPV4_UNICAST, V4, NH4), (IPV6_UNICAST, V6, NH6)]
)
def test_path_ids_are_packed_on_every_nlri_and_withdrawal(
    family: Family, prefixes: list[Prefix], nh: bytes
) -> None:
    attrs = PathAttributes(as_path=((2, (65001,)),))
    packed, too_large = pack_announce(family, attrs, nh, prefixes, path_id=7)
    assert not too_large and len(packed) > 1
    assert all(len(m) <= 4096 for m in packed)
    got = [decode_path_update(m) for m in packed]
    assert [a for u in got for a in u.announced] == [
        (family, 7, _text(family, p)) for p in prefixes
    ]
    assert {u.next_hop for u in got} == {str(ipaddress.ip_address(nh))}
    withdrawn = pack_withdraw(family, prefixes, path_id=0xFFFFFFFF)
    assert all(len(m) <= 4096 for m in withdrawn)
    got = [decode_path_update(m) for m in withdrawn]
    assert [w for u in got for w in u.withdrawn] == [
        (family, 0xFFFFFFFF, _text(family, p)) for p in prefixes
    ]
    assert all(not u.announced for u in got)


def test_path_id_costs_four_octets_per_prefix_in_the_size_check() -> None:
    attrs = PathAttributes(as_path=((2, (65001,)),))
    plain, _ = pack_announce(IPV4_UNICAST, attrs, NH4, V4[:1])
    room = 4096 - len(plain[0]) + 5  # NLRI octets one message has beside these attributes
    # Exactly as many /32s (5 octets, 9 with a path id) as fit, then one more message.
    fit = room // 9
    packed, _ = pack_announce(IPV4_UNICAST, attrs, NH4, V4[:fit], path_id=1)
    assert len(packed) == 1
    packed, _ = pack_announce(IPV4_UNICAST, attrs, NH4, V4[: fit + 1], path_id=1)
    assert len(packed) == 2


def _text(family: Family, prefix: Prefix) -> str:
    return prefix_to_str(family, prefix)


# ---------------------------------------------------------------------------- the core


def _config(add_path_plain: bool = True) -> str:
    return f"""
node: {{asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2, address_v6: "2001:db8:ff::2"}}
engine: native
upstreams:
  - {{name: tor-a, address: 10.0.1.1, asn: 65000}}
  - {{name: tor-b, address: 10.0.2.1, asn: 65000}}
clients:
  - {{name: calico, listen: "127.0.0.1:1790", asn: 64512, receive_upstream_routes: true,
     accept: ["10.244.0.0/16 le 32"]}}
  - {{name: plain, listen: "127.0.0.1:1791", asn: 64512, receive_upstream_routes: true,
     accept: ["10.245.0.0/16 le 32"], add_path: {str(add_path_plain).lower()}}}
"""


ADD_PATH_OPTIONS = CodecOptions(max_message_len=65535, add_path_send=frozenset(BOTH))
A_NH, B_NH = "10.0.1.1", "10.0.2.1"


def _routes(upstream: str, nh: str, *prefixes: str, med: int | None = None) -> UpstreamRoutes:
    next_hop = ipaddress.ip_address(nh).packed
    attrs = PathAttributes(as_path=((2, (65000,)),), next_hop=next_hop, med=med)
    return UpstreamRoutes(
        upstream, IPV4_UNICAST, attrs, next_hop, tuple(prefix_from_str(p)[1] for p in prefixes)
    )


def _withdrawn(upstream: str, *prefixes: str) -> UpstreamWithdrawn:
    return UpstreamWithdrawn(upstream, IPV4_UNICAST, tuple(prefix_from_str(p)[1] for p in prefixes))


@pytest.fixture
def dual() -> tuple[Core, FakeEngine, FakeLink, FakeLink]:
    """Two upstreams, an ADD-PATH client (calico) and a client without it (plain)."""
    core = Core(parse_config(_config(), env={}), FakeEngine(), now=0.0)
    for name in ("tor-a", "tor-b"):
        core.handle(UpstreamEstablished(name), 0.0)
    calico, plain = FakeLink(), FakeLink()
    calico.options = ADD_PATH_OPTIONS
    core.handle(ClientEstablished("calico", calico, False), 0.0)
    core.handle(ClientEstablished("plain", plain, False), 0.0)
    core.flush(0.0)
    calico.sent.clear()
    plain.sent.clear()
    return core, core.engine, calico, plain  # type: ignore[return-value]


def test_add_path_client_gets_every_upstreams_path_the_other_the_best(dual) -> None:
    core, _engine, calico, plain = dual
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16", "10.98.0.0/16"), 1.0)
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16", "10.97.0.0/16"), 1.0)
    core.flush(1.0)
    # Path ids: the upstream's place in the config, plus one.
    assert path_table(calico.sent) == {
        ("10.99.0.0/16", 1): A_NH,
        ("10.99.0.0/16", 2): B_NH,
        ("10.98.0.0/16", 1): A_NH,
        ("10.97.0.0/16", 2): B_NH,
    }
    table = plain.table()
    assert set(table) == {"10.99.0.0/16", "10.98.0.0/16", "10.97.0.0/16"}
    assert table["10.99.0.0/16"].next_hop == ipaddress.ip_address(A_NH).packed  # tor-a first


def test_withdrawals_go_per_path_id_and_the_best_moves_for_the_other(dual) -> None:
    core, _engine, calico, plain = dual
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16"), 1.0)
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16"), 1.0)
    core.flush(1.0)
    calico.sent.clear()
    plain.sent.clear()
    # tor-b's path (not the best) goes: only path id 2 is withdrawn; plain hears nothing.
    core.handle(_withdrawn("tor-b", "10.99.0.0/16"), 2.0)
    core.flush(2.0)
    updates = path_updates(calico.sent)
    assert [u.withdrawn for u in updates] == [[(IPV4_UNICAST, 2, "10.99.0.0/16")]]
    assert not any(u.announced for u in updates)
    assert plain.sent == []
    # tor-b again, then tor-a (the best) goes: path 1 withdrawn, plain moves to tor-b.
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16"), 3.0)
    core.handle(_withdrawn("tor-a", "10.99.0.0/16"), 3.0)
    core.flush(3.0)
    assert path_table(calico.sent) == {("10.99.0.0/16", 2): B_NH}
    assert plain.table()["10.99.0.0/16"].next_hop == ipaddress.ip_address(B_NH).packed


def test_a_changed_path_replaces_the_one_under_its_path_id(dual) -> None:
    core, _engine, calico, _plain = dual
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16"), 1.0)
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16"), 1.0)
    core.flush(1.0)
    calico.sent.clear()
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16", med=5), 2.0)
    core.flush(2.0)
    updates = path_updates(calico.sent)
    assert [u.announced for u in updates] == [[(IPV4_UNICAST, 2, "10.99.0.0/16")]]
    assert not any(u.withdrawn for u in updates)


def test_upstream_down_withdraws_its_path_ids_only(dual) -> None:
    core, _engine, calico, plain = dual
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16", "10.98.0.0/16"), 1.0)
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16"), 1.0)
    core.flush(1.0)
    core.handle(UpstreamDown("tor-b"), 2.0)
    core.flush(2.0)
    assert path_table(calico.sent) == {("10.99.0.0/16", 1): A_NH, ("10.98.0.0/16", 1): A_NH}
    core.handle(UpstreamDown("tor-a"), 3.0)
    core.flush(3.0)
    assert path_table(calico.sent) == {}
    assert plain.table() == {}


def test_full_table_at_establishment_and_on_route_refresh(dual) -> None:
    core, _engine, _calico, plain = dual
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16"), 1.0)
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16", "10.97.0.0/16"), 1.0)
    core.flush(1.0)
    core.handle(ClientDown("calico"), 2.0)
    again = FakeLink()
    again.options = ADD_PATH_OPTIONS
    core.handle(ClientEstablished("calico", again, False), 3.0)
    core.flush(3.0)
    expected = {
        ("10.99.0.0/16", 1): A_NH,
        ("10.99.0.0/16", 2): B_NH,
        ("10.97.0.0/16", 2): B_NH,
    }
    assert path_table(again.sent) == expected
    again.sent.clear()
    core.handle(ClientRouteRefresh("calico"), 4.0)
    core.flush(4.0)
    assert path_table(again.sent) == expected
    assert set(plain.table()) == {"10.99.0.0/16", "10.97.0.0/16"}


def test_a_client_whose_add_path_went_down_no_longer_costs_anything(dual) -> None:
    core, _engine, calico, _plain = dual
    assert core.client_export.multipath == frozenset(BOTH)
    core.handle(ClientDown("calico"), 1.0)
    assert core.client_export.multipath == frozenset()
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16"), 2.0)
    core.flush(2.0)
    assert calico.sent == []


def test_add_path_only_for_the_negotiated_family(dual) -> None:
    """A client that takes several IPv4 paths but one IPv6 path."""
    core, _engine, _calico, _plain = dual
    core.handle(ClientDown("calico"), 1.0)
    link = FakeLink()
    link.options = CodecOptions(max_message_len=65535, add_path_send=frozenset({IPV4_UNICAST}))
    core.handle(ClientEstablished("calico", link, False), 1.0)
    v6 = prefix_from_str("2001:db8:99::/48")[1]
    for name, nh in (("tor-a", "2001:db8:1::1"), ("tor-b", "2001:db8:2::1")):
        packed = ipaddress.ip_address(nh).packed
        core.handle(
            UpstreamRoutes(
                name, IPV6_UNICAST, PathAttributes(as_path=((2, (65000,)),)), packed, (v6,)
            ),
            2.0,
        )
        core.handle(_routes(name, A_NH if name == "tor-a" else B_NH, "10.99.0.0/16"), 2.0)
    core.flush(2.0)
    got = [a for u in path_updates(link.sent, {IPV4_UNICAST}) for a in u.announced]
    assert sorted(got) == [
        (IPV4_UNICAST, 1, "10.99.0.0/16"),
        (IPV4_UNICAST, 2, "10.99.0.0/16"),
        (IPV6_UNICAST, NO_PATH_ID, "2001:db8:99::/48"),  # IPv6: the best path, no path id
    ]


def test_receive_upstream_routes_off_withdraws_every_path(dual) -> None:
    core, _engine, calico, _plain = dual
    core.handle(_routes("tor-a", A_NH, "10.99.0.0/16"), 1.0)
    core.handle(_routes("tor-b", B_NH, "10.99.0.0/16"), 1.0)
    core.flush(1.0)
    new = parse_config(
        _config().replace(
            'receive_upstream_routes: true,\n     accept: ["10.244',
            'receive_upstream_routes: false,\n     accept: ["10.244',
        ),
        env={},
    )
    assert not new.clients[0].receive_upstream_routes
    core.handle(Reconfigure(new), 2.0)
    core.flush(2.0)
    assert path_table(calico.sent) == {}
    assert core.client_export.multipath == frozenset()


def test_add_path_change_needs_a_new_session() -> None:
    from bgpmux.core import reload

    running = parse_config(_config(), env={})
    new = parse_config(_config(add_path_plain=False), env={})
    plan = reload.plan(running, new)
    assert plan.pending == [] and plan.client_fields == {"plain": ["add_path"]}
    assert plan.clients_removed == ["plain"] and [c.name for c in plan.clients_added] == ["plain"]
    assert [c.name for c in plan.policies] == ["calico"]


def test_one_upstream_add_path_client_gets_its_path_under_id_1(setup) -> None:
    """One upstream (the usual rack): the ADD-PATH client gets the Loc-RIB's changes under the
    upstream's path id; nothing is collected per upstream."""
    core, _engine, _calico, _metallb = setup
    core.handle(ClientDown("calico"), 1.0)
    link = FakeLink()
    link.options = ADD_PATH_OPTIONS
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, *_tor_route("10.99.0.0/16")), 1.0)
    core.flush(1.0)
    core.handle(ClientEstablished("calico", link, False), 2.0)
    core.handle(
        UpstreamRoutes("tor", IPV4_UNICAST, *_tor_route("10.98.0.0/16", "10.97.0.0/16")), 2.0
    )
    core.flush(2.0)
    assert path_table(link.sent) == {
        ("10.99.0.0/16", 1): "10.0.0.1",
        ("10.98.0.0/16", 1): "10.0.0.1",
        ("10.97.0.0/16", 1): "10.0.0.1",
    }
    assert core.client_export._pending == {}
    core.handle(UpstreamWithdrawn("tor", IPV4_UNICAST, (prefix_from_str("10.98.0.0/16")[1],)), 3.0)
    core.handle(UpstreamDown("tor"), 3.0)
    core.flush(3.0)
    assert path_table(link.sent) == {}


def _tor_route(*prefixes: str) -> tuple[PathAttributes, bytes, tuple[Prefix, ...]]:
    nh = ipaddress.ip_address("10.0.0.1").packed
    attrs = PathAttributes(as_path=((2, (65000,)),), next_hop=nh)
    return attrs, nh, tuple(prefix_from_str(p)[1] for p in prefixes)
