"""TCP-MD5 on client listeners, GTSM towards the ToR and the ToR's import policy, with real
daemons.

One rack for the module: an FRR ToR (AS 65000, 10.0.0.1) that requires GTSM of bgpmux
(`neighbor 10.0.0.2 ttl-security hops 1`) and originates 10.99.0.0/16 and 10.98.0.0/16; in
the node namespace an FRR client (MetalLB's shape, no listener) signing with the right
TCP-MD5 password and a BIRD client signing with a wrong one. bgpmux runs with each engine in
turn: `ttl_security: true`, and an upstream `accept` list that refuses 10.98.0.0/16.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import Announce, Bgpmux, Bird, Frr, Host, Neighbor, Topology, wait_until
from tests.environment import unavailable

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

NODE_AS, TOR_AS, FRR_AS = 64512, 65000, 64514
TOR_V4, NODE_V4, LOOPBACK = "10.0.0.1", "10.0.0.2", "127.0.0.1"
TOR_ACCEPTED, TOR_REFUSED = "10.99.0.0/16", "10.98.0.0/16"
LB_ROUTE = "198.51.100.10/32"
FRR_PORT, BIRD_PORT, BIRD_OWN_PORT = 1795, 1796, 11796
PASSWORD, WRONG = "s3cret-md5", "not-the-password"


@dataclass
class Rack:
    topo: Topology
    node: Host
    tor: Frr
    frr: Frr
    bird: Bird
    password_file: str

    def mux_config(self, engine: str, ttl_security: bool = True) -> dict[str, Any]:
        return {
            "node": {"asn": NODE_AS, "router_id": NODE_V4, "address": NODE_V4,
                     "initial_sync_timeout": 1},
            "engine": engine,
            "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 9,
                           "ttl_security": ttl_security, "accept": [TOR_ACCEPTED]}],
            "clients": [
                {"name": "frr", "listen": f"{LOOPBACK}:{FRR_PORT}", "asn": FRR_AS,
                 "peer_address": LOOPBACK, "password_file": self.password_file,
                 "accept": ["198.51.100.0/24 le 32"], "receive_upstream_routes": True},
                {"name": "bird", "listen": f"{LOOPBACK}:{BIRD_PORT}", "asn": NODE_AS,
                 "peer_address": NODE_V4, "password_file": self.password_file,
                 "accept": ["10.244.0.0/16 le 32"]},
            ],
        }  # fmt: skip

    def start_mux(self, engine: str, ttl_security: bool = True) -> Bgpmux:
        mux = Bgpmux(self.node, f"bgpmux-{engine}", self.mux_config(engine, ttl_security))
        mux.start()
        wait_until(lambda: mux.http("/healthz")[0] == 200, timeout=20, what="bgpmux /healthz",
                   logs_of=[mux])  # fmt: skip
        return mux

    def client_routes(self) -> set[str]:
        return set(self.frr.routes("ipv4"))

    def tor_routes(self, fresh: bool = False) -> set[str]:
        """The ToR's prefixes; ``fresh``: only those with a path that is not stale (an earlier
        bgpmux's routes stay, stale, across its restart: graceful restart)."""
        table = self.tor.vtysh_json("show bgp ipv4 unicast json").get("routes", {})
        if fresh:
            return {p for p, paths in table.items() if any(not x.get("stale") for x in paths)}
        return set(table)


@pytest.fixture(scope="module")
def rack() -> Iterator[Rack]:
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    with Topology(tag="sec", prefix="sx") as topo:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        topo.link(tor_host, [f"{TOR_V4}/30"], node, [f"{NODE_V4}/30"])
        tor = Frr(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=9, ttl_security=True)],
            [Announce(TOR_ACCEPTED, next_hop=TOR_V4), Announce(TOR_REFUSED, next_hop=TOR_V4)],
        )  # fmt: skip
        tor.start()
        wait_until(
            lambda: ":179 " in tor_host.run(["ss", "-Hltn", "sport = :179"]).stdout,
            timeout=15, interval=0.1, what="the ToR listening on :179", logs_of=[tor],
        )  # fmt: skip
        password_file = topo.workdir / "client.password"
        password_file.write_text(PASSWORD + "\n")
        frr = Frr(
            node, "frr", FRR_AS, "10.255.0.4",
            [Neighbor(LOOPBACK, NODE_AS, port=FRR_PORT, password=PASSWORD)],
            [Announce(LB_ROUTE)], listen_port=None, connect_retry=1,
        ).start()  # fmt: skip
        bird = Bird(
            node, "bird", NODE_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=BIRD_PORT, source=NODE_V4, password=WRONG)],
            [Announce("10.244.1.0/26")], listen_port=BIRD_OWN_PORT, connect_retry=1,
        ).start()  # fmt: skip
        assert isinstance(frr, Frr) and isinstance(bird, Bird)
        yield Rack(topo, node, tor, frr, bird, str(password_file))


