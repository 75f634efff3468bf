"""Rollouts that lose nothing (issue 9), with real daemons, for each engine.

    tor  (AS 65000, 10.0.0.1)  BIRD, graceful restart 120 s (helper), originating 10.99/16,
      │                        2001:db8:99::/48 and, until it drops it during an outage, 10.98/16
    node (AS 64512, 10.0.0.2)  bgpmux (engine native | exabgp)
         calico   BIRD `-R`, graceful restart, receives the ToR's routes
         metallb  FRR bgpd `-p 0` (no listener, as MetalLB runs it), graceful restart,
                  `timers connect 2` (MetalLB's connectTime), receives nothing

bgpmux is stopped with SIGTERM, started again after a pause (a DaemonSet rollout), then killed
with SIGKILL and started again (a crash). Every 200 ms of each outage the ToR must hold both
clients' routes and Calico the ToR's. A route MetalLB drops and one the ToR drops during the
outage must be gone once bgpmux is back (nothing stale left), and every table must then equal
the expected one.

A second rack has an IPv4-only GoBGP ToR: bgpmux (with an IPv6 node address and a client
announcing IPv6) must never send it an IPv6 End-of-RIB or UPDATE, so its session never resets.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lab import Announce, Bgpmux, Bird, Frr, GoBgp, Host, Neighbor, Topology, wait_until

from .e2e_rack import (
    CALICO_PORT,
    LOOPBACK,
    METALLB_AS,
    METALLB_PORT,
    NODE_AS,
    NODE_V4,
    NODE_V6,
    TOR_AS,
    TOR_V4,
    TOR_V6,
    calico_bird,
    frr_configure,
)
from .fault_tables import (
    BASELINE_NODE_ROUTES,
    CALICO_ROUTES,
    METALLB_ROUTES,
    TOR_ROUTES,
    Table,
    diff,
    norm,
    parse_bird_table,
    table_of,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

ENGINES = ("native", "exabgp", "gobgp")
POLL = 0.2  # seconds between two reads of every table during an outage
METALLB_CONNECT_RETRY = 2  # FRR `timers connect`, MetalLB's BGPPeer connectTime
INITIAL_SYNC_TIMEOUT = 20  # the bound; End-of-RIB must come long before it
PAUSE = 2.0  # seconds between bgpmux's exit and its new start (the kubelet's pull and start)
METALLB_EXTRA = "198.51.100.99/32"  # MetalLB drops it while bgpmux is away
TOR_EXTRA = "10.98.0.0/16"  # the ToR drops it while bgpmux is away


def mux_config(engine: str) -> dict[str, Any]:
    return {
        "node": {
            "asn": NODE_AS,
            "router_id": NODE_V4,
            "address": NODE_V4,
            "address_v6": NODE_V6,
            "initial_sync_timeout": INITIAL_SYNC_TIMEOUT,
        },
        "engine": engine,
        "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 30}],
        "clients": [
            {
                "name": "calico",
                "listen": f"{LOOPBACK}:{CALICO_PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"],
                "receive_upstream_routes": True,
                "priority": 100,
            },
            {
                "name": "metallb",
                "listen": f"{LOOPBACK}:{METALLB_PORT}",
                "asn": METALLB_AS,
                "accept": ["198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"],
                "receive_upstream_routes": False,
                "priority": 50,
            },
        ],
        "metrics": {"listen": "127.0.0.1:9479"},
        "log": {"level": "debug"},
    }


def metallb_frr(node: Host, announce: list[str]) -> Frr:
    neighbor = Neighbor(
        LOOPBACK, NODE_AS, port=METALLB_PORT, families=("ipv4", "ipv6"), graceful_restart=120
    )
    return Frr(
        node, "metallb", METALLB_AS, NODE_V4, [neighbor], [Announce(p) for p in announce],
        listen_port=None, connect_retry=METALLB_CONNECT_RETRY,
    )  # fmt: skip


def start_mux(node: Host, config: dict[str, Any]) -> Bgpmux:
    mux = Bgpmux(node, "bgpmux", config)
    mux.start()
    wait_until(lambda: mux.http("/healthz")[0] == 200, timeout=20, what="bgpmux /healthz",
               logs_of=[mux])  # fmt: skip
    return mux


def wait_listening(host: Host, daemon: Any) -> None:
    wait_until(
        lambda: ":179 " in host.run(["ss", "-Hltn", "sport = :179"]).stdout,
        timeout=15, interval=0.1, what=f"{daemon} listening on :179", logs_of=[daemon],
    )  # fmt: skip


# ------------------------------------------------------------------------------- the rack


@dataclass
class Rack:
    engine: str
    topo: Topology
    node: Host
    tor: Bird
    mux: Bgpmux
    calico: Bird
    metallb: Frr
    last_errors: dict[str, set[str]] = field(default_factory=dict)  # BIRD's, seen in outages

    @property
    def daemons(self) -> list[Any]:
        return [self.mux, self.tor, self.calico, self.metallb]

    def tor_table(self) -> Table:
        return parse_bird_table(self.tor.birdc_cmd("show route table all"))

    def calico_prefixes(self) -> set[str]:
        out = self.calico.birdc_cmd("show route table master4")
        out += self.calico.birdc_cmd("show route table master6")
        return {
            norm(line.split()[0])
            for line in out.splitlines()
            if line and not line[0].isspace() and "/" in line.split()[0]
        }

    def log_tails(self) -> str:
        return "\n".join(f"--- {d.name} ---\n{d.log_tail(30)}" for d in self.daemons)

    def restart_mux(self) -> None:
        """Start a new bgpmux without waiting for it: the tables are being polled."""
        self.mux = Bgpmux(self.node, "bgpmux", mux_config(self.engine))
        self.mux.start()


@pytest.fixture(params=ENGINES)
def rack(request: pytest.FixtureRequest) -> Iterator[Rack]:
    engine: str = request.param
    with Topology(tag=engine[:3], prefix="ro") as topo:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        topo.link(
            tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"], node, [f"{NODE_V4}/30", f"{NODE_V6}/64"]
        )
        tor = Bird(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, families=("ipv4", "ipv6"),
                      graceful_restart=120)],
            [Announce(p) for p in (*TOR_ROUTES, TOR_EXTRA)],
        ).start()  # fmt: skip
        assert isinstance(tor, Bird)
        wait_listening(tor_host, tor)
        mux = start_mux(node, mux_config(engine))
        calico = calico_bird(node, [Announce(p) for p in CALICO_ROUTES]).start()
        metallb = metallb_frr(node, [*METALLB_ROUTES, METALLB_EXTRA]).start()
        assert isinstance(calico, Bird) and isinstance(metallb, Frr)
        yield Rack(engine, topo, node, tor, mux, calico, metallb)


def converge(rack: Rack, want: Table, timeout: float, what: str) -> None:
    wait_until(
        lambda: rack.tor_table() == want, timeout=timeout, interval=POLL,
        what=f"{rack.engine}: {what}: the ToR holding {sorted(want)}", logs_of=rack.daemons,
    )  # fmt: skip


def outage(rack: Rack, stop: signal.Signals, while_away: Any) -> float:
    """Stop bgpmux with ``stop``, call ``while_away()``, start bgpmux again after ``PAUSE``;
    poll every table every ``POLL`` seconds until the ToR's table is exactly the baseline and
    both clients are back without stale routes. Returns the seconds that took."""
    keep = table_of(BASELINE_NODE_ROUTES)
    tor_routes = {norm(p) for p in TOR_ROUTES}
    want = table_of(BASELINE_NODE_ROUTES)
    old = rack.mux.proc
    assert old is not None
    started = time.monotonic()
    rack.node.kill(old, stop)  # by PID: the bgpmux this test started
    while_away()
    restarted = False
    reads = 0
    deadline = started + 60
    while True:
        now = time.monotonic()
        if not restarted and now - started >= PAUSE and old.poll() is not None:
            expected = 0 if stop is signal.SIGTERM else -signal.SIGKILL
            assert old.returncode == expected, f"bgpmux exited {old.returncode}"
            rack.restart_mux()
            restarted = True
        tor = rack.tor_table()
        calico = rack.calico_prefixes()
        for bird in (rack.tor, rack.calico):
            if error := last_error(bird):
                rack.last_errors.setdefault(bird.name, set()).add(error)
        reads += 1
        at = f"{rack.engine}, {stop.name}, +{time.monotonic() - started:.1f}s"
        lost = {p: hop for p, hop in keep.items() if tor.get(p) != hop}
        assert not lost, f"{at}: the ToR lost {diff(tor, keep)}\n{rack.log_tails()}"
        gone = tor_routes - calico
        assert not gone, f"{at}: Calico lost the ToR's {sorted(gone)}\n{rack.log_tails()}"
        if restarted and tor == want and norm(TOR_EXTRA) not in calico and clients_clean(rack):
            break
        assert now < deadline, f"{at}: not back: {diff(tor, want)}\n{rack.log_tails()}"
        time.sleep(POLL)
    took = time.monotonic() - started
    print(
        f"\n{rack.engine} {stop.name}: back with nothing stale after {took:.1f} s ({reads} reads;"
        f" BIRD's last errors: {rack.last_errors})"
    )
    assert reads >= took / (POLL + 1.0)  # the tables were read all along
    return took


def clients_clean(rack: Rack) -> bool:
    """Both clients Established at bgpmux with nothing stale there."""
    try:
        sessions = rack.mux.sessions()
    except Exception:  # its API is not up yet
        return False
    return all(
        sessions.get(name, {}).get("state") == "ESTABLISHED"
        and sessions.get(name, {}).get("stale") == 0
        for name in ("calico", "metallb")
    )


def last_error(bird: Bird) -> str:
    """Why BIRD's session to bgpmux last went down ("Connection closed", "Received:
    Administrative shutdown", …); empty while it never did."""
    for line in bird.protocol_info("peer1").splitlines():
        if "Last error" in line:
            return line.split(":", 1)[1].strip()
    return ""


