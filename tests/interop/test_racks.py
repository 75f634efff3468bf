"""One config for every rack, IPv6 upstream sessions and IPv6-only nodes, with real daemons.

    tor1 (GoBGP, AS 65001)  ──10.0.12.0/30──  tor2 (GoBGP, AS 65002)
     │ 10.0.1.1 (and .3), 2001:db8:1::1         │ 10.0.2.1           │ 2001:db8:3::1
    node1 10.0.1.2, 2001:db8:1::2              node2 10.0.2.2       node3 2001:db8:3::2
    (dual stack)                               (IPv4)               (IPv6 only)

Each node's default route points at its rack's ToR, and the ToRs route to each other, so a
node could reach the other rack's ToR: node1 and node2 run one and the same configuration
(``RACKS``), and each must dial only its own ToR. node1's second upstream is an IPv6 session
to tor1 (``default-gateway6``) that carries IPv4 and IPv6 routes. node3 is IPv6-only: no
node.address, an explicit router id, IPv6 routes only. A GoBGP client on node1 and node3
announces one IPv4 and one IPv6 route.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import Announce, Bgpmux, GoBgp, Host, Neighbor, Topology, wait_until

pytestmark = pytest.mark.interop

NODE_AS, CLIENT_AS, TOR1_AS, TOR2_AS = 64512, 64515, 65001, 65002
NODE1_V4, NODE1_V6, TOR1_V4, TOR1_V4_MOVED, TOR1_V6 = (
    "10.0.1.2", "2001:db8:1::2", "10.0.1.1", "10.0.1.3", "2001:db8:1::1",
)  # fmt: skip
NODE2_V4, TOR2_V4 = "10.0.2.2", "10.0.2.1"
NODE3_V6, TOR2_V6, NODE3_ROUTER_ID = "2001:db8:3::2", "2001:db8:3::1", "10.255.0.3"
CLIENT_V4, CLIENT_V6 = "198.51.100.10/32", "2001:db8:100::10/128"
TOR_ROUTE_V4, TOR_ROUTE_V6 = "10.99.1.0/24", "2001:db8:99:1::/64"
ENGINES = ("native", "exabgp", "gobgp")
CLIENT = {
    "name": "lb",
    "asn": CLIENT_AS,
    "accept": ["198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"],
    "receive_upstream_routes": True,
}

# One configuration for every node (node1, node2): what differs comes from the environment
# (NODE_IP, and NODE_IPS from status.hostIPs, as the DaemonSet sets them: node1 is dual-stack,
# node2 IPv4 only) and from each node's default routes.
RACKS: dict[str, Any] = {
    "node": {
        "asn": NODE_AS,
        "router_id": "${NODE_IP}",
        "addresses": "${NODE_IPS}",
        "initial_sync_timeout": 1,
    },
    "upstreams": [
        {"name": "tor-rack1", "address": "default-gateway", "asn": TOR1_AS,
         "node_cidrs": ["10.0.1.0/24"], "hold_time": 9},
        {"name": "tor-rack1-v6", "address": "default-gateway6", "asn": TOR1_AS,
         "node_cidrs": ["2001:db8:1::/64"], "hold_time": 9},
        {"name": "tor-rack2", "address": "default-gateway", "asn": TOR2_AS,
         "node_cidrs": ["10.0.2.0/24"], "hold_time": 9},
    ],
    "clients": [{**CLIENT, "listen": "127.0.0.1:1790"}],
}  # fmt: skip

IPV6_ONLY: dict[str, Any] = {
    "node": {
        "asn": NODE_AS,
        "router_id": NODE3_ROUTER_ID,
        "address_v6": NODE3_V6,
        "initial_sync_timeout": 1,
    },
    "upstreams": [
        {"name": "tor", "address": "default-gateway6", "asn": TOR2_AS, "hold_time": 9},
    ],
    "clients": [{**CLIENT, "listen": "[::1]:1790"}],
    "metrics": {"listen": "[::1]:9479"},
}


class NodeMux(Bgpmux):
    """bgpmux with the node's environment (NODE_IP, NODE_IPS), as the DaemonSet gives it."""

    def __init__(self, host: Host, config: dict[str, Any], engine: str, env: dict[str, str]):
        super().__init__(host, f"bgpmux-{engine}", {**config, "engine": engine})
        self.node_env = env

    def env(self) -> dict[str, str]:
        return self.node_env


@dataclass
class Fabric:
    topo: Topology
    hosts: dict[str, Host]
    tor1: GoBgp
    tor2: GoBgp


def tor_neighbor(address: str, families: tuple[str, ...] = ("ipv4", "ipv6")) -> Neighbor:
    return Neighbor(address, NODE_AS, passive=True, hold_time=9, families=families)


