"""N upstreams (dual ToR) in the core: every accepted client route to every upstream, nothing
from one upstream to another, and one upstream's session changes leave the other alone."""

from __future__ import annotations

import ipaddress

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import (
    ClientEstablished,
    ClientUpdate,
    PeersQuery,
    UpstreamDown,
    UpstreamEndOfRib,
    UpstreamEstablished,
    UpstreamRoutes,
)
from bgpmux.engines.fake import AnnounceCall, FakeEngine, WithdrawCall
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, PathAttributes
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import EOR_V4, EOR_V6, FakeLink, announce, withdraw

CONFIG = """
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2, address_v6: "2001:db8:ff::2",
       initial_sync_timeout: 30}
engine: native
upstreams:
  - {name: tor-a, address: 10.0.1.1, asn: 65000}
  - {name: tor-b, address: 10.0.2.1, asn: 65001}
clients:
  - {name: calico, listen: "127.0.0.1:1790", asn: 64512, receive_upstream_routes: true,
     accept: ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"]}
  - {name: metallb, listen: "127.0.0.1:1791", asn: 64514,
     accept: ["198.51.100.0/24 le 32"]}
"""
TORS = ("tor-a", "tor-b")


@pytest.fixture
def rack() -> tuple[Core, FakeEngine, FakeLink]:
    engine = FakeEngine(TORS)
    core = Core(parse_config(CONFIG, env={}), engine, now=0.0)
    for name in TORS:
        core.handle(UpstreamEstablished(name), 0.0)
    calico, metallb = FakeLink(), FakeLink()
    core.handle(ClientEstablished("calico", calico, False), 0.0)
    core.handle(ClientEstablished("metallb", metallb, False), 0.0)
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "2001:db8:244:1::/64")), 0.0)
    core.handle(ClientUpdate("metallb", announce("198.51.100.10/32", as_path=(64514,))), 0.0)
    for link_name in ("calico", "metallb"):
        core.handle(ClientUpdate(link_name, EOR_V4), 0.0)
        core.handle(ClientUpdate(link_name, EOR_V6), 0.0)
    core.flush(0.0)
    return core, engine, calico


def _tor_routes(upstream: str, nh: str, *prefixes: str) -> UpstreamRoutes:
    next_hop = ipaddress.ip_address(nh).packed
    asn = 65000 if upstream == "tor-a" else 65001
    attrs = PathAttributes(as_path=((2, (asn,)),), next_hop=next_hop)
    return UpstreamRoutes(
        upstream, IPV4_UNICAST, attrs, next_hop, tuple(prefix_from_str(p)[1] for p in prefixes)
    )


def _calls_to(engine: FakeEngine, upstream: str) -> list[object]:
    return [
        c
        for c in engine.calls
        if upstream in getattr(c, "upstreams", (getattr(c, "upstream", None),))
    ]


def test_every_accepted_client_route_goes_to_every_upstream(rack) -> None:
    core, engine, _calico = rack
    for name in TORS:
        assert set(engine.table(IPV4_UNICAST, name)) == {"10.244.1.0/26", "198.51.100.10/32"}
        assert set(engine.table(IPV6_UNICAST, name)) == {"2001:db8:244:1::/64"}
        assert engine.eor_sent(name, IPV4_UNICAST)
    core.handle(ClientUpdate("metallb", withdraw("198.51.100.10/32")), 1.0)
    core.flush(1.0)
    for name in TORS:
        assert set(engine.table(IPV4_UNICAST, name)) == {"10.244.1.0/26"}


def test_no_route_of_one_upstream_goes_to_another(rack) -> None:
    core, engine, calico = rack
    engine.clear()
    core.handle(_tor_routes("tor-a", "10.0.1.1", "10.99.0.0/16", "0.0.0.0/0"), 1.0)
    core.handle(_tor_routes("tor-b", "10.0.2.1", "10.98.0.0/16"), 1.0)
    core.flush(1.0)
    assert engine.calls == []  # nothing to any upstream
    assert set(calico.table()) >= {"10.99.0.0/16", "0.0.0.0/0", "10.98.0.0/16"}
    # ...also not when one of them (re)connects and is sent the whole table.
    core.handle(UpstreamDown("tor-b"), 2.0)
    core.handle(UpstreamEstablished("tor-b"), 3.0)
    core.flush(3.0)
    assert set(engine.table(IPV4_UNICAST, "tor-b")) == {"10.244.1.0/26", "198.51.100.10/32"}


def test_one_upstream_going_down_leaves_the_other_alone(rack) -> None:
    core, engine, calico = rack
    core.handle(_tor_routes("tor-a", "10.0.1.1", "10.99.0.0/16"), 1.0)
    core.handle(_tor_routes("tor-b", "10.0.2.1", "10.99.0.0/16", "10.98.0.0/16"), 1.0)
    core.flush(1.0)
    engine.clear()
    core.handle(UpstreamDown("tor-a"), 2.0)
    core.flush(2.0)
    core.handle(UpstreamEstablished("tor-a"), 3.0)
    core.handle(UpstreamEndOfRib("tor-a", IPV4_UNICAST), 3.0)
    core.flush(3.0)
    # tor-b got no call at all: no withdrawal, no re-announcement, no End-of-RIB.
    assert _calls_to(engine, "tor-b") == []
    # tor-a got its table again and End-of-RIB.
    assert any(isinstance(c, AnnounceCall) for c in _calls_to(engine, "tor-a"))
    assert not any(isinstance(c, WithdrawCall) for c in engine.calls)
    assert engine.eor_sent("tor-a", IPV4_UNICAST)
    # Each upstream has its own state: tor-a flapped once, tor-b never.
    assert (core.upstreams["tor-a"].flaps, core.upstreams["tor-b"].flaps) == (1, 0)
    assert core.upstreams["tor-b"].established_at == 0.0
    counts = core.handle(PeersQuery(), 3.0)
    assert counts["tor-b"]["prefixes"] == 2 and counts["tor-b"]["advertised"] == 3  # type: ignore[index]
    # Calico kept tor-b's routes the whole time; tor-a's came back.
    assert set(calico.table()) >= {"10.99.0.0/16", "10.98.0.0/16"}


def test_the_best_of_two_upstreams_moves_when_one_goes(rack) -> None:
    core, _engine, calico = rack
    core.handle(_tor_routes("tor-a", "10.0.1.1", "10.99.0.0/16"), 1.0)
    core.handle(_tor_routes("tor-b", "10.0.2.1", "10.99.0.0/16"), 1.0)
    core.flush(1.0)
    nh = calico.table()["10.99.0.0/16"].next_hop
    assert nh == ipaddress.ip_address("10.0.1.1").packed  # the first configured wins
    core.handle(UpstreamDown("tor-a"), 2.0)
    core.flush(2.0)
    assert calico.table()["10.99.0.0/16"].next_hop == ipaddress.ip_address("10.0.2.1").packed
