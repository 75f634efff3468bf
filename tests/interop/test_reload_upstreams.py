"""Upstreams added and removed on reload, live, with each engine (native, exabgp, gobgp):
the other upstream's session does not flap and is not sent its table again.

    tor-a (GoBGP, AS 65001, 10.0.1.1/30)          tor-b (GoBGP, AS 65002, 10.0.2.1/30)
        └──── eth1 10.0.1.2/30 ── node (lo: 10.0.0.2) ── eth2 10.0.2.2/30 ────┘
              bgpmux dials from 10.0.0.2; a Calico-role BIRD on :1790

bgpmux starts with tor-a only. The API's Reload with tor-b added: tor-b comes up and gets
the node's routes, tor-a's session stays as it was (GoBGP's flap count, uptime and UPDATEs
received at tor-a: the table is not sent again; bgpmux's ``since`` and ``flaps``) and keeps
its routes. The ToRs negotiate graceful restart, so a session that ended without withdrawals
or a NOTIFICATION would leave the node's routes at the ToR. Then with tor-a removed: tor-a sees
the session end (with a NOTIFICATION, but from ExaBGP, whose reload closes the connection) and
drops the node's routes, Calico loses tor-a's routes and keeps tor-b's, tor-b stays as it was,
and tor-a's metrics series are gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from lab import Announce, Bgpmux, Bird, GoBgp, Host, Neighbor, Topology, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

NODE_AS = 64512
TOR_AS = {"tor-a": 65001, "tor-b": 65002}
TOR_V4 = {"tor-a": "10.0.1.1", "tor-b": "10.0.2.1"}
NODE_LINK_V4 = {"tor-a": "10.0.1.2", "tor-b": "10.0.2.2"}
OWN = {"tor-a": "10.61.0.0/16", "tor-b": "10.62.0.0/16"}
NODE_V4, LOOPBACK = "10.0.0.2", "127.0.0.1"
CALICO_V4 = "10.244.1.0/26"


@dataclass
class Rack:
    engine: str
    topo: Topology
    node: Host
    tors: dict[str, GoBgp]
    mux: Bgpmux
    calico: Bird

    @property
    def daemons(self) -> list[Any]:
        return [self.mux, *self.tors.values(), self.calico]

    def tor_session(self, tor: str) -> tuple[str, int, int]:
        """The ToR's view of its session with the node: (state, flaps, when it came up, in
        seconds since the epoch; GoBGP leaves zero counters out of its JSON)."""
        state = self.tors[tor].neighbor_info(NODE_V4)["state"]
        uptime = state.get("timers", {}).get("state", {}).get("uptime", {}).get("seconds", 0)
        uptime = uptime or self.tors[tor].neighbor_info(NODE_V4).get("timers", {}).get(
            "state", {}).get("uptime", {}).get("seconds", 0)  # fmt: skip
        return self.tors[tor].neighbor_state(NODE_V4), int(state.get("flops", 0)), int(uptime)

    def received_at(self, tor: str, kind: str) -> int:
        """Messages of ``kind`` ("update", "notification") the ToR received from the node."""
        messages = self.tors[tor].neighbor_info(NODE_V4)["state"].get("messages", {})
        return int(messages.get("received", {}).get(kind, 0))

    def received_from_node(self, tor: str) -> set[str]:
        out = self.tors[tor].cli(["neighbor", NODE_V4, "adj-in", "-a", "ipv4", "-j"]).stdout
        return set(json.loads(out or "{}"))

    def reload(self, upstreams: list[str]) -> dict[str, Any]:
        """Write bgpmux's config with ``upstreams`` and reload it through the API."""
        self.mux.config["upstreams"] = [_upstream(t) for t in upstreams]
        self.mux.config_path.write_text(yaml.safe_dump(self.mux.config, sort_keys=False))
        with self.mux.client() as api:
            return api.reload()


def _upstream(tor: str) -> dict[str, Any]:
    return {"name": tor, "address": TOR_V4[tor], "asn": TOR_AS[tor], "hold_time": 30}


