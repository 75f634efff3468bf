"""Upstream session metrics against a real GoBGP ToR, for each engine.

One rack per engine: a GoBGP ToR (AS 65000) that negotiates IPv4 unicast only, and on the node
bgpmux (node addresses of both families) with a Calico-role BIRD announcing one IPv4 and one
IPv6 prefix. Checked on a real scrape, which ``promtool check metrics`` must pass:

- the upstream's message counters by type (OPEN, KEEPALIVE, UPDATE received; OPEN and KEEPALIVE
  sent, UPDATE sent by the native engine only: ExaBGP does not report it), its
  ``bgpmux_peer_info`` and ``bgpmux_session_state`` series;
- ``bgpmux_prefixes_advertised`` counts the IPv4 prefix and not the IPv6 one, which the
  session did not negotiate;
- ``gobgp neighbor … disable`` sends bgpmux a Cease/Administrative Shutdown (6/2): counted by
  code and subcode; after ``enable`` the session comes back, and the flap is counted.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import Announce, Bgpmux, Bird, GoBgp, Neighbor, Topology, wait_until

TOR_AS, NODE_AS = 65000, 64512
TOR_V4, NODE_V4 = "10.0.0.1", "10.0.0.2"
TOR_V6, NODE_V6 = "2001:db8:ff::1", "2001:db8:ff::2"
LOOPBACK = "127.0.0.1"
CALICO_V4, CALICO_V6 = "10.244.1.0/26", "2001:db8:244:1::/64"
TOR_ROUTE = "10.99.0.0/16"
CALICO_PORT, CALICO_BIRD_PORT = 1790, 11790
TOR = {"peer": "tor", "role": "upstream"}

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


@dataclass
class MetricsRack:
    engine: str
    tor: GoBgp
    mux: Bgpmux
    calico: Bird

    def metric(self, name: str, **labels: str) -> float | None:
        return self.mux.metric(name, **labels)

    def wait(self, check: Any, what: str, timeout: float = 30) -> None:
        wait_until(check, timeout=timeout, interval=0.3, what=f"{what} ({self.engine})",
                   logs_of=[self.mux, self.tor, self.calico])  # fmt: skip


def mux_config(engine: str) -> dict[str, Any]:
    return {
        "node": {"asn": NODE_AS, "router_id": NODE_V4, "address": NODE_V4,
                 "address_v6": NODE_V6, "initial_sync_timeout": 2},
        "engine": engine,
        "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 9}],
        "clients": [{"name": "calico", "listen": f"{LOOPBACK}:{CALICO_PORT}", "asn": NODE_AS,
                     "accept": ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"]}],
        "metrics": {"listen": f"{LOOPBACK}:9479"},
        "log": {"level": "debug"},
    }  # fmt: skip


@pytest.fixture(scope="module", params=["native", "exabgp"])
def rack(request: pytest.FixtureRequest) -> Iterator[MetricsRack]:
    engine = request.param
    with Topology(tag=f"um{engine[:2]}", prefix="mt") as topo:
        node, tor_host = topo.add_host("node"), topo.add_host("tor")
        topo.link(node, [f"{NODE_V4}/30", f"{NODE_V6}/64"],
                  tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"])  # fmt: skip
        tor = GoBgp(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=9, families=("ipv4",))],
            [Announce(TOR_ROUTE)],
        )  # fmt: skip
        mux = Bgpmux(node, "bgpmux", mux_config(engine))
        calico = Bird(
            node, "calico", NODE_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=CALICO_PORT, source=NODE_V4,
                      families=("ipv4", "ipv6"))],
            [Announce(CALICO_V4), Announce(CALICO_V6)], listen_port=CALICO_BIRD_PORT,
            connect_retry=1,
        )  # fmt: skip
        for daemon in (tor, mux, calico):
            daemon.start()
        rack = MetricsRack(engine, tor, mux, calico)
        rack.wait(lambda: CALICO_V4 in tor.routes("ipv4"), "Calico's route at the ToR")
        yield rack
        for daemon in (calico, mux, tor):
            daemon.stop()


def test_upstream_messages_state_and_peer_info(rack: MetricsRack) -> None:
    metric = rack.metric
    # a KEEPALIVE each way within a keepalive time (hold 9 s: every 3 s)
    rack.wait(
        lambda: (
            (metric("bgpmux_messages_received_total", **TOR, type="KEEPALIVE") or 0) >= 1
            and (metric("bgpmux_messages_sent_total", **TOR, type="KEEPALIVE") or 0) >= 1
        ),
        "KEEPALIVEs counted both ways",
    )
    text = rack.mux.metrics()
    checked = subprocess.run(["promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert metric("bgpmux_messages_received_total", **TOR, type="OPEN") == 1
    assert metric("bgpmux_messages_sent_total", **TOR, type="OPEN") == 1
    assert (metric("bgpmux_messages_received_total", **TOR, type="UPDATE") or 0) >= 1
    sent_updates = metric("bgpmux_messages_sent_total", **TOR, type="UPDATE")
    if rack.engine == "native":
        assert sent_updates is not None and sent_updates >= 1
    else:
        assert sent_updates is None  # ExaBGP does not report the UPDATEs it sends
    info = {"address": TOR_V4, "asn": str(TOR_AS)}
    assert metric("bgpmux_peer_info", **TOR, **info) == 1
    assert metric("bgpmux_peer_info", peer="calico", role="client", asn=str(NODE_AS)) == 1
    assert metric("bgpmux_session_state", **TOR, state="Established") == 1
    assert metric("bgpmux_session_state", **TOR, state="Idle") == 0
    assert metric("bgpmux_session_state", peer="calico", role="client", state="Established") == 1
    # the session negotiated IPv4 unicast only: the IPv6 prefix is not advertised to it
    assert metric("bgpmux_prefixes_advertised", upstream="tor", family="ipv4-unicast") == 1
    assert metric("bgpmux_prefixes_advertised", upstream="tor", family="ipv6-unicast") == 0
    # what the session negotiated, for either engine (exabgp: from the OPENs ExaBGP reports)
    established = [line for line in rack.mux.log_tail(400).splitlines()
                   if "[peer=tor] session established" in line]  # fmt: skip
    assert established and "(hold 9s" in established[-1], established
    if rack.engine == "exabgp":  # both OPENs as ExaBGP reports them, negotiated by bgpmux
        assert "; ipv4-unicast, route-refresh, 4-octet-as)" in established[-1], established
    assert metric("bgpmux_config_reload_failures_total") == 0
    assert (metric("bgpmux_config_last_reload_success_timestamp_seconds") or 0) > 1.7e9


def test_notification_from_the_tor_counted_by_code(rack: MetricsRack) -> None:
    metric = rack.metric
    code = {"code": "6", "subcode": "2"}  # Cease/Administrative Shutdown (RFC 4486 §4)
    before = metric("bgpmux_notifications_received_total", **TOR, **code) or 0
    flaps = metric("bgpmux_session_flaps_total", **TOR) or 0
    rack.tor.cli(["neighbor", NODE_V4, "disable"])
    rack.wait(
        lambda: metric("bgpmux_notifications_received_total", **TOR, **code) == before + 1,
        "the ToR's Cease/Administrative Shutdown counted",
    )
    rack.tor.cli(["neighbor", NODE_V4, "enable"])
    assert (metric("bgpmux_messages_received_total", **TOR, type="NOTIFICATION") or 0) >= 1
    rack.wait(
        lambda: (
            metric("bgpmux_session_state", **TOR, state="Established") == 1
            and rack.tor.neighbor_state(NODE_V4) == "Established"
        ),
        "the session back",
    )
    assert metric("bgpmux_session_flaps_total", **TOR) == flaps + 1
    assert metric("bgpmux_messages_received_total", **TOR, type="OPEN") == 2
    rack.wait(
        lambda: metric("bgpmux_prefixes_advertised", upstream="tor", family="ipv4-unicast") == 1,
        "the table advertised again",
    )
