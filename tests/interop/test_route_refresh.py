"""Route refresh both ways against real daemons, for each engine (RFC 2918, RFC 7313).

One rack per engine: a FRR ToR (AS 65000, no ``soft-reconfiguration inbound``, so it must send
ROUTE-REFRESH to apply a new inbound policy) that bgpmux dials, and on the node bgpmux with a
Calico-role BIRD that announces two prefixes and receives the ToR's route.

- The ToR changes its inbound route-map (deny one prefix, set a local-pref on the rest) and
  runs ``clear bgp … soft in``: the policy applies to bgpmux's routes; then it drops the
  route-map entries and refreshes again, and the denied prefix comes back, which only bgpmux's
  answer can bring (FRR kept nothing of what it refused). Neither session resets.
- BIRD runs ``reload in`` (a ROUTE-REFRESH to bgpmux): it gets the table again, framed by
  BoRR/EoRR, and keeps the ToR's route; ``reload out`` sends bgpmux BoRR, its routes, EoRR:
  nothing is swept, nothing is re-sent to it. Neither session resets.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import Announce, Bgpmux, Bird, Frr, Neighbor, Topology, wait_until

TOR_AS, NODE_AS = 65000, 64512
TOR_V4, NODE_V4, LOOPBACK = "10.0.0.1", "10.0.0.2", "127.0.0.1"
TOR_ROUTE = "10.99.0.0/16"
KEPT, DENIED = "198.51.100.10/32", "198.51.100.11/32"
CALICO_PORT, CALICO_BIRD_PORT = 1790, 11790
ROUTE_MAP = "FROM-NODE"


@dataclass
class RefreshRack:
    engine: str
    tor: Frr
    mux: Bgpmux
    calico: Bird

    @property
    def daemons(self) -> list[Any]:
        return [self.mux, self.tor, self.calico]

    def tor_table(self) -> dict[str, Any]:
        routes: dict[str, Any] = self.tor.vtysh_json("show bgp ipv4 unicast json").get("routes", {})
        return {
            str(ipaddress.ip_network(prefix)): kept
            for prefix, paths in routes.items()
            if (kept := [path for path in paths if not path.get("removed")])
        }  # a path FRR marked removed is on its way out

    def tor_local_pref(self, prefix: str) -> int | None:
        paths = self.tor_table().get(prefix) or [{}]
        value = paths[0].get("locPrf")
        return None if value is None else int(value)

    def wait(self, check: Any, what: str, timeout: float = 20) -> None:
        wait_until(check, timeout=timeout, interval=0.2, what=f"{what} ({self.engine})",
                   logs_of=self.daemons)  # fmt: skip

    def tor_session(self) -> tuple[str, int, int]:
        """The ToR's view of bgpmux: state, connections established, connections dropped."""
        info = self.tor.neighbor_info(NODE_V4)
        return (str(info.get("bgpState")), int(info.get("connectionsEstablished", 0)),
                int(info.get("connectionsDropped", 0)))  # fmt: skip

    def tor_refresh_counts(self) -> tuple[int, int]:
        """ROUTE-REFRESH messages (BoRR and EoRR included) the ToR sent to and got from bgpmux."""
        stats = self.tor.neighbor_info(NODE_V4).get("messageStats", {})
        return int(stats.get("routeRefreshSent", 0)), int(stats.get("routeRefreshRecv", 0))

    def tor_end_of_rib_received(self) -> bool:
        info = self.tor.neighbor_info(NODE_V4).get("gracefulRestartInfo", {})
        return bool(info.get("endOfRibRecv", {}).get("ipv4Unicast"))

    def tor_enhanced_refresh(self) -> str:
        caps = self.tor.neighbor_info(NODE_V4).get("neighborCapabilities", {})
        return str(caps.get("enhancedRouteRefresh"))

    def mux_flaps(self) -> tuple[float, float]:
        return (self.metric("bgpmux_session_flaps_total", peer="tor"),
                self.metric("bgpmux_session_flaps_total", peer="calico"))  # fmt: skip

    def metric(self, name: str, **labels: str) -> float:
        value = self.mux.metric(name, **labels)
        return 0.0 if value is None else value

    def calico_has_tor_route(self) -> bool:
        return TOR_ROUTE in self.calico.routes("master4", protocol="peer1")