@pytest.fixture(scope="module")
def fabric() -> Iterator[Fabric]:
    with Topology(tag="rk", prefix="mr") as topo:
        hosts = {name: topo.add_host(name) for name in ("node1", "tor1", "node2", "tor2", "node3")}
        topo.link(
            hosts["node1"], [f"{NODE1_V4}/24", f"{NODE1_V6}/64"],
            hosts["tor1"], [f"{TOR1_V4}/24", f"{TOR1_V4_MOVED}/24", f"{TOR1_V6}/64"],
        )  # fmt: skip
        topo.link(hosts["node2"], [f"{NODE2_V4}/24"], hosts["tor2"], [f"{TOR2_V4}/24"])
        topo.link(hosts["node3"], [f"{NODE3_V6}/64"], hosts["tor2"], [f"{TOR2_V6}/64"])
        topo.link(hosts["tor1"], ["10.0.12.1/30"], hosts["tor2"], ["10.0.12.2/30"])
        for name, argv in (
            ("node1", ["ip", "route", "add", "default", "via", TOR1_V4]),
            ("node1", ["ip", "-6", "route", "add", "default", "via", TOR1_V6]),
            ("node2", ["ip", "route", "add", "default", "via", TOR2_V4]),
            ("node3", ["ip", "-6", "route", "add", "default", "via", TOR2_V6]),
            ("tor1", ["ip", "route", "add", "10.0.2.0/24", "via", "10.0.12.2"]),
            ("tor2", ["ip", "route", "add", "10.0.1.0/24", "via", "10.0.12.1"]),
            ("tor1", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]),
            ("tor2", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]),
        ):
            hosts[name].run(argv)
        tor1 = GoBgp(
            hosts["tor1"], "tor", TOR1_AS, TOR1_V4,
            [tor_neighbor(NODE1_V4), tor_neighbor(NODE1_V6), tor_neighbor(NODE2_V4)],
            [Announce(TOR_ROUTE_V4, TOR1_V4), Announce(TOR_ROUTE_V6, TOR1_V6)],
        ).start()  # fmt: skip
        tor2 = GoBgp(
            hosts["tor2"], "tor", TOR2_AS, TOR2_V4,
            [tor_neighbor(NODE2_V4), tor_neighbor(NODE1_V4), tor_neighbor(NODE3_V6)],
            [Announce("10.99.2.0/24", TOR2_V4), Announce("2001:db8:99:2::/64", TOR2_V6)],
        ).start()  # fmt: skip
        yield Fabric(topo, hosts, tor1, tor2)


def start_client(host: Host, mux_address: str, router_id: str) -> GoBgp:
    client = GoBgp(
        host, "client", CLIENT_AS, router_id,
        [Neighbor(mux_address, NODE_AS, port=1790, hold_time=9, families=("ipv4", "ipv6"))],
        [Announce(CLIENT_V4, "10.9.9.9"), Announce(CLIENT_V6, "2001:db8:9::9")],
        listen_port=None, api_port=50061,
    )  # fmt: skip
    return client.start()


def messages_received(tor: GoBgp, neighbor: str) -> int:
    """Every message the ToR has had from ``neighbor`` (0: it never spoke to the ToR)."""
    state = tor.neighbor_info(neighbor).get("state", {})
    received = state.get("messages", {}).get("received", {})
    return int(received.get("total", 0) or 0)


def established_since(tor: GoBgp, neighbor: str) -> int:
    """When the ToR's session with ``neighbor`` came up (GoBGP's uptime: a timestamp)."""
    assert tor.neighbor_state(neighbor) == "Established"
    return int(tor.neighbor_info(neighbor)["timers"]["state"]["uptime"]["seconds"])


def adj_in(tor: GoBgp, neighbor: str, family: str) -> dict[str, str]:
    """prefix -> next hop of what the ToR received on the session with ``neighbor``."""
    out = tor.cli(["neighbor", neighbor, "adj-in", "-a", family, "-j"], check=False).stdout
    table = json.loads(out or "{}")
    hops: dict[str, str] = {}
    for prefix, paths in table.items():
        for attr in paths[0].get("attrs", []):
            if attr.get("type") in (3, 14) and "nexthop" in attr:
                hops[prefix] = attr["nexthop"]
    return hops


def check_config(host: Host, mux: Bgpmux, env: dict[str, str]) -> str:
    argv = ["env", *(f"{k}={v}" for k, v in env.items()), sys.executable, "-m", "bgpmux"]
    return host.run([*argv, "check-config", "-c", str(mux.config_path)]).stdout


