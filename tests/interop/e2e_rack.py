"""One rack for the end-to-end suite (tests/interop/test_mux_e2e.py).

Two namespaces joined by one veth pair:

    tor  (AS 65000, 10.0.0.1/30, 2001:db8:ff::1/64)  gobgpd | BIRD | FRR, originating 10.99/16
      │
    node (AS 64512, 10.0.0.2/30, 2001:db8:ff::2/64)
         bgpmux  ── dials the ToR (engine exabgp | native)
         calico   BIRD, iBGP, `-R` + graceful restart, dials 127.0.0.1:1790 from 10.0.0.2
         metallb  FRR bgpd, eBGP 64514, dials 127.0.0.1:1791 from 127.0.0.1
         (tests start more short-lived clients: noisy (GoBGP, :1792), plain (BIRD without
          graceful restart, :1793); :1794 is a client nobody runs, for raw-socket junk)

Everything here is built once per (ToR, engine) by a module-scoped fixture and reused.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import (
    Announce,
    Bgpmux,
    Bird,
    Daemon,
    Frr,
    GoBgp,
    Host,
    Neighbor,
    Route,
    Topology,
    wait_until,
)
from lab.procs import children

TOR_AS, NODE_AS, METALLB_AS, NOISY_AS = 65000, 64512, 64514, 64515
TOR_V4, TOR_V6 = "10.0.0.1", "2001:db8:ff::1"
NODE_V4, NODE_V6 = "10.0.0.2", "2001:db8:ff::2"
LOOPBACK = "127.0.0.1"

# What the ToR originates.
TOR_ROUTE_V4, TOR_ROUTE_V6 = "10.99.0.0/16", "2001:db8:99::/48"
# Calico's pod blocks.
CALICO_V4, CALICO_V6 = "10.244.1.0/26", "2001:db8:244:1::/64"
# MetalLB's service addresses; 203.0.113.66/32 is outside its accept list.
METALLB_V4, METALLB_V6, METALLB_OUTSIDE = (
    "198.51.100.10/32",
    "2001:db8:100::10/128",
    "203.0.113.66/32",
)
# A prefix both Calico and MetalLB may announce (conflict test).
SHARED_V4 = "198.51.100.77/32"

CALICO_PORT, METALLB_PORT, NOISY_PORT, PLAIN_PORT, JUNK_PORT = 1790, 1791, 1792, 1793, 1794
# The BIRD clients' own listen ports (BIRD listens on its `local … port`): nothing else uses them.
CALICO_BIRD_PORT, PLAIN_BIRD_PORT = 11790, 11793
NOISY_API_PORT = 50061
METRICS_LISTEN = "127.0.0.1:9479"
CALICO_RESTART_TIME = 60
NOISY_MAX_PREFIXES = 3

TOR_KINDS = ("gobgp", "bird", "frr")
ENGINES = ("exabgp", "native", "gobgp")


@dataclass(frozen=True)
class RackKey:
    engine: str
    tor: str

    def __str__(self) -> str:
        return f"{self.engine}-{self.tor}"


def mux_config(engine: str) -> dict[str, Any]:
    return {
        "node": {
            "asn": NODE_AS,
            "router_id": NODE_V4,
            "address": NODE_V4,
            "address_v6": NODE_V6,
            # Clients the tests start later (noisy, plain) must not hold End-of-RIB for 30 s.
            "initial_sync_timeout": 2,
        },
        "engine": engine,
        "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 30}],
        "clients": [
            {
                "name": "calico",
                "listen": f"{LOOPBACK}:{CALICO_PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128", SHARED_V4],
                "receive_upstream_routes": True,
                "priority": 100,
            },
            {
                "name": "metallb",
                "listen": f"{LOOPBACK}:{METALLB_PORT}",
                "asn": METALLB_AS,
                "accept": ["198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"],
                "max_prefixes": 10,
                "receive_upstream_routes": False,
                "priority": 50,
            },
            {
                "name": "noisy",
                "listen": f"{LOOPBACK}:{NOISY_PORT}",
                "asn": NOISY_AS,
                "accept": ["198.51.100.0/24 le 32"],
                "max_prefixes": NOISY_MAX_PREFIXES,
                "priority": 10,
            },
            {
                "name": "plain",
                "listen": f"{LOOPBACK}:{PLAIN_PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32"],
                "priority": 10,
            },
            {
                "name": "junk",
                "listen": f"{LOOPBACK}:{JUNK_PORT}",
                "asn": 64516,
                "accept": [],
                "priority": 0,
            },
        ],
        "metrics": {"listen": METRICS_LISTEN},
        "log": {"level": "debug"},
    }


CALICO_ANNOUNCE = [Announce(CALICO_V4), Announce(CALICO_V6)]
METALLB_ANNOUNCE = [Announce(METALLB_V4), Announce(METALLB_V6), Announce(METALLB_OUTSIDE)]


def norm(prefix: str) -> str:
    return str(ipaddress.ip_network(prefix, strict=False))


def family_of(prefix: str) -> str:
    return f"ipv{ipaddress.ip_network(prefix, strict=False).version}"


@dataclass
class Rack:
    key: RackKey
    topo: Topology
    tor_host: Host
    node: Host
    tor: Daemon
    mux: Bgpmux
    calico: Bird
    metallb: Frr
    extra: list[Daemon] = field(default_factory=list)

    @property
    def daemons(self) -> list[Daemon]:
        return [self.mux, self.tor, self.calico, self.metallb, *self.extra]

    # ---------------------------------------------------------------- the ToR's view

    def tor_prefixes(self, family: str) -> set[str]:
        """The prefixes in the ToR's table: one cheap query, for tight polling."""
        tor = self.tor
        if isinstance(tor, GoBgp):
            out = tor.cli(["global", "rib", "-a", family, "-j"]).stdout
            keys = json.loads(out or "{}").keys()
        elif isinstance(tor, Frr):
            keys = tor.vtysh_json(f"show bgp {family} unicast json").get("routes", {}).keys()
        else:
            assert isinstance(tor, Bird)
            table = "master4" if family == "ipv4" else "master6"
            text = tor.birdc_cmd(f"show route table {table}")
            keys = [
                line.split()[0]
                for line in text.splitlines()
                if line and not line[0].isspace() and "/" in line.split()[0]
            ]
        return {norm(k) for k in keys}

    def tor_all_prefixes(self) -> set[str]:
        return self.tor_prefixes("ipv4") | self.tor_prefixes("ipv6")

    def tor_routes(self, family: str) -> dict[str, Route]:
        return {norm(k): v for k, v in self.tor.routes_of(family).items()}

    def tor_route(self, prefix: str) -> Route | None:
        return self.tor_routes(family_of(prefix)).get(norm(prefix))

    def wait_tor_has(self, *prefixes: str, timeout: float = 30) -> None:
        wanted = {norm(p) for p in prefixes}
        wait_until(
            lambda: wanted <= self.tor_all_prefixes(),
            timeout=timeout,
            interval=0.2,
            what=f"{sorted(wanted)} at the ToR ({self.key})",
            logs_of=self.daemons,
        )

    def wait_tor_lacks(self, *prefixes: str, timeout: float = 30) -> None:
        unwanted = {norm(p) for p in prefixes}
        wait_until(
            lambda: not (unwanted & self.tor_all_prefixes()),
            timeout=timeout,
            interval=0.2,
            what=f"{sorted(unwanted)} gone from the ToR ({self.key})",
            logs_of=self.daemons,
        )

    def wait_tor_route(self, prefix: str, check: Any, timeout: float = 30) -> Route:
        """Wait until the ToR's best route for ``prefix`` satisfies ``check(route)``."""

        def probe() -> Route | None:
            route = self.tor_route(prefix)
            return route if route is not None and check(route) else None

        return wait_until(
            probe, timeout=timeout, interval=0.3, what=f"{prefix} at the ToR as expected",
            logs_of=self.daemons,
        )  # fmt: skip

    def baseline(self) -> set[str]:
        """What the ToR holds when every long-lived client is in its normal state."""
        return {norm(p) for p in (TOR_ROUTE_V4, TOR_ROUTE_V6, CALICO_V4, CALICO_V6, METALLB_V4,
                                  METALLB_V6)}  # fmt: skip

    def wait_baseline(self, timeout: float = 30) -> None:
        wanted = self.baseline()
        wait_until(
            lambda: self.tor_all_prefixes() == wanted,
            timeout=timeout,
            interval=0.2,
            what=f"the ToR holding exactly {sorted(wanted)} ({self.key})",
            logs_of=self.daemons,
        )

    # ---------------------------------------------------------------- the node's side

    def wait_sessions(self, *names: str, timeout: float = 30) -> None:
        for name in names:

            def established(name: str = name) -> bool:
                return self.mux_state(name) == "ESTABLISHED"

            wait_until(
                established,
                timeout=timeout,
                what=f"bgpmux session {name} Established ({self.key})",
                logs_of=self.daemons,
            )

    def mux_state(self, name: str) -> str:
        return str(self.mux.sessions()[name]["state"])

    def mux_pid(self) -> int:
        assert self.mux.proc is not None
        return self.mux.proc.pid

    def mux_children(self) -> list[int]:
        """PIDs of the bgpmux process's direct children."""
        return children(self.mux_pid())

    def metric(self, name: str, **labels: str) -> float:
        value = self.mux.metric(name, **labels)
        return 0.0 if value is None else value

    def bird_reconfigure(self, bird: Bird, announce: list[Announce]) -> None:
        """Change what a running BIRD announces (`birdc configure`), without a session reset."""
        bird.announce = list(announce)
        bird.config_path.write_text(bird.config_text())
        out = bird.birdc_cmd("configure")
        assert "Reconfigured" in out or "Reconfiguration in progress" in out, out

    def raw_exchange(self, port: int, payload: bytes, timeout: float = 10) -> bytes:
        """Connect to ``127.0.0.1:port`` from inside the node namespace, send ``payload``, and
        return everything received until the peer closes (or ``timeout``)."""
        script = (
            "import socket, sys, time\n"
            f"s = socket.create_connection(('{LOOPBACK}', {port}), timeout={timeout})\n"
            "time.sleep(0.3)\n"
            f"s.sendall(bytes.fromhex('{payload.hex()}'))\n"
            "data = b''\n"
            f"deadline = time.monotonic() + {timeout}\n"
            "while time.monotonic() < deadline:\n"
            "    try:\n"
            "        chunk = s.recv(65536)\n"
            "    except (socket.timeout, ConnectionResetError):\n"
            "        break\n"
            "    if not chunk:\n"
            "        break\n"
            "    data += chunk\n"
            "print(data.hex())\n"
        )
        out = self.node.run([sys.executable, "-c", script], timeout=timeout + 10).stdout
        return bytes.fromhex(out.strip())

    def close(self) -> None:
        self.topo.close()


