"""Smoke test of the interop harness: each driver, as client and as ToR, over a veth pair."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import pytest

from lab import (
    Announce,
    Bird,
    Daemon,
    ExaBgp,
    Frr,
    GoBgp,
    Host,
    Neighbor,
    Route,
    Topology,
    wait_until,
)
from lab.bird import parse_show_route_all

CLIENT_AS, TOR_AS = 65001, 65000
CLIENT_V4, TOR_V4 = "10.0.0.1", "10.0.0.2"
CLIENT_V6, TOR_V6 = "2001:db8:ff::1", "2001:db8:ff::2"
PREFIX_V4, PREFIX_V6 = "198.51.100.0/24", "2001:db8:100::/48"
COMMUNITY, LARGE_COMMUNITY, MED = (65001, 100), (65001, 1, 2), 10

CLIENT_ANNOUNCE = [
    Announce(PREFIX_V4, communities=(COMMUNITY,), large_communities=(LARGE_COMMUNITY,), med=MED),
    Announce(PREFIX_V6, communities=(COMMUNITY,)),
]
# One session per family, each over its own transport.
CLIENT_NEIGHBORS = [
    Neighbor(TOR_V4, TOR_AS, source=CLIENT_V4, hold_time=9),
    Neighbor(TOR_V6, TOR_AS, source=CLIENT_V6, hold_time=9),
]
TOR_NEIGHBORS = [
    Neighbor(CLIENT_V4, CLIENT_AS, passive=True, source=TOR_V4, hold_time=9),
    Neighbor(CLIENT_V6, CLIENT_AS, passive=True, source=TOR_V6, hold_time=9),
]


@dataclass(frozen=True)
class Pair:
    client: type[Daemon]
    tor: type[Daemon]

    def __str__(self) -> str:
        return f"{self.client.__name__}-dials-{self.tor.__name__}"


PAIRS = [
    Pair(Bird, GoBgp),
    Pair(Frr, Bird),
    Pair(ExaBgp, Bird),
    Pair(GoBgp, Frr),
    Pair(Bird, ExaBgp),
]


def start_client(kind: type[Daemon], host: Host) -> Daemon:
    args = (host, "client", CLIENT_AS, CLIENT_V4, CLIENT_NEIGHBORS, CLIENT_ANNOUNCE)
    if kind is Bird:
        return Bird(*args).start()
    if kind is Frr:
        return Frr(*args, listen_port=None).start()
    if kind is GoBgp:
        return GoBgp(*args, listen_port=None).start()
    return ExaBgp(*args).start()


def start_tor(kind: type[Daemon], host: Host) -> Daemon:
    if kind is ExaBgp:
        tor = ExaBgp(host, "tor", TOR_AS, TOR_V4, TOR_NEIGHBORS, listen_addresses=(TOR_V4, TOR_V6))
        return tor.start()
    return kind(host, "tor", TOR_AS, TOR_V4, TOR_NEIGHBORS).start()


def wait_established(daemon: Daemon, address: str, daemons: list[Daemon]) -> None:
    wait_until(
        lambda: daemon.neighbor_state(address) == "Established",
        timeout=25,
        what=f"{daemon} session with {address} Established",
        logs_of=daemons,
    )


@pytest.mark.interop
@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_client_routes_reach_tor(pair: Pair) -> None:
    with Topology(tag="smk") as topo:
        client_host, tor_host = topo.add_host("client"), topo.add_host("tor")
        topo.link(
            client_host, [f"{CLIENT_V4}/30", f"{CLIENT_V6}/64"],
            tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"],
        )  # fmt: skip
        tor = start_tor(pair.tor, tor_host)
        client = start_client(pair.client, client_host)
        daemons = [client, tor]

        for address in (CLIENT_V4, CLIENT_V6):
            wait_established(tor, address, daemons)
        for address in (TOR_V4, TOR_V6):
            assert client.neighbor_state(address) == "Established"

        v4 = wait_until(
            lambda: tor.routes_of("ipv4").get(PREFIX_V4),
            timeout=15,
            what=f"{PREFIX_V4} at {tor}",
            logs_of=daemons,
        )
        assert v4.next_hop == CLIENT_V4
        assert v4.as_path == [CLIENT_AS]
        assert COMMUNITY in v4.communities
        assert LARGE_COMMUNITY in v4.large_communities
        assert v4.med == MED

        v6 = wait_until(
            lambda: tor.routes_of("ipv6").get(PREFIX_V6),
            timeout=15,
            what=f"{PREFIX_V6} at {tor}",
            logs_of=daemons,
        )
        assert v6.next_hop == CLIENT_V6
        assert v6.as_path == [CLIENT_AS]
        assert COMMUNITY in v6.communities


BIRDC_SAMPLE = """BIRD 2.0.12 ready.
Table master4:
198.51.100.0/24      unicast [peer1 10:00:01.123] * (100) [AS65001i]
\tvia 10.0.0.1 on eth1
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65001 65002
\tBGP.next_hop: 10.0.0.1
\tBGP.med: 10
\tBGP.local_pref: 100
\tBGP.community: (65001,100) (65001,101)
\tBGP.large_community: (65001, 1, 2)
                     unicast [peer2 10:00:02.000] (100) [AS65003i]
