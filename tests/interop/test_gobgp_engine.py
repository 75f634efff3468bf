"""The gobgp engine against real daemons: gobgpd 3.10's habits and how bgpmux drives it.

    tor   (AS 65000, 10.0.0.1)  gobgpd, passive, graceful restart 120 s, originates 10.99/16 and
      │                         10.98/16
    node  (AS 64512, 10.0.0.2)  bgpmux, engine gobgp (its own gobgpd, or an external one)
          calico                BIRD `-R`, graceful restart, receives the ToR's routes

Namespaces are tagged "gb". Each test leaves the rack as it found it. The whole e2e suite and
the faults (kill -9 of gobgpd included) run the gobgp engine too (e2e_rack, fault_rack).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import Announce, Bgpmux, Bird, GoBgp, Host, Neighbor, Topology, wait_until
from lab.daemon import require_binary
from lab.procs import children

from .e2e_rack import CALICO_PORT, LOOPBACK, NODE_AS, NODE_V4, TOR_AS, TOR_V4, calico_bird
from .fault_rack import cmdline, pid_alive

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

CALICO_V4 = "10.244.7.0/26"
TOR_KEPT, TOR_DROPPED = "10.99.0.0/16", "10.98.0.0/16"
EXTERNAL_API = "127.0.0.1:50071"


def mux_config(gobgp: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "node": {
            "asn": NODE_AS,
            "router_id": NODE_V4,
            "address": NODE_V4,
            "initial_sync_timeout": 10,
        },
        "engine": "gobgp",
        "gobgp": gobgp or {},
        "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 30}],
        "clients": [
            {
                "name": "calico",
                "listen": f"{LOOPBACK}:{CALICO_PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32"],
                "receive_upstream_routes": True,
            }
        ],
    }


@dataclass
class Rack:
    topo: Topology
    node: Host
    tor: GoBgp
    calico: Bird
    mux: Bgpmux

    def tor_has(self, prefix: str) -> bool:
        return prefix in self.tor.routes("ipv4")

    def calico_has(self, prefix: str) -> bool:
        return prefix in self.calico.routes_of("ipv4")

    def gobgpd_pids(self) -> list[int]:
        assert self.mux.proc is not None
        return [p for p in children(self.mux.proc.pid) if b"gobgpd" in cmdline(p)]

    def notifications_at_tor(self) -> int:
        info = self.tor.neighbor_info(NODE_V4)
        return int(info["state"]["messages"]["received"].get("notification", 0))

    def baseline(self) -> None:
        wait_until(lambda: self.mux.sessions().get("tor", {}).get("state") == "ESTABLISHED",
                   timeout=40, what="bgpmux's ToR session", logs_of=[self.mux])  # fmt: skip
        wait_until(lambda: self.tor_has(CALICO_V4) and self.calico_has(TOR_KEPT),
                   timeout=40, what="Calico's route at the ToR and the ToR's at Calico",
                   logs_of=[self.mux, self.tor, self.calico])  # fmt: skip


@pytest.fixture(scope="module")
def rack() -> Iterator[Rack]:
    with Topology(tag="eng", prefix="gb") as topo:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        topo.link(tor_host, [f"{TOR_V4}/30"], node, [f"{NODE_V4}/30"])
        tor = GoBgp(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=30, graceful_restart=120)],
            [Announce(TOR_KEPT), Announce(TOR_DROPPED)],
        ).start()  # fmt: skip
        mux = Bgpmux(node, "bgpmux", mux_config())
        mux.start()
        calico = calico_bird(node, [Announce(CALICO_V4)]).start()
        assert isinstance(calico, Bird)
        built = Rack(topo, node, tor, calico, mux)
        built.baseline()
        yield built


@pytest.fixture
def clean(rack: Rack) -> Iterator[Rack]:
    rack.baseline()
    yield rack
    if not rack.tor_has(TOR_DROPPED):
        rack.tor.add_route(TOR_DROPPED)
    if not rack.mux.running:
        rack.mux.start()
    rack.baseline()


def listeners(host: Host, pid: int) -> list[str]:
    """The TCP addresses the process ``pid`` listens on, in its namespace."""
    out = host.run(["ss", "-Hltnp"]).stdout
    return sorted(line.split()[3] for line in out.splitlines() if f"pid={pid}," in line)


def test_gobgpd_has_no_bgp_listener_and_its_api_on_loopback_only(clean: Rack) -> None:
    """gobgpd listens on 179 (Calico's BIRD's) and pprof on :6060 by default, and its API on
    every address: bgpmux runs it with listen_port -1, --pprof-disable, --api-hosts."""
    (pid,) = clean.gobgpd_pids()
    assert listeners(clean.node, pid) == ["127.0.0.1:50051"]


def test_the_tors_end_of_rib_sweeps_its_stale_routes_after_gobgpd_restarts(clean: Rack) -> None:
    """kill -9 of gobgpd: the ToR's routes stay at Calico (stale) meanwhile; a route the ToR
    dropped meanwhile goes at the ToR's End-of-RIB on the new session, which gobgpd's
    WatchEvent does not report (bgpmux polls ListPeer): long before the stale-path timer."""
    rack = clean
    (pid,) = rack.gobgpd_pids()
    subprocess.run(["kill", "-KILL", str(pid)], check=True)  # by PID: bgpmux's child
    killed = time.monotonic()
    rack.tor.del_route(TOR_DROPPED)
    while time.monotonic() - killed < 3:
        assert rack.calico_has(TOR_KEPT), "the ToR's route left Calico while gobgpd restarted"
        time.sleep(0.2)
    wait_until(lambda: not rack.calico_has(TOR_DROPPED), timeout=45, interval=0.3,
               what="the dropped route swept at the ToR's End-of-RIB",
               logs_of=[rack.mux])  # fmt: skip
    assert rack.calico_has(TOR_KEPT) and rack.tor_has(CALICO_V4)
    assert "stale routes swept" in rack.mux.log_tail(400)
    (new,) = rack.gobgpd_pids()
    assert new != pid


def test_sigterm_sends_the_tor_no_cease_and_it_keeps_our_routes(clean: Rack) -> None:
    """gobgpd on SIGTERM sends Cease/Peer De-configured to every peer: bgpmux stops it with
    SIGKILL instead, so the ToR (graceful restart helper) keeps our routes until we are back."""
    rack = clean
    before = rack.notifications_at_tor()
    (pid,) = rack.gobgpd_pids()
    rack.mux.stop()  # SIGTERM
    assert not pid_alive(pid)
    stopped = time.monotonic()
    while time.monotonic() - stopped < 3:
        assert rack.tor_has(CALICO_V4), "the ToR dropped our route when bgpmux stopped"
        time.sleep(0.2)
    assert rack.notifications_at_tor() == before, "the ToR got a NOTIFICATION"
    rack.mux.start()
    rack.baseline()
    assert rack.notifications_at_tor() == before


def test_an_external_gobgpd_is_driven_and_left_running(clean: Rack) -> None:
    """``gobgp.external``: bgpmux drives a gobgpd it did not start, and leaves it, its peer and
    its routes as they are when it stops; started again it takes them over."""
    rack = clean
    rack.mux.stop()
    gobgpd = require_binary("gobgpd")
    argv = [gobgpd, "--api-hosts", EXTERNAL_API, "--pprof-disable", "--log-plain"]
    proc = rack.node.spawn(argv, "external-gobgpd.log")
    external = Bgpmux(rack.node, "bgpmux-ext", mux_config({"api": EXTERNAL_API, "external": True}))
    try:
        external.start()
        rack.mux, saved = external, rack.mux
        rack.baseline()
        assert rack.gobgpd_pids() == []  # not bgpmux's child
        external.stop()
        assert proc.poll() is None, "bgpmux stopped the external gobgpd"
        time.sleep(2)
        assert rack.tor_has(CALICO_V4)
        assert rack.tor.neighbor_state(NODE_V4) == "Established"  # its session never moved
        external.start()
        rack.baseline()
    finally:
        external.stop()
        rack.node.kill(proc, signal.SIGKILL)  # by its handle: the gobgpd this test started
        proc.wait(timeout=10)
        rack.mux = saved