def mux_config(engine: str) -> dict[str, Any]:
    return {
        "node": {"asn": NODE_AS, "router_id": NODE_V4, "address": NODE_V4,
                 "initial_sync_timeout": 2},
        "engine": engine,
        "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 9}],
        "clients": [{"name": "calico", "listen": f"{LOOPBACK}:{CALICO_PORT}", "asn": NODE_AS,
                     "accept": ["198.51.100.0/24 le 32"], "receive_upstream_routes": True}],
        "metrics": {"listen": f"{LOOPBACK}:9479"},
        "log": {"level": "debug"},
    }  # fmt: skip


@pytest.fixture(scope="module", params=["native", "exabgp"])
def rack(request: pytest.FixtureRequest) -> Iterator[RefreshRack]:
    engine = request.param
    with Topology(tag=f"rr{engine[:2]}") as topo:
        node, tor_host = topo.add_host("node"), topo.add_host("tor")
        topo.link(node, [f"{NODE_V4}/30"], tor_host, [f"{TOR_V4}/30"])
        tor = Frr(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=9)],
            [Announce(TOR_ROUTE)],
            route_map_in={NODE_V4: ROUTE_MAP},
            # Route-map edits are not applied on their own: only the refresh applies them.
            extra_config=["bgp route-map delay-timer 0",
                          f"ip prefix-list DENIED seq 5 permit {DENIED}",
                          f"route-map {ROUTE_MAP} permit 100"],
        )  # fmt: skip
        mux = Bgpmux(node, "bgpmux", mux_config(engine))
        calico = Bird(
            node, "calico", NODE_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=CALICO_PORT, source=NODE_V4)],
            [Announce(KEPT), Announce(DENIED)], listen_port=CALICO_BIRD_PORT,
        )  # fmt: skip
        for daemon in (tor, mux, calico):
            daemon.start()
        rack = RefreshRack(engine, tor, mux, calico)
        rack.wait(lambda: {KEPT, DENIED} <= set(rack.tor_table()), "both prefixes at the ToR")
        rack.wait(rack.calico_has_tor_route, "the ToR's route at Calico")
        yield rack
        for daemon in (calico, mux, tor):
            daemon.stop()


@pytest.mark.interop
def test_tor_inbound_policy_change_applies_without_a_reset(rack: RefreshRack) -> None:
    tor_before, flaps_before = rack.tor_session(), rack.mux_flaps()
    sent, received = rack.tor_refresh_counts()
    assert tor_before[0] == "Established"
    assert rack.tor_enhanced_refresh() == "advertisedAndReceived"  # both engines offer it
    rack.tor.configure(
        f"route-map {ROUTE_MAP} deny 10", "match ip address prefix-list DENIED",
        f"route-map {ROUTE_MAP} permit 100", "set local-preference 200",
    )  # fmt: skip
    assert DENIED in rack.tor_table()  # not applied until the refresh
    rack.tor.vtysh_cmd(f"clear bgp ipv4 unicast {NODE_V4} soft in")
    rack.wait(lambda: DENIED not in rack.tor_table(), f"{DENIED} refused by the new policy")
    rack.wait(lambda: rack.tor_local_pref(KEPT) == 200, f"{KEPT} with local-pref 200")

    rack.tor.configure(
        f"no route-map {ROUTE_MAP} deny 10",
        f"route-map {ROUTE_MAP} permit 100", "no set local-preference 200",
    )  # fmt: skip
    rack.tor.vtysh_cmd(f"clear bgp ipv4 unicast {NODE_V4} soft in")
    # FRR dropped what it refused: only bgpmux's answer to the refresh brings it back.
    rack.wait(lambda: DENIED in rack.tor_table(), f"{DENIED} back after the second refresh")
    rack.wait(lambda: rack.tor_local_pref(KEPT) != 200, f"{KEPT} without the local-pref")
    # Two requests, each answered exactly once, framed by BoRR and EoRR (RFC 7313 §4).
    rack.wait(lambda: rack.tor_refresh_counts()[1] >= received + 4, "both answers' EoRR")
    assert rack.tor_refresh_counts() == (sent + 2, received + 4)
    assert rack.tor_session() == tor_before
    assert rack.mux_flaps() == flaps_before
    assert rack.mux.sessions()["tor"]["state"] == "ESTABLISHED"


