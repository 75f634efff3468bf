"""Dual ToR: one node, two GoBGP ToRs on two veths, bgpmux (engine exabgp and native) between
them and a Calico-role BIRD that takes ECMP (`add paths rx`), a BIRD without ADD-PATH, a BIRD
that offers it to a client configured `add_path: false`, and a MetalLB-role FRR.

    tor-a (AS 65001, 10.0.1.1/30)         tor-b (AS 65002, 10.0.2.1/30)
        │  both originate 10.77/16; tor-a 10.61/16, tor-b 10.62/16  │
        └──── eth1 10.0.1.2/30 ── node (lo: 10.0.0.2) ── eth2 10.0.2.2/30 ────┘
              bgpmux dials both from 10.0.0.2; calico :1790, metallb :1791, plain :1793,
              single :1795

The ToRs route 10.0.0.2 to their link; bgpmux's sessions are sourced from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import Announce, Bgpmux, Bird, Frr, GoBgp, Host, Neighbor, Topology, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

NODE_AS, METALLB_AS = 64512, 64514
TOR_AS = {"tor-a": 65001, "tor-b": 65002}
TOR_V4 = {"tor-a": "10.0.1.1", "tor-b": "10.0.2.1"}
NODE_LINK_V4 = {"tor-a": "10.0.1.2", "tor-b": "10.0.2.2"}
NODE_V4, NODE_V6, LOOPBACK = "10.0.0.2", "2001:db8:ff::2", "127.0.0.1"
TORS = ("tor-a", "tor-b")

SHARED = "10.77.0.0/16"  # both ToRs originate it: ECMP at Calico
OWN = {"tor-a": "10.61.0.0/16", "tor-b": "10.62.0.0/16"}
CALICO_V4, CALICO_V6 = "10.244.1.0/26", "2001:db8:244:1::/64"
METALLB_V4, METALLB_V6 = "198.51.100.10/32", "2001:db8:100::10/128"
CLIENT_ROUTES = {"ipv4": {CALICO_V4, METALLB_V4}, "ipv6": {CALICO_V6, METALLB_V6}}
PORTS = {"calico": 1790, "metallb": 1791, "plain": 1793, "single": 1795}
BIRD_PORTS = {"calico": 11790, "plain": 11793, "single": 11795}


@dataclass
class DualRack:
    engine: str
    topo: Topology
    node: Host
    tors: dict[str, GoBgp]
    mux: Bgpmux
    birds: dict[str, Bird]
    metallb: Frr

    @property
    def daemons(self) -> list[Any]:
        return [self.mux, *self.tors.values(), *self.birds.values(), self.metallb]

    def received_from_node(self, tor: str, family: str) -> set[str]:
        """What ``tor`` holds from bgpmux (its Adj-RIB-In of the node's session)."""
        out = self.tors[tor].cli(["neighbor", NODE_V4, "adj-in", "-a", family, "-j"]).stdout
        return set(json.loads(out or "{}"))

    def tor_session(self, tor: str) -> tuple[str, int, int]:
        """The ToR's view of its session with the node: (state, flaps, when it came up). GoBGP
        leaves zero counters out of its JSON; its `uptime` is the time the session came up
        (seconds since the epoch)."""
        info = self.tors[tor].neighbor_info(NODE_V4)
        state = info["state"]
        uptime = info.get("timers", {}).get("state", {}).get("uptime", {}).get("seconds", 0)
        return self.tors[tor].neighbor_state(NODE_V4), int(state.get("flops", 0)), int(uptime)


def _mux_config(engine: str) -> dict[str, Any]:
    def client(name: str, asn: int, accept: list[str], **extra: Any) -> dict[str, Any]:
        return {"name": name, "listen": f"{LOOPBACK}:{PORTS[name]}", "asn": asn,
                "accept": accept, **extra}  # fmt: skip

    return {
        "node": {
            "asn": NODE_AS,
            "router_id": NODE_V4,
            "address": NODE_V4,
            "address_v6": NODE_V6,
            "initial_sync_timeout": 2,
        },
        "engine": engine,
        "upstreams": [
            {"name": t, "address": TOR_V4[t], "asn": TOR_AS[t], "hold_time": 30} for t in TORS
        ],
        "clients": [
            client(
                "calico",
                NODE_AS,
                ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"],
                receive_upstream_routes=True,
            ),
            client("metallb", METALLB_AS, ["198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"]),
            client("plain", NODE_AS, [], receive_upstream_routes=True),
            client("single", NODE_AS, [], receive_upstream_routes=True, add_path=False),
        ],
    }


def _bird_client(node: Host, name: str, add_path: bool | str, announce: list[Announce]) -> Bird:
    neighbor = Neighbor(LOOPBACK, NODE_AS, port=PORTS[name], source=NODE_V4,
                        families=("ipv4", "ipv6"), add_path=add_path)  # fmt: skip
    return Bird(node, name, NODE_AS, NODE_V4, [neighbor], announce,
                listen_port=BIRD_PORTS[name], connect_retry=1,
                next_hop_address={"ipv6": NODE_V6})  # fmt: skip


def _build(engine: str) -> DualRack:
    topo = Topology(tag=engine[:3], prefix="dt")
    try:
        node = topo.add_host("node")
        node.add_address(f"{NODE_V4}/32")
        node.add_address(f"{NODE_V6}/128")
        tors: dict[str, GoBgp] = {}
        for name in TORS:
            host = topo.add_host(name)
            topo.link(host, [f"{TOR_V4[name]}/30"], node, [f"{NODE_LINK_V4[name]}/30"])
            host.run(["ip", "route", "add", f"{NODE_V4}/32", "via", NODE_LINK_V4[name]])
            neighbor = Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=30,
                                families=("ipv4", "ipv6"))  # fmt: skip
            announce = [Announce(SHARED, next_hop=TOR_V4[name]),
                        Announce(OWN[name], next_hop=TOR_V4[name])]  # fmt: skip
            tors[name] = GoBgp(host, name, TOR_AS[name], TOR_V4[name], [neighbor], announce)
            tors[name].start()
        for host in (topo.hosts[t] for t in TORS):
            wait_until(
                lambda host=host: ":179 " in host.run(["ss", "-Hltn", "sport = :179"]).stdout,
                timeout=15, interval=0.1, what=f"{host.name} listening on :179",
            )  # fmt: skip
        mux = Bgpmux(node, "bgpmux", _mux_config(engine))
        mux.start()
        wait_until(lambda: mux.http("/healthz")[0] == 200, timeout=20, what="bgpmux /healthz",
                   logs_of=[mux])  # fmt: skip
        birds = {
            "calico": _bird_client(node, "calico", "rx", [Announce(CALICO_V4),
                                                          Announce(CALICO_V6)]),
            "plain": _bird_client(node, "plain", False, []),
            "single": _bird_client(node, "single", "rx", []),
        }  # fmt: skip
        for bird in birds.values():
            bird.start()
        metallb = Frr(
            node, "metallb", METALLB_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=PORTS["metallb"], families=("ipv4", "ipv6"))],
            [Announce(METALLB_V4), Announce(METALLB_V6)], listen_port=None, connect_retry=1,
        )  # fmt: skip
        metallb.start()
        rack = DualRack(engine, topo, node, tors, mux, birds, metallb)
        mux.wait_established(*TORS, "calico", "metallb", "plain", "single", timeout=40)
        return rack
    except BaseException:
        topo.close()
        raise