def test_sigterm_and_sigkill_lose_nothing(rack: Rack) -> None:
    with_extras = table_of([*BASELINE_NODE_ROUTES, METALLB_EXTRA], [*TOR_ROUTES, TOR_EXTRA])
    converge(rack, with_extras, 40, "the starting tables")
    wait_until(lambda: clients_clean(rack), timeout=20, what="clients up", logs_of=rack.daemons)
    # helper-only towards MetalLB (it receives nothing): FRR must not wait in "NSF passive"
    frr = rack.metallb.vtysh_cmd(f"show bgp neighbors {LOOPBACK}")
    assert re.search(r"Address families by peer:\s+none", frr), frr

    def drop_extras() -> None:
        frr_configure(rack.metallb, f"router bgp {METALLB_AS}", "address-family ipv4 unicast",
                      f"no network {METALLB_EXTRA}")  # fmt: skip
        rack.tor.announce = [Announce(p) for p in TOR_ROUTES]
        rack.tor.config_path.write_text(rack.tor.config_text())
        assert "Reconfigur" in rack.tor.birdc_cmd("configure")

    sigterm = outage(rack, signal.SIGTERM, drop_extras)
    # SIGTERM closed the sessions that keep our routes without a Cease (BIRD has no N bit);
    # MetalLB, which keeps nothing of ours, got Cease/Administrative Shutdown.
    for bird in (rack.tor, rack.calico):
        seen = rack.last_errors[bird.name]
        assert seen and not any("shutdown" in e.lower() for e in seen), (bird.name, seen)
    mux_log = rack.mux.log_path.read_text()
    assert "[peer=calico] closing without a NOTIFICATION" in mux_log
    if rack.engine == "native":
        assert "[peer=tor] closing without a NOTIFICATION" in mux_log
    frr = rack.metallb.vtysh_cmd(f"show bgp neighbors {LOOPBACK}")
    assert "Notification received (Cease/Administrative Shutdown)" in frr, frr
    sigkill = outage(rack, signal.SIGKILL, lambda: None)
    assert sigterm < 30 and sigkill < 30