def bgp_messages(data: bytes) -> list[tuple[int, bytes]]:
    """Split a byte stream into (type, body) BGP messages; stops at the first broken header."""
    messages = []
    while len(data) >= 19 and data[:16] == b"\xff" * 16:
        length, kind = struct.unpack("!HB", data[16:19])
        if length < 19 or length > len(data):
            break
        messages.append((kind, data[19:length]))
        data = data[length:]
    return messages


def notifications(data: bytes) -> list[tuple[int, int]]:
    return [(body[0], body[1]) for kind, body in bgp_messages(data) if kind == 3 and len(body) >= 2]


# -------------------------------------------------------------------- building


def frr_configure(frr: Frr, *lines: str) -> str:
    """Apply configuration lines to a running bgpd (`vtysh -c 'configure terminal' -c …`)."""
    argv = [frr.vtysh, "--vty_socket", str(frr.vty_dir), "-d", "bgpd", "-c", "configure terminal"]
    for line in lines:
        argv += ["-c", line]
    return frr.host.run(argv).stdout


def _start_tor(kind: str, host: Host) -> Daemon:
    neighbors = [Neighbor(NODE_V4, NODE_AS, passive=True, families=("ipv4", "ipv6"))]
    announce = [
        Announce(TOR_ROUTE_V4, next_hop=TOR_V4),
        Announce(TOR_ROUTE_V6, next_hop=TOR_V6),
    ]
    if kind == "gobgp":
        return GoBgp(host, "tor", TOR_AS, TOR_V4, neighbors, announce, api_port=50051).start()
    if kind == "bird":
        # BIRD picks the next hops itself (the session address; for IPv6 the interface's).
        announce = [Announce(TOR_ROUTE_V4), Announce(TOR_ROUTE_V6)]
        return Bird(host, "tor", TOR_AS, TOR_V4, neighbors, announce).start()
    if kind == "frr":
        frr = Frr(host, "tor", TOR_AS, TOR_V4, neighbors, announce)
        frr.start()
        # Without zebra bgpd knows no interface address: over the IPv4 session it would send
        # the IPv4-mapped ::ffff:10.0.0.1 as IPv6 next hop. Name the global one explicitly.
        wait_until(lambda: frr.vtysh_cmd("show bgp summary") is not None, timeout=15,
                   what="FRR ToR vty", logs_of=[frr])  # fmt: skip
        frr_configure(
            frr,
            "route-map TOR-OUT-V6 permit 10",
            f"set ipv6 next-hop global {TOR_V6}",
            "exit",
            f"router bgp {TOR_AS}",
            "address-family ipv6 unicast",
            f"neighbor {NODE_V4} route-map TOR-OUT-V6 out",
        )
        return frr
    raise ValueError(kind)