@pytest.fixture(scope="module", params=["exabgp", "native", "gobgp"])
def rack(request: pytest.FixtureRequest) -> Iterator[DualRack]:
    built = _build(request.param)
    try:
        yield built
    finally:
        built.topo.close()


def test_both_clients_routes_reach_both_tors(rack: DualRack) -> None:
    for tor in TORS:
        for family, wanted in CLIENT_ROUTES.items():
            wait_until(
                lambda tor=tor, family=family, wanted=wanted: (
                    rack.received_from_node(tor, family) == wanted
                ),
                timeout=30, interval=0.3, what=f"{sorted(wanted)} at {tor} ({rack.engine})",
                logs_of=rack.daemons,
            )  # fmt: skip
        route = rack.tors[tor].routes("ipv4")[CALICO_V4]
        assert route.next_hop == NODE_V4 and route.as_path == [NODE_AS]


def _next_hops(bird: Bird, prefix: str) -> list[str | None]:
    return sorted(route.next_hop or "" for route in bird.paths(prefix))


def test_shared_prefix_reaches_add_path_calico_as_two_paths(rack: DualRack) -> None:
    both = sorted(TOR_V4.values())
    wait_until(
        lambda: _next_hops(rack.birds["calico"], SHARED) == both,
        timeout=30, interval=0.3, what=f"two paths of {SHARED} at calico ({rack.engine})",
        logs_of=rack.daemons,
    )  # fmt: skip
    # Without ADD-PATH (plain), or with it declined by `add_path: false` (single): one path,
    # the best one (tor-a, the first configured upstream).
    for name in ("plain", "single"):
        wait_until(
            lambda name=name: _next_hops(rack.birds[name], SHARED) == [TOR_V4["tor-a"]],
            timeout=30, interval=0.3, what=f"one path of {SHARED} at {name} ({rack.engine})",
            logs_of=rack.daemons,
        )  # fmt: skip
    for name in ("calico", "plain", "single"):
        for tor in TORS:
            assert _next_hops(rack.birds[name], OWN[tor]) == [TOR_V4[tor]], name
    log = rack.mux.log_path.read_text(errors="replace")
    assert "[peer=calico]" in log and "ADD-PATH send ipv4-unicast, ipv6-unicast" in log
    assert not any("[peer=single]" in line and "ADD-PATH send" in line for line in log.splitlines())