# ------------------------------------------------------------------------------- IPv4-only


def gobgp_neighbor(tor: GoBgp) -> dict[str, Any]:
    return tor.neighbor_info(NODE_V4)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_ipv4_only_upstream_is_never_sent_ipv6(engine: str) -> None:
    """GoBGP with only ipv4-unicast: no IPv6 End-of-RIB (GoBGP resets the session on one),
    no IPv6 UPDATE; its session stays up through the initial sync and after."""
    with Topology(tag=f"4{engine[:3]}", prefix="ro") as topo:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        topo.link(
            tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"], node, [f"{NODE_V4}/30", f"{NODE_V6}/64"]
        )
        tor = GoBgp(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, families=("ipv4",), graceful_restart=120)],
            [Announce(TOR_ROUTES[0], next_hop=TOR_V4)],
        ).start()  # fmt: skip
        wait_listening(tor_host, tor)
        config = mux_config(engine)
        config["node"]["initial_sync_timeout"] = 2
        config["clients"] = config["clients"][1:]  # MetalLB only: IPv4 and IPv6 routes
        mux = start_mux(node, config)
        metallb = metallb_frr(node, list(METALLB_ROUTES)).start()
        daemons = [mux, tor, metallb]
        wait_until(
            lambda: norm(METALLB_ROUTES[0]) in {norm(p) for p in tor.routes("ipv4")},
            timeout=30, interval=POLL, what="MetalLB's IPv4 route at the ToR", logs_of=daemons,
        )  # fmt: skip
        wait_until(
            lambda: "End-of-RIB sent" in mux.log_path.read_text(),
            timeout=15, what="bgpmux's End-of-RIB", logs_of=daemons,
        )  # fmt: skip
        first = gobgp_neighbor(tor)
        time.sleep(3)  # a reset would show by now: GoBGP answers an IPv6 End-of-RIB at once
        last = gobgp_neighbor(tor)
        for info in (first, last):
            state = info["state"]
            assert tor.neighbor_state(NODE_V4) == "Established", tor.log_tail()
            assert state.get("flops", 0) == 0, f"the ToR's session flapped: {state}"
            notifications = state.get("messages", {}).get("received", {}).get("notification", 0)
            assert notifications == 0, f"{engine}: bgpmux sent a NOTIFICATION: {state}"
            sent = state.get("messages", {}).get("sent", {}).get("notification", 0)
            assert sent == 0, f"{engine}: the ToR reset the session: {state}\n{tor.log_tail()}"
        assert mux.metric("bgpmux_session_flaps_total", peer="tor", role="upstream") in (0, None)
        assert tor.routes("ipv6") == {}