def calico_bird(node: Host, announce: list[Announce]) -> Bird:
    neighbor = Neighbor(
        LOOPBACK, NODE_AS, port=CALICO_PORT, source=NODE_V4, families=("ipv4", "ipv6"),
        graceful_restart=CALICO_RESTART_TIME, add_path=True,
    )  # fmt: skip
    return Bird(
        node, "calico", NODE_AS, NODE_V4, [neighbor], announce,
        listen_port=CALICO_BIRD_PORT, graceful_recovery=True, connect_retry=1,
    )  # fmt: skip


def plain_bird(node: Host, announce: list[Announce]) -> Bird:
    """A BIRD client without graceful restart (BIRD's default, `graceful restart aware`)."""
    neighbor = Neighbor(LOOPBACK, NODE_AS, port=PLAIN_PORT, source=NODE_V4)
    return Bird(
        node, "plain", NODE_AS, NODE_V4, [neighbor], announce,
        listen_port=PLAIN_BIRD_PORT, connect_retry=1,
    )  # fmt: skip


def noisy_gobgp(node: Host, announce: list[Announce]) -> GoBgp:
    neighbor = Neighbor(LOOPBACK, NODE_AS, port=NOISY_PORT)
    return GoBgp(
        node, "noisy", NOISY_AS, "10.255.0.3", [neighbor], announce,
        listen_port=None, api_port=NOISY_API_PORT,
    )  # fmt: skip