\tvia 10.0.0.5 on eth2
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 65003
\tBGP.next_hop: 10.0.0.5
\tBGP.local_pref: 100
203.0.113.0/24       unreachable [peer2 10:00:02.000] * (100) [AS65003?]
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 65003 {65004 65005}
\tBGP.next_hop: 10.0.0.5
\tBGP.community: (1,2) (3,4)
\t\t(5,6)
"""


def test_parse_birdc_show_route_all() -> None:
    routes = parse_show_route_all(BIRDC_SAMPLE)
    assert set(routes) == {"198.51.100.0/24", "203.0.113.0/24"}
    best = routes["198.51.100.0/24"]
    assert best == Route(
        next_hop="10.0.0.1",
        as_path=[65001, 65002],
        communities={(65001, 100), (65001, 101)},
        large_communities={(65001, 1, 2)},
        med=10,
        local_pref=100,
        origin="igp",
    )
    other = routes["203.0.113.0/24"]
    assert other.as_path == [65003, 65004, 65005]
    assert other.communities == {(1, 2), (3, 4), (5, 6)}
    assert other.origin == "incomplete"


@pytest.mark.interop
def test_bird_client_graceful_restart_towards_local_mux() -> None:
    """Calico's shape: BIRD (`-R`, graceful restart, ADD-PATH offered, TCP-MD5) dials a local
    speaker on 127.0.0.1:1790 from the node address; SIGKILL and restart keep its routes."""
    node_ip = "10.0.0.1"
    with Topology(tag="gr") as topo:
        node = topo.add_host("node")
        node.add_address(f"{node_ip}/32")
        mux = GoBgp(
            node, "mux", CLIENT_AS, "10.255.0.1",
            [Neighbor(node_ip, CLIENT_AS, passive=True, password="s3cret", graceful_restart=60)],
            listen_port=1790,
        ).start()  # fmt: skip
        calico = Bird(
            node, "calico", CLIENT_AS, node_ip,
            [Neighbor("127.0.0.1", CLIENT_AS, port=1790, source=node_ip, password="s3cret",
                      graceful_restart=60, add_path=True)],
            [Announce("10.244.1.0/26")],
            graceful_recovery=True,
        ).start()  # fmt: skip
        daemons = [calico, mux]
        wait_until(
            lambda: calico.neighbor_state("127.0.0.1") == "Established",
            timeout=20,
            what="BIRD session to 127.0.0.1:1790",
            logs_of=daemons,
        )
        route = wait_until(
            lambda: mux.routes_of("ipv4").get("10.244.1.0/26"),
            timeout=10,
            what="Calico's route at the mux",
            logs_of=daemons,
        )
        assert route.next_hop == node_ip

        calico.kill9()
        wait_until(
            lambda: mux.neighbor_state(node_ip) != "Established",
            timeout=15,
            what="mux noticing the dead session",
            logs_of=daemons,
        )
        assert "10.244.1.0/26" in mux.routes_of("ipv4"), "graceful restart helper dropped routes"

        calico.start()
        wait_until(
            lambda: calico.neighbor_state("127.0.0.1") == "Established",
            timeout=20,
            what="BIRD session re-established after restart",
            logs_of=daemons,
        )
        assert "10.244.1.0/26" in mux.routes_of("ipv4")


def test_topology_cleans_up() -> None:
    started = time.monotonic()
    with Topology(tag="cln") as topo:
        host = topo.add_host("a")
        proc = host.spawn(["sleep", "60"], "sleep.log")
        netns = host.netns
        workdir = topo.workdir
    assert proc.poll() is not None
    assert not workdir.exists()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert netns not in listed
    assert time.monotonic() - started < 10