def state(mux: Bgpmux, name: str) -> str:
    return str(mux.sessions()[name]["state"])


def unsigned_connect(host: Host, port: int) -> str:
    """Dial ``127.0.0.1:port`` from 127.0.0.1 without TCP-MD5: "connected" or the error."""
    script = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(2)\n"
        "try:\n"
        f"    s.connect(('{LOOPBACK}', {port})); print('connected')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    return host.run([sys.executable, "-c", script], timeout=15).stdout.strip()


@pytest.mark.parametrize("engine", ["native", "exabgp", "gobgp"])
def test_md5_clients_gtsm_and_upstream_accept(rack: Rack, engine: str) -> None:
    mux = rack.start_mux(engine)
    try:
        # GTSM: the ToR drops whatever arrives with a TTL under 255, so only a GTSM dial is up.
        mux.wait_established("tor", "frr", timeout=40)
        tor_view = rack.tor.neighbors_info()[NODE_V4]
        assert tor_view["bgpState"] == "Established"
        assert tor_view["externalBgpNbrMaxHopsAway"] == 1  # the ToR runs GTSM for one hop
        # TCP-MD5 with the right password: the FRR client's routes reach the ToR ...
        wait_until(lambda: LB_ROUTE in rack.tor_routes(), timeout=20, what="LB route at ToR",
                   logs_of=[mux, rack.tor, rack.frr])  # fmt: skip
        # ... and the ToR's routes reach it, less the one the upstream's accept list refuses.
        wait_until(lambda: TOR_ACCEPTED in rack.client_routes(), timeout=20,
                   what="the ToR's route at the client", logs_of=[mux, rack.frr])  # fmt: skip
        assert TOR_REFUSED not in rack.client_routes()
        with mux.client() as api:
            rows = api.routes(received_from="tor")
        assert [(r["prefix"], r["family"], r["reason"]) for r in rows] == [
            (TOR_ACCEPTED, "ipv4-unicast", None),
            (TOR_REFUSED, "ipv4-unicast", "not_in_accept_list"),
        ]
        cli = [sys.executable, "-m", "bgpmux", "routes", "--received", "tor", "--rejected",
               "--api", f"unix:{mux.api_path}"]  # fmt: skip
        assert "not_in_accept_list" in rack.node.run(cli, timeout=20).stdout
        rejected = mux.metric(
            "bgpmux_upstream_prefixes_rejected", upstream="tor", reason="not_in_accept_list"
        )
        assert rejected == 1
        # The wrong password: the kernel drops the BIRD client's segments; it never gets up.
        assert state(mux, "bird") != "ESTABLISHED"
        assert "Established" not in rack.bird.protocol_info(rack.bird.protocol_name(LOOPBACK))
        assert unsigned_connect(rack.node, FRR_PORT) != "connected"  # unsigned: no SYN-ACK
        assert mux.http("/healthz")[0] == 200 and state(mux, "frr") == "ESTABLISHED"
    finally:
        mux.stop()


def test_wrong_password_then_right_password(rack: Rack) -> None:
    mux = rack.start_mux("native")
    try:
        mux.wait_established("frr", timeout=30)
        assert state(mux, "bird") != "ESTABLISHED"
        bird = rack.bird
        bird.neighbors = [
            Neighbor(LOOPBACK, NODE_AS, port=BIRD_PORT, source=NODE_V4, password=PASSWORD)
        ]
        bird.config_path.write_text(bird.config_text())
        bird.birdc_cmd("configure")
        mux.wait_established("bird", timeout=30)
    finally:
        mux.stop()


def test_without_gtsm_the_tor_never_lets_the_session_up(rack: Rack) -> None:
    # FRR sets the minimum TTL on the connection it accepted, so bgpmux's OPEN may still get
    # through and bgpmux may think the session up: its KEEPALIVEs (TTL 64) never arrive, and
    # its hold timer ends it. The ToR itself never reaches Established nor learns a route.
    mux = rack.start_mux("native", ttl_security=False)
    try:
        mux.wait_established("frr", timeout=30)
        wait_until(
            lambda: "hold_timer" in mux.sessions()["tor"]["detail"]
            or "connect failed" in mux.sessions()["tor"]["detail"],
            timeout=20, what="the upstream session failing", logs_of=[mux, rack.tor],
        )  # fmt: skip
        assert rack.tor.neighbor_state(NODE_V4) != "Established"
        assert LB_ROUTE not in rack.tor_routes(fresh=True)
    finally:
        mux.stop()
