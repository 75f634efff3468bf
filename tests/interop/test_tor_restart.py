"""The ToR's BGP restarts gracefully (RFC 4724), bgpmux the helper (§4.2), with real daemons:
a GoBGP ToR and a BIRD ToR, each engine.

    tor   (AS 65000, 10.0.0.1/30, 2001:db8:ff::1/64)  gobgpd | BIRD, graceful restart (60 s),
          originating KEPT (v4 and v6) and GONE
      │
    node  (AS 64512, 10.0.0.2/30, 2001:db8:ff::2/64)
          bgpmux    engine exabgp | native, hold time 6 s towards the ToR
          calico    BIRD, iBGP, `-R` + graceful restart, receives the upstream routes

The ToR is killed (SIGKILL) and started again as a restarting speaker (gobgpd
``--graceful-restart``, BIRD ``-R``) without GONE. Calico's table, read every 200 ms from the
kill until the end, holds KEPT throughout (bgpmux keeps the ToR's routes stale and sends
Calico nothing), and GONE until bgpmux's session with the ToR is back; GONE then leaves at the
ToR's End-of-RIB, which bgpmux's log names, and nothing stays stale. A ToR that closes with
a NOTIFICATION instead has its routes withdrawn at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import Announce, Bgpmux, Bird, Daemon, GoBgp, Neighbor, Topology, wait_until

from .e2e_rack import LOOPBACK, NODE_AS, NODE_V4, NODE_V6, TOR_AS, TOR_V4, TOR_V6

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

ENGINES = ("exabgp", "native", "gobgp")
TOR_KINDS = ("gobgp", "bird")
KEPT = ("10.99.0.0/16", "2001:db8:99::/48")
GONE = "10.98.0.0/16"
CALICO_ROUTE = "10.244.1.0/26"
CALICO_PORT, CALICO_BIRD_PORT = 1790, 11790
TOR_RESTART_TIME = 60  # seconds: the ToR's graceful-restart capability; far above its restart
HOLD_TIME = 6
POLL = 0.2  # seconds between two reads of Calico's table


class RestartingGoBgp(GoBgp):
    """gobgpd as a ToR that can come back as a restarting speaker (``--graceful-restart``:
    the R and F bits). Its routes are added over its API, so when restarting its neighbors
    start administratively down and are enabled once the routes are in: its End-of-RIB, sent
    when its restart ends, then follows them."""

    restarting = False

    def command(self) -> list[str]:
        return [*super().command(), "--graceful-restart"] if self.restarting else super().command()

    def config_text(self) -> str:
        text = super().config_text()
        if self.restarting:
            for n in self.neighbors:
                text = text.replace(
                    f"peer-as = {n.asn}\n", f"peer-as = {n.asn}\n    admin-down = true\n"
                )
        return text

    def start(self) -> RestartingGoBgp:
        super().start()
        if self.restarting:
            for n in self.neighbors:
                self.cli(["neighbor", n.address, "enable"])
        return self

    def restart(self, announce: list[Announce]) -> None:
        self.announce, self.restarting = announce, True
        self.start()


class RestartingBird(Bird):
    """BIRD as a ToR that comes back with ``-R`` (graceful-restart recovery: the R and F bits;
    it sends its routes and End-of-RIB once its peers have sent theirs)."""

    def restart(self, announce: list[Announce]) -> None:
        self.announce, self.graceful_recovery = announce, True
        self.start()


@dataclass
class Rack:
    engine: str
    tor_kind: str
    topo: Topology
    tor: RestartingGoBgp | RestartingBird
    mux: Bgpmux
    calico: Bird

    @property
    def daemons(self) -> list[Daemon]:
        return [self.mux, self.tor, self.calico]

    def calico_table(self) -> set[str]:
        return set(self.calico.routes_of("ipv4")) | set(self.calico.routes_of("ipv6"))

    def tor_state(self) -> dict[str, Any]:
        return self.mux.sessions()["tor"]


def mux_config(engine: str) -> dict[str, Any]:
    return {
        "node": {
            "asn": NODE_AS,
            "router_id": NODE_V4,
            "address": NODE_V4,
            "address_v6": NODE_V6,
            "initial_sync_timeout": 5,
        },
        "engine": engine,
        "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": HOLD_TIME}],
        "clients": [
            {
                "name": "calico",
                "listen": f"{LOOPBACK}:{CALICO_PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32"],
                "receive_upstream_routes": True,
            }
        ],
        "log": {"level": "debug"},
    }


def tor_daemon(kind: str, host: Any) -> RestartingGoBgp | RestartingBird:
    neighbor = Neighbor(
        NODE_V4, NODE_AS, passive=True, hold_time=HOLD_TIME, graceful_restart=TOR_RESTART_TIME,
        families=("ipv4", "ipv6"),
    )  # fmt: skip
    announce = tor_announce(kind, (*KEPT, GONE))
    if kind == "gobgp":
        return RestartingGoBgp(host, "tor", TOR_AS, TOR_V4, [neighbor], announce, connect_retry=1)
    return RestartingBird(host, "tor", TOR_AS, TOR_V4, [neighbor], announce, connect_retry=1)


def tor_announce(kind: str, prefixes: tuple[str, ...]) -> list[Announce]:
    """gobgpd gives an IPv6 route over an IPv4 session its IPv4 address as next hop unless
    told otherwise (Calico's BIRD refuses that): its IPv6 routes name the link's address."""
    v6_hop = TOR_V6 if kind == "gobgp" else None
    return [Announce(p, next_hop=v6_hop if ":" in p else None) for p in prefixes]


@pytest.fixture(params=[(e, t) for t in TOR_KINDS for e in ENGINES], ids=lambda p: "-".join(p))
def rack(request: pytest.FixtureRequest) -> Iterator[Rack]:
    yield from build(*request.param)


@pytest.fixture(params=ENGINES)
def bird_rack(request: pytest.FixtureRequest) -> Iterator[Rack]:
    yield from build(request.param, "bird")


def build(engine: str, tor_kind: str) -> Iterator[Rack]:
    with Topology(tag=tor_kind[:2], prefix="gh") as topo:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        topo.link(
            tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"], node, [f"{NODE_V4}/30", f"{NODE_V6}/64"]
        )
        tor = tor_daemon(tor_kind, tor_host)
        tor.start()
        mux = Bgpmux(node, "bgpmux", mux_config(engine))
        mux.start()
        calico = Bird(
            node, "calico", NODE_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=CALICO_PORT, source=NODE_V4,
                      families=("ipv4", "ipv6"), graceful_restart=60)],
            [Announce(CALICO_ROUTE)], listen_port=CALICO_BIRD_PORT, graceful_recovery=True,
            connect_retry=1,
        )  # fmt: skip
        calico.start()
        built = Rack(engine, tor_kind, topo, tor, mux, calico)
        wait_until(
            lambda: built.calico_table() >= {*KEPT, GONE} and built.tor_state()["stale"] == 0,
            timeout=40, interval=POLL, what="Calico holding the ToR's routes",
            logs_of=built.daemons,
        )  # fmt: skip
        yield built


def test_tor_restart_keeps_its_routes_at_calico_and_sweeps_at_end_of_rib(rack: Rack) -> None:
    rack.tor.kill9()
    killed = time.monotonic()
    # GONE is no longer sent. The restart runs beside the polling (gobgpd's start waits for
    # its API), so that Calico's table is read every POLL seconds from the kill on.
    restart = threading.Thread(target=rack.tor.restart, args=(tor_announce(rack.tor_kind, KEPT),))
    restart.start()
    session_back: float | None = None
    gone_at: float | None = None
    reads = 0
    try:
        while True:
            now = time.monotonic()
            assert now < killed + 60, f"not converged within 60 s\n{tails(rack)}"
            table = rack.calico_table()
            reads += 1
            state = rack.tor_state()
            new_session = state["state"] == "ESTABLISHED" and state["uptime"] < now - killed
            if session_back is None and new_session:
                session_back = now
            missing = set(KEPT) - table
            assert not missing, (
                f"+{now - killed:.2f}s: {sorted(missing)} left Calico\n{tails(rack)}"
            )
            if GONE not in table and gone_at is None:
                gone_at = now
                assert session_back is not None, (
                    f"+{now - killed:.2f}s: {GONE} left Calico before the ToR was back"
                    f"\n{tails(rack)}"
                )
            if gone_at is not None and state["stale"] == 0 and new_session:
                break
            time.sleep(POLL)
    finally:
        restart.join(30)
    assert session_back is not None and gone_at is not None
    log = rack.mux.log_tail(3000)
    assert f"keeping {len(KEPT) + 1} routes as stale" in log, tails(rack)
    # it came back as a restarting speaker that kept its forwarding state
    assert "the peer restarted (graceful restart), forwarding kept for: ipv4" in log, tails(rack)
    assert "End-of-RIB: 1 stale routes swept" in log, tails(rack)  # not a timer
    assert "graceful-restart timer ended" not in log
    assert rack.tor_state()["prefixes"] == len(KEPT)
    wait_until(
        lambda: CALICO_ROUTE in rack.tor.routes_of("ipv4"),
        timeout=20, interval=POLL, what="the node's route back at the ToR", logs_of=rack.daemons,
    )  # fmt: skip
    print(
        f"\n[tor restart] {rack.engine} {rack.tor_kind}: session back"
        f" +{session_back - killed:.2f}s, {GONE} swept +{gone_at - killed:.2f}s,"
        f" {reads} reads of Calico's table"
    )


def tails(rack: Rack) -> str:
    out = []
    for daemon in rack.daemons:
        lines = daemon.log_tail(400).splitlines()
        if daemon is rack.mux:
            lines = [line for line in lines if " DEBUG " not in line or "OPEN" in line]
        out.append(f"--- {daemon.name} ---\n" + "\n".join(lines[-30:]))
    return "\n".join(out)


def test_tor_closing_with_a_notification_withdraws_its_routes_at_once(bird_rack: Rack) -> None:
    """A NOTIFICATION (the BIRD ToR's `disable`: Cease/Administrative Shutdown) ends graceful
    restart (RFC 4724 §4.2; no RFC 8538 N bit here): the ToR's routes leave Calico at once,
    nothing is held stale; they come back with the session."""
    rack = bird_rack
    tor = rack.tor
    assert isinstance(tor, RestartingBird)
    assert "disabled" in tor.birdc_cmd("disable peer1")
    closed = time.monotonic()
    wait_until(
        lambda: not rack.calico_table() & {*KEPT, GONE},
        timeout=10, interval=POLL, what="the ToR's routes withdrawn from Calico",
        logs_of=rack.daemons,
    )  # fmt: skip
    withdrawn = time.monotonic() - closed
    assert rack.tor_state()["stale"] == 0
    log = rack.mux.log_tail(3000)
    assert "session down: notification" in log and "keeping" not in log, tails(rack)
    assert "enabled" in tor.birdc_cmd("enable peer1")
    wait_until(
        lambda: rack.calico_table() >= {*KEPT, GONE},
        timeout=30, interval=POLL, what="the ToR's routes back at Calico", logs_of=rack.daemons,
    )  # fmt: skip
    print(f"\n[tor notification] {rack.engine}: withdrawn from Calico in {withdrawn:.2f}s")