def build_rack(key: RackKey, tag: str = "e2e", api: dict[str, Any] | None = None) -> Rack:
    """The rack of ``key``, its namespaces tagged ``tag``; ``api``: settings added to bgpmux's
    ``api`` section (its socket stays in bgpmux's scratch directory)."""
    topo = Topology(tag=tag)
    try:
        tor_host, node = topo.add_host("tor"), topo.add_host("node")
        topo.link(
            tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"], node, [f"{NODE_V4}/30", f"{NODE_V6}/64"]
        )
        tor = _start_tor(key.tor, tor_host)
        # bgpmux dials the ToR (the native engine retries only every 5 s): let it listen first.
        wait_until(
            lambda: ":179 " in tor_host.run(["ss", "-Hltn", "sport = :179"]).stdout,
            timeout=15,
            interval=0.1,
            what="the ToR listening on :179",
            logs_of=[tor],
        )
        mux = Bgpmux(node, "bgpmux", mux_config(key.engine))
        mux.config["api"] = {**mux.config["api"], **(api or {})}
        mux.start()
        wait_until(
            lambda: mux.http("/healthz")[0] == 200,
            timeout=20,
            what="bgpmux /healthz",
            logs_of=[mux],
        )
        calico = calico_bird(node, list(CALICO_ANNOUNCE)).start()
        metallb = Frr(
            node, "metallb", METALLB_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=METALLB_PORT, families=("ipv4", "ipv6"))],
            list(METALLB_ANNOUNCE), listen_port=None, connect_retry=1,
        ).start()  # fmt: skip
        assert isinstance(calico, Bird) and isinstance(metallb, Frr)
        rack = Rack(key, topo, tor_host, node, tor, mux, calico, metallb)
        rack.wait_sessions("tor", "calico", "metallb", timeout=40)
        rack.wait_baseline(timeout=40)
        return rack
    except BaseException:
        topo.close()
        raise


def bgpmux_argv() -> list[str]:
    script = Path(sys.executable).with_name("bgpmux")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "bgpmux"]


def run_bgpmux(
    host: Host, args: list[str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return host.run([*bgpmux_argv(), *args], check=False, timeout=timeout)


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