@pytest.mark.interop
def test_client_refresh_gets_the_table_again_without_a_reset(rack: RefreshRack) -> None:
    flaps_before = rack.mux_flaps()
    since = rack.mux.sessions()["calico"]["uptime"]
    labels = {"peer": "calico", "role": "client"}
    asked = rack.metric("bgpmux_messages_received_total", type="ROUTE_REFRESH", **labels)
    updates = rack.metric("bgpmux_messages_sent_total", type="UPDATE", **labels)
    framing = rack.metric("bgpmux_messages_sent_total", type="ROUTE_REFRESH", **labels)
    rack.calico.birdc_cmd("reload in peer1")
    rack.wait(
        lambda: (
            rack.metric("bgpmux_messages_received_total", type="ROUTE_REFRESH", **labels) > asked
        ),
        "BIRD's ROUTE-REFRESH at bgpmux",
    )
    rack.wait(lambda: rack.metric("bgpmux_messages_sent_total", type="UPDATE", **labels)
              > updates, "the table sent to Calico again")  # fmt: skip
    # BIRD negotiates enhanced route refresh: the answer is framed by BoRR and EoRR.
    sent = rack.metric("bgpmux_messages_sent_total", type="ROUTE_REFRESH", **labels)
    assert sent == framing + 2
    assert rack.calico_has_tor_route()  # nothing swept at the EoRR

    # BIRD's own re-advertisement (BoRR, routes, EoRR) is no request: nothing goes back.
    updates = rack.metric("bgpmux_messages_sent_total", type="UPDATE", **labels)
    asked = rack.metric("bgpmux_messages_received_total", type="ROUTE_REFRESH", **labels)
    rack.calico.birdc_cmd("reload out peer1")
    rack.wait(
        lambda: (
            rack.metric("bgpmux_messages_received_total", type="ROUTE_REFRESH", **labels)
            >= asked + 2
        ),
        "BIRD's BoRR and EoRR at bgpmux",
    )
    assert rack.metric("bgpmux_messages_sent_total", type="UPDATE", **labels) == updates
    assert {KEPT, DENIED} <= set(rack.tor_table())  # nothing swept upstream
    assert rack.mux.routes(client="calico")[KEPT].get("stale") is False
    assert rack.mux_flaps() == flaps_before
    assert rack.mux.sessions()["calico"]["uptime"] >= since
    assert rack.calico.protocol_state("peer1") == "Established"


@pytest.mark.interop
def test_route_withdrawn_while_the_upstream_was_down_stays_gone(rack: RefreshRack) -> None:
    """ExaBGP re-announces its Adj-RIB-Out (what it answers refreshes from) on every new
    session; a route withdrawn while the session was down must not come back with it."""
    neighbor = f"neighbor {NODE_V4}"
    rack.tor.configure(f"router bgp {TOR_AS}", f"{neighbor} shutdown")
    rack.wait(lambda: rack.mux.sessions()["tor"]["state"] != "ESTABLISHED", "the ToR gone")
    rack.calico.announce = [Announce(KEPT)]
    rack.calico.config_path.write_text(rack.calico.config_text())
    rack.calico.birdc_cmd("configure")
    rack.wait(lambda: DENIED not in rack.mux.routes(client="calico"), f"{DENIED} withdrawn")
    assert not rack.tor_end_of_rib_received()
    rack.tor.configure(f"router bgp {TOR_AS}", f"no {neighbor} shutdown")
    # ExaBGP may show it again for a moment (as graceful restart would): judge at End-of-RIB.
    rack.wait(rack.tor_end_of_rib_received, "bgpmux's End-of-RIB at the ToR", timeout=30)
    rack.wait(lambda: KEPT in (table := rack.tor_table()) and DENIED not in table,
              f"{KEPT} and not {DENIED} at the ToR")  # fmt: skip
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        table = rack.tor_table()
        assert KEPT in table and DENIED not in table, rack.mux.log_tail(60)
        time.sleep(0.2)
    rack.calico.announce = [Announce(KEPT), Announce(DENIED)]
    rack.calico.config_path.write_text(rack.calico.config_text())
    rack.calico.birdc_cmd("configure")
    rack.wait(lambda: DENIED in rack.tor_table(), f"{DENIED} announced again")