@pytest.mark.parametrize("engine", ENGINES)
def test_one_config_two_racks_and_an_ipv6_upstream(fabric: Fabric, engine: str) -> None:
    node1, node2 = fabric.hosts["node1"], fabric.hosts["node2"]
    env1 = {"NODE_IP": NODE1_V4, "NODE_IPS": f"{NODE1_V4},{NODE1_V6}"}
    env2 = {"NODE_IP": NODE2_V4, "NODE_IPS": NODE2_V4}
    # a dial to the other rack's ToR would reach it: the "never dialled" below means something
    node1.run(["ping", "-c", "1", "-W", "2", TOR2_V4])
    mux1, mux2 = NodeMux(node1, RACKS, engine, env1), NodeMux(node2, RACKS, engine, env2)
    client = None
    try:
        for mux in (mux1, mux2):
            mux.start()
        client = start_client(node1, "127.0.0.1", "10.9.9.1")
        mux1.wait_established("tor-rack1", "tor-rack1-v6")
        mux2.wait_established("tor-rack2")
        assert set(mux1.sessions()) == {"lb", "tor-rack1", "tor-rack1-v6"}
        assert set(mux2.sessions()) == {"lb", "tor-rack2"}
        assert fabric.tor1.neighbor_state(NODE1_V4) == "Established"
        assert fabric.tor2.neighbor_state(NODE2_V4) == "Established"
        # the upstream that does not apply on a node is never dialled (the counter is read
        # right: the sessions that are up have messages)
        assert messages_received(fabric.tor1, NODE1_V4) > 0
        assert messages_received(fabric.tor2, NODE1_V4) == 0
        assert messages_received(fabric.tor1, NODE2_V4) == 0
        assert "not used on this node" in mux1.log_path.read_text()

        lines = check_config(node2, mux2, env2).splitlines()
        assert lines[0] == f"OK: 3 upstreams (1 on this node), 1 client, engine {engine}"
        assert lines[3] == (
            f"  upstream tor-rack2: applies, at {TOR2_V4} (node.address {NODE2_V4} is in "
            f"10.0.2.0/24; default-gateway is {TOR2_V4})"
        )

        # the IPv6 session carries both families, IPv4 with node.address as its next hop
        wait_until(
            lambda: adj_in(fabric.tor1, NODE1_V6, "ipv4") == {CLIENT_V4: NODE1_V4}
            and adj_in(fabric.tor1, NODE1_V6, "ipv6") == {CLIENT_V6: NODE1_V6},
            timeout=20, what="the client's routes over the IPv6 session", logs_of=[mux1],
        )  # fmt: skip
        wait_until(
            lambda: {TOR_ROUTE_V4, TOR_ROUTE_V6} <= set(mux1.routes(upstream="tor-rack1-v6")),
            timeout=20, what="tor1's routes over the IPv6 session", logs_of=[mux1],
        )  # fmt: skip

        # the default gateway moves: a reload resets that session, at the new address, and
        # leaves the IPv6 session alone
        v6_since = established_since(fabric.tor1, NODE1_V6)
        node1.run(["ip", "route", "replace", "default", "via", TOR1_V4_MOVED])
        assert mux1.proc is not None
        node1.kill(mux1.proc, signal.SIGHUP)
        wait_until(
            lambda: fabric.tor1.neighbor_info(NODE1_V4)["transport"]["local_address"]
            == TOR1_V4_MOVED
            and fabric.tor1.neighbor_state(NODE1_V4) == "Established",
            timeout=30, what="the session to the moved gateway", logs_of=[mux1],
        )  # fmt: skip
        mux1.wait_established("tor-rack1")
        assert "session identity changed (address)" in mux1.log_path.read_text()
        assert fabric.tor2.neighbor_state(NODE2_V4) == "Established"  # the other rack: untouched
        assert established_since(fabric.tor1, NODE1_V6) == v6_since
        assert adj_in(fabric.tor1, NODE1_V6, "ipv4") == {CLIENT_V4: NODE1_V4}
        assert adj_in(fabric.tor1, NODE1_V6, "ipv6") == {CLIENT_V6: NODE1_V6}
        wait_until(
            lambda: adj_in(fabric.tor1, NODE1_V4, "ipv4") == {CLIENT_V4: NODE1_V4},
            timeout=20, what="the client's route over the new session", logs_of=[mux1],
        )  # fmt: skip
    finally:
        node1.run(["ip", "route", "replace", "default", "via", TOR1_V4])
        for daemon in (client, mux1, mux2):
            if daemon is not None:
                daemon.stop()


@pytest.mark.parametrize("engine", ENGINES)
def test_ipv6_only_node(fabric: Fabric, engine: str) -> None:
    node3 = fabric.hosts["node3"]
    mux = NodeMux(node3, IPV6_ONLY, engine, {})
    client = None
    try:
        mux.start()
        client = start_client(node3, "::1", "10.9.9.3")
        mux.wait_established("tor", "lb")
        wait_until(
            lambda: adj_in(fabric.tor2, NODE3_V6, "ipv6") == {CLIENT_V6: NODE3_V6},
            timeout=20, what="the client's IPv6 route at the ToR", logs_of=[mux],
        )  # fmt: skip
        # IPv4 routes have no next hop on this node: refused, counted, never sent
        assert mux.rejected("lb") == {CLIENT_V4: "no_ipv4_node_address"}
        assert adj_in(fabric.tor2, NODE3_V6, "ipv4") == {}
        assert set(mux.routes(upstream="tor")) == {"2001:db8:99:2::/64"}
        assert check_config(node3, mux, {}).splitlines()[1] == (
            f"  upstream tor: applies, at {TOR2_V6} (no node_cidrs: every node; "
            f"default-gateway6 is {TOR2_V6})"
        )
    finally:
        for daemon in (client, mux):
            if daemon is not None:
                daemon.stop()
