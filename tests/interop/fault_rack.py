"""The rack of the fault-injection suite (tests/interop/test_faults.py), and how it measures.

Two namespaces joined by one veth pair:

    tor  (AS 65000, 10.0.0.1/30, 2001:db8:ff::1/64)  BIRD, graceful restart (helper), originating
         10.99/16 and 2001:db8:99::/48, and a disabled static set ``bulk`` of heavy routes (a
         long large-community list each, one of them unique: every route is its own UPDATE)
      │ the upstream link: the node's end goes down/up, or drops 20% of packets (iptables)
    node (AS 64512, 10.0.0.2/30, 2001:db8:ff::2/64)
         bgpmux   engine exabgp | native, hold time 6 s towards the ToR
         calico   BIRD, iBGP, `-R` + graceful restart; a disabled static set ``bulk`` of 10k /32s
         metallb  FRR bgpd, eBGP 64514, no graceful restart
         (faults start more clients: noisy (BIRD) and blocker (GoBGP), over max_prefixes; a raw
          speaker that stops reading; a raw speaker sending oversized routes)

The ToR's table is read as {prefix: next hop}: the node's routes must carry the node's address,
the ToR's own routes have none (blackhole). ``converge`` polls it until it equals the expected
table exactly and returns how long that took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import Announce, Bgpmux, Bird, Daemon, Frr, GoBgp, Host, Neighbor, Topology, wait_until
from lab.netns import IP
from lab.procs import children

from .e2e_rack import LOOPBACK, METALLB_AS, NODE_AS, TOR_AS, TOR_V4, TOR_V6
from .fault_tables import (
    CALICO_ROUTES,
    METALLB_ROUTES,
    NODE_V4,
    NODE_V6,
    TOR_ROUTES,
    Table,
    baseline,
    diff,
    host_routes,
    parse_bird_table,
    parse_import_counters,
)

BLOCKER_AS = 64516

CALICO_PORT, METALLB_PORT, NOISY_PORT, BLOCKER_PORT, SLOW_PORT, RAW_PORT = range(1790, 1796)
# BIRD listens on its `local … port`: nothing else uses these
CALICO_BIRD_PORT, NOISY_BIRD_PORT = 11790, 11792
BLOCKER_API_PORT = 50062
METRICS_LISTEN = "127.0.0.1:9479"

UPSTREAM_HOLD_TIME = 6  # seconds; keepalives every 2 s
CALICO_RESTART_TIME = 60
# End-of-RIB after a bgpmux restart waits this long for the clients nobody runs until a fault
# starts them; Calico (BIRD: connect delay, error wait) must be back before it.
INITIAL_SYNC_TIMEOUT = 6
# gobgpd dials the ToR only once it has the table (after the clients' sync), and each of its
# dials waits a random 5-10 s: the ToR's table comes back later than with the other engines.
GOBGP_INITIAL_SYNC_TIMEOUT = 16
CALICO_BULK = 10_000  # /32s from 10.244.128.0, announced with `birdc enable bulk`
CALICO_BULK_BASE = "10.244.128.0"
TOR_BULK = 5_000  # heavy routes from 10.200.0.0: ~1.3 kB each as an UPDATE, ~6 MiB in all
TOR_BULK_BASE = "10.200.0.0"
TOR_BULK_LARGE_COMMUNITIES = 100
NOISY_MAX, NOISY_RESTART = 3, 5
BLOCKER_MAX = 3

ENGINES = ("exabgp", "native", "gobgp")


# ------------------------------------------------------------------------------- daemons


class ExtraBird(Bird):
    """The lab's BIRD with more configuration text after its own (static sets, functions)."""

    def __init__(self, *args: Any, extra: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra = extra

    def config_text(self) -> str:
        return super().config_text() + "\n" + self.extra + "\n"


def calico_bulk_protocol() -> str:
    routes = "\n".join(
        f"  route {p} blackhole;" for p in host_routes(CALICO_BULK_BASE, CALICO_BULK)
    )
    return f"protocol static bulk {{\n  ipv4;\n  disabled;\n{routes}\n}}"


def tor_bulk_protocol() -> str:
    adds = "\n".join(
        f"  bgp_large_community.add(({TOR_AS}, 7, {i}));" for i in range(TOR_BULK_LARGE_COMMUNITIES)
    )
    routes = "\n".join(
        f"  route {p} blackhole {{ bgp_large_community.add(({TOR_AS}, 8, {i})); heavy(); }};"
        for i, p in enumerate(host_routes(TOR_BULK_BASE, TOR_BULK))
    )
    return (
        f"function heavy() {{\n{adds}\n}}\n"
        f"protocol static bulk {{\n  ipv4;\n  disabled;\n{routes}\n}}"
    )


# ------------------------------------------------------------------------------- config


def client_configs() -> list[dict[str, Any]]:
    calico = {
        "name": "calico",
        "listen": f"{LOOPBACK}:{CALICO_PORT}",
        "asn": NODE_AS,
        "accept": ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"],
        "max_prefixes": 2 * CALICO_BULK,
        "receive_upstream_routes": True,
        "priority": 100,
    }
    metallb = {
        "name": "metallb",
        "listen": f"{LOOPBACK}:{METALLB_PORT}",
        "asn": METALLB_AS,
        "accept": ["198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"],
        "max_prefixes": 10,
        "priority": 50,
    }
    raw = {
        "name": "raw",
        "listen": f"{LOOPBACK}:{RAW_PORT}",
        "asn": NODE_AS,
        "accept": ["10.244.0.0/16 le 32", "198.51.100.0/24 le 32"],
        "priority": 10,
    }
    return [
        calico,
        metallb,
        raw,
        {
            "name": "noisy",
            "listen": f"{LOOPBACK}:{NOISY_PORT}",
            "asn": NODE_AS,
            "accept": ["198.51.100.0/24 le 32"],
            "max_prefixes": NOISY_MAX,
            "max_prefixes_action": "restart",
            "max_prefixes_restart": NOISY_RESTART,
            "priority": 10,
        },
        {
            "name": "blocker",
            "listen": f"{LOOPBACK}:{BLOCKER_PORT}",
            "asn": BLOCKER_AS,
            "accept": ["198.51.100.0/24 le 32"],
            "max_prefixes": BLOCKER_MAX,
            "max_prefixes_action": "block",
            "priority": 10,
        },
        {
            "name": "slow",
            "listen": f"{LOOPBACK}:{SLOW_PORT}",
            "asn": NODE_AS,
            "accept": [],
            "receive_upstream_routes": True,
            "output_limit_mib": 1,
            "priority": 0,
        },
    ]


def mux_config(engine: str) -> dict[str, Any]:
    return {
        "node": {
            "asn": NODE_AS,
            "router_id": NODE_V4,
            "address": NODE_V4,
            "address_v6": NODE_V6,
            "initial_sync_timeout": (
                GOBGP_INITIAL_SYNC_TIMEOUT if engine == "gobgp" else INITIAL_SYNC_TIMEOUT
            ),
        },
        "engine": engine,
        "upstreams": [
            {"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": UPSTREAM_HOLD_TIME}
        ],
        "clients": client_configs(),
        "metrics": {"listen": METRICS_LISTEN},
        "log": {"level": "debug"},
    }


# ------------------------------------------------------------------------------- the rack


@dataclass
class Measured:
    """One fault's figures, in seconds."""

    engine: str
    fault: str
    figures: dict[str, float] = field(default_factory=dict)


@dataclass
class FaultRack:
    engine: str
    topo: Topology
    tor_host: Host
    node: Host
    node_if: str
    tor_if: str
    tor: ExtraBird
    mux: Bgpmux
    calico: ExtraBird
    metallb: Frr
    extra: list[Daemon] = field(default_factory=list)

    @property
    def daemons(self) -> list[Daemon]:
        return [self.mux, self.tor, self.calico, self.metallb, *self.extra]

    # ---------------------------------------------------------------- the ToR's view

    def tor_table(self) -> Table:
        return parse_bird_table(self.tor.birdc_cmd("show route table all", timeout=20))

    def tor_imports(self) -> int:
        """UPDATE changes (announcements and withdrawals) the ToR has received from the node."""
        return parse_import_counters(self.tor.protocol_info("peer1"))

    def converge(
        self,
        want: Table | None,
        since: float,
        timeout: float,
        what: str,
        invariant: Callable[[Table], str | None] | None = None,
        until: Callable[[], object] | None = None,
        interval: float = 0.1,
    ) -> float:
        """Poll the ToR until its table is exactly ``want`` (None: any) and ``until()`` (if
        given; raising counts as not yet) holds; seconds from ``since`` to then.

        ``invariant`` sees every table read and returns a complaint, or None; any complaint
        fails the wait at once (e.g. a route that graceful restart must keep went missing).
        """
        deadline = time.monotonic() + timeout
        got: Table = {}
        while True:
            try:
                got = self.tor_table()
            except RuntimeError as error:  # birdc busy under a burst: try again
                got = {"(error)": str(error)}
            else:
                read_at = time.monotonic()  # the table is at least this old: an upper bound
                if invariant is not None and (complaint := invariant(got)):
                    raise AssertionError(
                        f"{self.engine}: {what}: at +{read_at - since:.2f}s {complaint}"
                        f"\n{self.log_tails()}"
                    )
                if (want is None or got == want) and (until is None or _holds(until)):
                    return read_at - since
            if time.monotonic() >= deadline:
                state = diff(got, want) if want is not None else "the table as required"
                raise AssertionError(
                    f"{self.engine}: {what}: not reached within {timeout:.0f}s: {state}"
                    f"{'' if until is None else ' (or the condition did not hold)'}"
                    f"\n{self.log_tails()}"
                )
            time.sleep(interval)

    def hold_steady(self, want: Table, seconds: float, what: str) -> None:
        """The ToR's table stays exactly ``want`` for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got = self.tor_table()
            assert got == want, f"{self.engine}: {what}: {diff(got, want)}\n{self.log_tails()}"
            time.sleep(0.2)

    # ---------------------------------------------------------------- the node's side

    def bird_announce(self, bird: Bird, prefixes: Iterable[str]) -> None:
        """Change what a running BIRD originates (`birdc configure`), without a session reset."""
        bird.announce = [Announce(p) for p in prefixes]
        bird.config_path.write_text(bird.config_text())
        out = bird.birdc_cmd("configure")
        assert "Reconfigured" in out or "Reconfiguration in progress" in out, out

    def sessions_up(self, *names: str, timeout: float = 40) -> None:
        for name in names:
            self.mux.wait_established(name, timeout=timeout)

    def mux_state(self, name: str) -> str:
        return str(self.mux.sessions()[name]["state"])

    def metric(self, name: str, **labels: str) -> float:
        value = self.mux.metric(name, **labels)
        return 0.0 if value is None else value

    def flaps(self, *peers: tuple[str, str]) -> dict[str, float]:
        return {
            name: self.metric("bgpmux_session_flaps_total", peer=name, role=role)
            for name, role in peers
        }

    def mux_children(self) -> list[int]:
        assert self.mux.proc is not None
        return children(self.mux.proc.pid)

    def exabgp_pids(self) -> list[int]:
        return [pid for pid in self.mux_children() if b"exabgp" in cmdline(pid)]

    def speaker_pids(self) -> list[int]:
        """The engine's BGP speaker under bgpmux: ExaBGP, or gobgpd."""
        word = b"gobgpd" if self.engine == "gobgp" else b"exabgp"
        return [pid for pid in self.mux_children() if word in cmdline(pid)]

    def log_tails(self, n: int = 40) -> str:
        """The daemons' last log lines, bgpmux's without its DEBUG lines."""
        tails = []
        for daemon in self.daemons:
            if daemon is self.mux:
                lines = [
                    line for line in daemon.log_tail(2000).splitlines() if " DEBUG " not in line
                ]
                tails.append(f"--- {daemon.name} ---\n" + "\n".join(lines[-n:]))
            else:
                tails.append(f"--- {daemon.name} ---\n{daemon.log_tail(n // 2)}")
        return "\n".join(tails)

    def close(self) -> None:
        self.topo.close()


def _holds(condition: Callable[[], object]) -> bool:
    try:
        return bool(condition())
    except Exception:  # a daemon refusing a query while it starts: not yet
        return False


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def calico_bird(node: Host) -> ExtraBird:
    neighbor = Neighbor(
        LOOPBACK, NODE_AS, port=CALICO_PORT, source=NODE_V4, families=("ipv4", "ipv6"),
        graceful_restart=CALICO_RESTART_TIME, add_path=True,
    )  # fmt: skip
    return ExtraBird(
        node, "calico", NODE_AS, NODE_V4, [neighbor], [Announce(p) for p in CALICO_ROUTES],
        listen_port=CALICO_BIRD_PORT, graceful_recovery=True, connect_retry=1,
        extra=calico_bulk_protocol(),
    )  # fmt: skip


def metallb_frr(node: Host) -> Frr:
    neighbor = Neighbor(LOOPBACK, NODE_AS, port=METALLB_PORT, families=("ipv4", "ipv6"))
    return Frr(
        node, "metallb", METALLB_AS, NODE_V4, [neighbor], [Announce(p) for p in METALLB_ROUTES],
        listen_port=None, connect_retry=1,
    )  # fmt: skip


def noisy_bird(node: Host, prefixes: Iterable[str]) -> ExtraBird:
    """A BIRD client without graceful restart that redials within a second or two of any
    error: it keeps knocking during its idle hold."""
    neighbor = Neighbor(LOOPBACK, NODE_AS, port=NOISY_PORT, source=NODE_V4)
    return ExtraBird(
        node, "noisy", NODE_AS, "10.255.0.12", [neighbor], [Announce(p) for p in prefixes],
        listen_port=NOISY_BIRD_PORT, connect_retry=1,
    )  # fmt: skip


def gobgp_client(node: Host, name: str, asn: int, port: int, api_port: int) -> GoBgp:
    return GoBgp(
        node, name, asn, f"10.255.0.{port - 1780}", [Neighbor(LOOPBACK, NODE_AS, port=port)],
        listen_port=None, api_port=api_port, connect_retry=1,
    )  # fmt: skip


def start_mux(node: Host, engine: str) -> Bgpmux:
    mux = Bgpmux(node, "bgpmux", mux_config(engine))
    mux.start()
    wait_until(lambda: mux.http("/healthz")[0] == 200, timeout=20, what="bgpmux /healthz",
               logs_of=[mux])  # fmt: skip
    return mux


def build(engine: str) -> FaultRack:
    topo = Topology(tag="flt")
    try:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        tor_if, node_if = topo.link(
            tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"], node, [f"{NODE_V4}/30", f"{NODE_V6}/64"]
        )
        # Packets the size of a real link's (a veth passes 64 kB GSO segments otherwise), so
        # that packet loss applies per wire packet.
        for host, ifname in ((tor_host, tor_if), (node, node_if)):
            host.run([IP, "link", "set", ifname, "gso_max_size", "1500", "gso_max_segs", "1"])
        # Keep the node's IPv6 address across the link-down fault (Linux drops it by default).
        node.run(["sysctl", "-qw", f"net.ipv6.conf.{node_if}.keep_addr_on_down=1"])
        tor = ExtraBird(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, families=("ipv4", "ipv6"),
                      graceful_restart=120)],
            [Announce(p) for p in TOR_ROUTES], extra=tor_bulk_protocol(),
        )  # fmt: skip
        tor.start()
        wait_until(
            lambda: ":179 " in tor_host.run(["ss", "-Hltn", "sport = :179"]).stdout,
            timeout=15, interval=0.1, what="the ToR listening on :179", logs_of=[tor],
        )  # fmt: skip
        mux = start_mux(node, engine)
        calico = calico_bird(node).start()
        metallb = metallb_frr(node).start()
        assert isinstance(calico, ExtraBird) and isinstance(metallb, Frr)
        rack = FaultRack(engine, topo, tor_host, node, node_if, tor_if, tor, mux, calico, metallb)
        rack.sessions_up("tor", "calico", "metallb")
        rack.converge(baseline(), time.monotonic(), 40, "the baseline")
        return rack
    except BaseException:
        topo.close()
        raise


def write_results(path: Path, results: list[Measured]) -> None:
    path.write_text(
        json.dumps([{"engine": m.engine, "fault": m.fault, **m.figures} for m in results], indent=2)
        + "\n"
    )