def _build(engine: str) -> Rack:
    topo = Topology(tag=engine[:3], prefix="ru")
    try:
        node = topo.add_host("node")
        node.add_address(f"{NODE_V4}/32")
        tors: dict[str, GoBgp] = {}
        for name in TOR_AS:
            host = topo.add_host(name)
            topo.link(host, [f"{TOR_V4[name]}/30"], node, [f"{NODE_LINK_V4[name]}/30"])
            host.run(["ip", "route", "add", f"{NODE_V4}/32", "via", NODE_LINK_V4[name]])
            # graceful restart: a session that ends without a NOTIFICATION keeps the routes
            neighbor = Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=30, families=("ipv4",),
                                graceful_restart=120)  # fmt: skip
            tors[name] = GoBgp(host, name, TOR_AS[name], TOR_V4[name], [neighbor],
                               [Announce(OWN[name], next_hop=TOR_V4[name])])  # fmt: skip
            tors[name].start()
        for host in (topo.hosts[t] for t in TOR_AS):
            wait_until(
                lambda host=host: ":179 " in host.run(["ss", "-Hltn", "sport = :179"]).stdout,
                timeout=15, interval=0.1, what=f"{host.name} listening on :179",
            )  # fmt: skip
        config = {
            "node": {"asn": NODE_AS, "router_id": NODE_V4, "address": NODE_V4,
                     "initial_sync_timeout": 1},
            "engine": engine,
            "upstreams": [_upstream("tor-a")],
            "clients": [{"name": "calico", "listen": f"{LOOPBACK}:1790", "asn": NODE_AS,
                         "accept": ["10.244.0.0/16 le 32"], "receive_upstream_routes": True}],
        }  # fmt: skip
        mux = Bgpmux(node, "bgpmux", config)
        mux.start()
        wait_until(lambda: mux.http("/healthz")[0] == 200, timeout=20, what="bgpmux /healthz",
                   logs_of=[mux])  # fmt: skip
        calico = Bird(node, "calico", NODE_AS, NODE_V4,
                      [Neighbor(LOOPBACK, NODE_AS, port=1790, source=NODE_V4,
                                families=("ipv4",))],
                      [Announce(CALICO_V4)], listen_port=11790, connect_retry=1)  # fmt: skip
        calico.start()
        rack = Rack(engine, topo, node, tors, mux, calico)
        mux.wait_established("tor-a", "calico", timeout=30)
        return rack
    except BaseException:
        topo.close()
        raise


@pytest.fixture(params=["native", "exabgp", "gobgp"])
def rack(request: pytest.FixtureRequest) -> Iterator[Rack]:
    built = _build(request.param)
    try:
        yield built
    finally:
        built.topo.close()


def _wait(rack: Rack, check: Any, what: str, timeout: float = 30) -> None:
    wait_until(check, timeout=timeout, interval=0.3, what=f"{what} ({rack.engine})",
               logs_of=rack.daemons)  # fmt: skip


def test_upstreams_added_and_removed_live(rack: Rack) -> None:
    mux = rack.mux
    _wait(rack, lambda: CALICO_V4 in rack.received_from_node("tor-a"), "calico's route at tor-a")
    _wait(rack, lambda: OWN["tor-a"] in rack.calico.routes_of("ipv4"), "tor-a's route at calico")
    tor_a = rack.tor_session("tor-a")
    assert tor_a[0] == "Established"
    before = mux.sessions()["tor-a"]
    updates = rack.received_at("tor-a", "update")
    assert updates > 0  # its table came in UPDATEs (GoBGP counts them)

    # Added: tor-b comes up and gets the table; tor-a is left alone.
    assert rack.reload(["tor-a", "tor-b"]) == {"ok": True, "errors": [], "needs_restart": []}
    mux.wait_established("tor-b", timeout=40)
    _wait(rack, lambda: CALICO_V4 in rack.received_from_node("tor-b"), "calico's route at tor-b")
    _wait(rack, lambda: OWN["tor-b"] in rack.calico.routes_of("ipv4"), "tor-b's route at calico")
    assert rack.tor_session("tor-a") == tor_a  # no flap, the same session
    assert CALICO_V4 in rack.received_from_node("tor-a")
    assert rack.received_at("tor-a", "update") == updates  # not sent the table again
    after = mux.sessions()["tor-a"]
    assert (after["state"], after["flaps"]) == ("ESTABLISHED", before["flaps"])
    assert abs(after["since"] - before["since"]) < 1  # (the loop's clock, given as Unix time)
    assert mux.metric("bgpmux_upstream_prefixes_received", upstream="tor-b") is not None
    tor_b = rack.tor_session("tor-b")
    updates = rack.received_at("tor-b", "update")
    notifications = rack.received_at("tor-a", "notification")

    # Removed: tor-a's session ends at tor-a, its routes leave calico; tor-b is left alone.
    assert rack.reload(["tor-b"]) == {"ok": True, "errors": [], "needs_restart": []}
    _wait(rack, lambda: rack.tor_session("tor-a")[0] != "Established", "tor-a's session ended")
    _wait(rack, lambda: OWN["tor-a"] not in rack.calico.routes_of("ipv4"), "tor-a's route gone")
    assert OWN["tor-b"] in rack.calico.routes_of("ipv4")
    assert "tor-a" not in mux.sessions()
    assert mux.metric("bgpmux_upstream_prefixes_received", upstream="tor-a") is None
    _wait(rack, lambda: CALICO_V4 not in rack.tors["tor-a"].routes("ipv4"), "calico's route gone")
    if rack.engine != "exabgp":  # Cease/Peer De-configured, not a lost connection
        assert rack.received_at("tor-a", "notification") == notifications + 1
    assert rack.tor_session("tor-b") == tor_b
    assert rack.received_at("tor-b", "update") == updates
    assert CALICO_V4 in rack.received_from_node("tor-b")