# ------------------------------------------------------------------------------- N bit


def test_a_max_prefixes_cut_off_under_the_n_bit_is_a_hard_reset() -> None:
    """MetalLB's FRR sets RFC 8538's N bit, and so does bgpmux: a client over max_prefixes is
    cut off with Cease/Hard Reset (wrapping Maximum Number of Prefixes Reached), so that FRR
    does not keep bgpmux's routes, nor bgpmux FRR's, as stale."""
    with Topology(tag="nbit", prefix="ro") as topo:
        node = topo.add_host("node")
        node.add_address(f"{NODE_V4}/32")
        node.add_address(f"{NODE_V6}/128")
        config = mux_config("native")
        config["upstreams"] = [{"name": "tor", "address": TOR_V4, "asn": TOR_AS}]  # never up
        config["clients"] = config["clients"][1:]
        config["clients"][0]["max_prefixes"] = 1
        config["clients"][0]["max_prefixes_restart"] = 0  # held until a reload: one cut-off
        mux = start_mux(node, config)
        metallb = metallb_frr(node, list(METALLB_ROUTES)).start()
        wait_until(
            lambda: mux.metric(
                "bgpmux_notifications_sent_total", peer="metallb", code="6", subcode="9"
            ),
            timeout=30, what="Cease/Hard Reset sent to MetalLB", logs_of=[mux, metallb],
        )  # fmt: skip
        # FRR unwraps the Hard Reset and names what it carried (RFC 8538 §3)
        wait_until(
            lambda: "Maximum Number of Prefixes Reached/Hard Reset"
            in metallb.vtysh_cmd(f"show bgp neighbors {LOOPBACK}"),
            timeout=10, what="FRR's last reset: the Hard Reset", logs_of=[mux, metallb],
        )  # fmt: skip


def test_sigterm_towards_an_frr_tor_with_the_n_bit_is_a_graceful_notification() -> None:
    """Native engine, FRR ToR with graceful restart (FRR sets the N bit): on SIGTERM bgpmux
    sends Cease/Administrative Shutdown, which under RFC 8538 the ToR takes gracefully: it
    keeps the node's routes, stale."""
    with Topology(tag="ntor", prefix="ro") as topo:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        topo.link(tor_host, [f"{TOR_V4}/30"], node, [f"{NODE_V4}/30"])
        node.add_address(f"{NODE_V6}/128")
        tor = Frr(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, graceful_restart=120)],
        ).start()  # fmt: skip
        assert isinstance(tor, Frr)
        wait_listening(tor_host, tor)
        config = mux_config("native")
        config["clients"] = config["clients"][1:]
        mux = start_mux(node, config)
        metallb = metallb_frr(node, list(METALLB_ROUTES)).start()
        daemons = [mux, tor, metallb]

        def tor_paths() -> list[dict[str, Any]]:
            table = tor.vtysh_json("show bgp ipv4 unicast json").get("routes", {})
            return list(table.get(METALLB_ROUTES[0], []))

        wait_until(tor_paths, timeout=30, interval=POLL, what="MetalLB's route at the ToR",
                   logs_of=daemons)  # fmt: skip
        assert "N bit: True" in tor.vtysh_cmd(f"show bgp neighbors {NODE_V4}")
        mux.stop(timeout=10)
        wait_until(
            lambda: "Notification received (Cease/Administrative Shutdown)"
            in tor.vtysh_cmd(f"show bgp neighbors {NODE_V4}"),
            timeout=10, what="the ToR's last reset", logs_of=daemons,
        )  # fmt: skip
        paths = tor_paths()
        assert paths and all(p.get("stale") for p in paths), paths