DROPPED = "10.98.0.0/16"


@pytest.mark.interop
@pytest.mark.parametrize("engine", ["native", "exabgp"])
def test_tor_borr_eorr_sweeps_what_it_did_not_send_again(engine: str) -> None:
    """A BIRD ToR's ``reload out`` (BoRR, its routes, EoRR) after an export filter change that
    only takes effect then (``configure soft``): Calico loses the route the ToR no longer sends,
    keeps the other, and nothing is sent back to the ToR as if it had asked for a refresh."""
    with Topology(tag=f"rrb{engine[:2]}") as topo:
        node, tor_host = topo.add_host("node"), topo.add_host("tor")
        topo.link(node, [f"{NODE_V4}/30"], tor_host, [f"{TOR_V4}/30"])
        tor = Bird(tor_host, "tor", TOR_AS, TOR_V4,
                   [Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=9)],
                   [Announce(TOR_ROUTE), Announce(DROPPED)])  # fmt: skip
        mux = Bgpmux(node, "bgpmux", mux_config(engine))
        calico = Bird(
            node, "calico", NODE_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=CALICO_PORT, source=NODE_V4)],
            [Announce(KEPT)], listen_port=CALICO_BIRD_PORT,
        )  # fmt: skip
        daemons = [tor, mux, calico]
        for daemon in daemons:
            daemon.start()

        def at_calico() -> set[str]:
            return set(calico.routes("master4", protocol="peer1"))

        def wait(check: Any, what: str) -> None:
            wait_until(check, timeout=20, interval=0.2, what=f"{what} ({engine})",
                       logs_of=daemons)  # fmt: skip

        wait(lambda: {TOR_ROUTE, DROPPED} <= at_calico(), "the ToR's routes at Calico")
        labels = {"peer": "calico", "role": "client"}
        updates = mux.metric("bgpmux_messages_sent_total", type="UPDATE", **labels)
        text = tor.config_text().replace(
            "  if source != RTS_STATIC then reject;",
            f"  if source != RTS_STATIC then reject;\n  if net = {DROPPED} then reject;",
        )
        tor.config_path.write_text(text)
        assert "Reconfigured" in tor.birdc_cmd("configure soft")
        time.sleep(1)
        assert DROPPED in at_calico()  # the filter waits for the reload
        tor.birdc_cmd(f"reload out {tor.protocol_name(NODE_V4)}")
        wait(lambda: DROPPED not in at_calico(), f"{DROPPED} gone from Calico")
        assert TOR_ROUTE in at_calico()

        def mux_log() -> str:
            return mux.log_path.read_text(errors="replace")

        # BIRD may withdraw the route itself before its EoRR has come through the engine
        wait(lambda: "EoRR for ipv4-unicast" in mux_log(), "the ToR's EoRR at bgpmux")
        log = mux_log()
        assert "BoRR for ipv4-unicast" in log
        assert "route refresh for ipv4-unicast" not in log  # no answer to the ToR
        assert tor.protocol_state(tor.protocol_name(NODE_V4)) == "Established"
        assert mux.metric("bgpmux_session_flaps_total", peer="tor") in (None, 0.0)
        assert (mux.metric("bgpmux_messages_sent_total", type="UPDATE", **labels) or 0) > (
            updates or 0
        )  # the withdrawal reached Calico