def test_a_tors_routes_never_reach_the_other_tor(rack: DualRack) -> None:
    for tor in TORS:
        for family, wanted in CLIENT_ROUTES.items():
            wait_until(
                lambda tor=tor, family=family, wanted=wanted: (
                    rack.received_from_node(tor, family) == wanted
                ),
                timeout=30, interval=0.3, what=f"{tor}'s table from bgpmux ({rack.engine})",
                logs_of=rack.daemons,
            )  # fmt: skip
    # Calico has both ToRs' routes, so bgpmux holds them; still neither ToR got the other's.
    wait_until(lambda: rack.birds["calico"].paths(OWN["tor-a"]), timeout=20,
               what="tor-a's route at calico")  # fmt: skip
    wait_until(lambda: rack.birds["calico"].paths(OWN["tor-b"]), timeout=20,
               what="tor-b's route at calico")  # fmt: skip
    assert OWN["tor-a"] not in rack.tors["tor-b"].routes("ipv4")
    assert OWN["tor-b"] not in rack.tors["tor-a"].routes("ipv4")
    for tor in TORS:
        assert rack.received_from_node(tor, "ipv4") == CLIENT_ROUTES["ipv4"]
    assert set(rack.mux.routes()) == CLIENT_ROUTES["ipv4"] | CLIENT_ROUTES["ipv6"]


def test_kill_one_tor_leaves_the_other_session_and_routes(rack: DualRack) -> None:
    """Last in the module: tor-a stays dead."""
    wait_until(lambda: rack.received_from_node("tor-b", "ipv4") == CLIENT_ROUTES["ipv4"],
               timeout=30, what="tor-b's table", logs_of=rack.daemons)  # fmt: skip
    state, flops_before, up_since = rack.tor_session("tor-b")
    assert state == "Established" and up_since > 0
    mux_flaps = rack.mux.metric("bgpmux_session_flaps_total", peer="tor-b", role="upstream")
    uptime_before = rack.mux.sessions()["tor-b"]["uptime"]
    started = time.monotonic()
    rack.tors["tor-a"].kill9()
    wait_until(
        lambda: rack.mux.sessions()["tor-a"]["state"] != "ESTABLISHED",
        timeout=20, what="bgpmux noticing tor-a gone", logs_of=rack.daemons,
    )  # fmt: skip
    wait_until(
        lambda: _next_hops(rack.birds["calico"], SHARED) == [TOR_V4["tor-b"]],
        timeout=20, interval=0.2, what="calico down to tor-b's path", logs_of=rack.daemons,
    )  # fmt: skip
    wait_until(lambda: not rack.birds["calico"].paths(OWN["tor-a"]), timeout=20,
               what="tor-a's own route gone from calico", logs_of=rack.daemons)  # fmt: skip
    # The best-path clients move to tor-b's path.
    wait_until(
        lambda: _next_hops(rack.birds["plain"], SHARED) == [TOR_V4["tor-b"]],
        timeout=20, interval=0.2, what="plain moved to tor-b's path", logs_of=rack.daemons,
    )  # fmt: skip
    # Watch tor-b for a few seconds more: every route stays, the session never flaps.
    while time.monotonic() - started < 6:
        assert rack.tor_session("tor-b") == ("Established", flops_before, up_since)
        for family, wanted in CLIENT_ROUTES.items():
            assert rack.received_from_node("tor-b", family) == wanted
        assert rack.mux.sessions()["tor-b"]["state"] == "ESTABLISHED"
        time.sleep(0.3)
    assert _next_hops(rack.birds["calico"], OWN["tor-b"]) == [TOR_V4["tor-b"]]
    after = rack.mux.metric("bgpmux_session_flaps_total", peer="tor-b", role="upstream")
    assert after == mux_flaps
    # Same session all along: its uptime grew with the clock (1 s of slack for rounding).
    uptime_after = rack.mux.sessions()["tor-b"]["uptime"]
    assert uptime_after >= uptime_before + (time.monotonic() - started) - 1.0
    assert rack.mux.metric("bgpmux_session_up", peer="tor-b", role="upstream") == 1.0
