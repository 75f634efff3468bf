"""The soak's rack: a ToR and one node, in network namespaces named ``soak…``.

    tor   BIRD, AS 65000, 10.0.0.1/30, 2001:db8:ff::1/64; originates TOR_V4 and TOR_V6
      │   (one veth pair, both ends created inside the two namespaces)
    node  AS 64512, 10.0.0.2/30, 2001:db8:ff::2/64
          bgpmux   engine exabgp | native, dials the ToR
          calico   BIRD, iBGP, graceful restart, started with `-R` (as calico-node does);
                   pod blocks POD_V4 and POD_V6; dials 127.0.0.1:1790 from 10.0.0.2
          metallb  BIRD, eBGP 64514, dials 127.0.0.1:1791 from 10.0.0.2; one disabled static
                   protocol per LB address (``lb0`` = 198.51.100.1/32 … ``lb199``), which the
                   churner enables and disables over BIRD's control socket

Why BIRD as the MetalLB-role churner: one ``enable``/``disable`` on its control socket costs
BIRD microseconds and is answered, so every add and remove is confirmed and counted, while the
churner stays a few percent of a core. An ExaBGP client would spend ~0.3 ms of Python per
prefix and compete on this 2-core machine with the ExaBGP that the exabgp engine runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from lab import Announce, Bgpmux, Bird, Host, Neighbor, Topology, wait_until
from lab.daemon import Daemon
from lab.lifecycle import Lifecycle

from ..birdctl import BirdCtl

TOR_AS, NODE_AS, METALLB_AS = 65000, 64512, 64514
TOR4, TOR6, NODE4, NODE6 = "10.0.0.1", "2001:db8:ff::1", "10.0.0.2", "2001:db8:ff::2"
CALICO_PORT, METALLB_PORT = 1790, 1791
CALICO_BIRD_PORT, METALLB_BIRD_PORT = 11790, 11791  # the BIRD clients' own listen ports
TOR_V4 = ("10.99.0.0/16", "10.244.8.0/26")  # the service range, another node's pod block
TOR_V6 = ("2001:db8:99::/48",)
POD_V4 = ("10.244.1.0/26", "10.244.1.64/26", "10.244.1.128/26", "10.244.1.192/26")
POD_V6 = ("2001:db8:244:1::/64",)
LB_POOL = 200  # lb0..lb199 = 198.51.100.1..200/32
TOR_PROTO, CALICO_PROTO, METALLB_PROTO = "node", "peer1", "metallb"
REPO = Path(__file__).resolve().parents[2]
ESTABLISH_TIMEOUT = 60.0
QUIET = "log stderr { warning, error, fatal, bug };"
TIMERS = "connect delay time 1; connect retry time 2; error wait time 1, 5;"


def lb_prefix(index: int) -> str:
    return f"198.51.100.{index + 1}/32"


def lb_protocol(index: int) -> str:
    return f"lb{index}"


class TextBird(Bird):
    """The lab's BIRD driver with a config text written here."""

    def __init__(self, host: Host, name: str, router_id: str, text: str) -> None:
        super().__init__(host, name, 0, router_id, [])
        self.text = text

    def config_text(self) -> str:
        return self.text


def _tor_config() -> str:
    static4 = "\n".join(f"  route {p} blackhole;" for p in TOR_V4)
    static6 = "\n".join(f"  route {p} blackhole;" for p in TOR_V6)
    return f"""{QUIET}
router id {TOR4};
protocol device {{ scan time 10; }}
filter only_static {{ if source = RTS_STATIC then accept; reject; }}
protocol static tor4 {{
  ipv4;
{static4}
}}
protocol static tor6 {{
  ipv6;
{static6}
}}
protocol bgp {TOR_PROTO} {{
  local {TOR4} as {TOR_AS};
  neighbor {NODE4} as {NODE_AS};
  passive on;
  {TIMERS}
  ipv4 {{ import all; export filter only_static; }};
  ipv6 {{ import all; export filter only_static; next hop address {TOR6}; }};
}}
"""


def _metallb_config() -> str:
    statics = "\n".join(
        f"protocol static {lb_protocol(i)} {{ ipv4; disabled; route {lb_prefix(i)} blackhole; }}"
        for i in range(LB_POOL)
    )
    return f"""{QUIET}
router id {NODE4};
protocol device {{ scan time 10; }}
filter only_static {{ if source = RTS_STATIC then accept; reject; }}
{statics}
protocol bgp {METALLB_PROTO} {{
  local {NODE4} port {METALLB_BIRD_PORT} as {METALLB_AS};
  neighbor 127.0.0.1 port {METALLB_PORT} as {NODE_AS};
  multihop;
  {TIMERS}
  ipv4 {{ import none; export filter only_static; }};
}}
"""


def mux_config(engine: str) -> dict[str, Any]:
    return {
        "node": {"asn": NODE_AS, "router_id": NODE4, "address": NODE4, "address_v6": NODE6},
        "engine": engine,
        "upstreams": [{"name": "tor", "address": TOR4, "asn": TOR_AS}],
        "clients": [
            {
                "name": "calico",
                "listen": f"127.0.0.1:{CALICO_PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"],
                "max_prefixes": 2000,
                "receive_upstream_routes": True,
            },
            {
                "name": "metallb",
                "listen": f"127.0.0.1:{METALLB_PORT}",
                "asn": METALLB_AS,
                "accept": ["198.51.100.0/24 le 32"],
                "max_prefixes": 500,
            },
        ],
        "log": {"level": "info"},
    }


class TracedBgpmux(Bgpmux):
    """bgpmux run by ``bench.soak.traced``: tracemalloc on, a snapshot per SIGUSR2."""

    def __init__(self, host: Host, name: str, config: dict[str, Any], snapshots: Path) -> None:
        super().__init__(host, name, config)
        self.snapshots = snapshots

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "bench.soak.traced", str(self.snapshots)]
        return [*argv, "run", "-c", str(self.config_path)]

    def env(self) -> dict[str, str]:
        return {**super().env(), "PYTHONPATH": str(REPO)}


class Rack(Lifecycle):
    """Context manager: the namespaces, the four daemons, and control sockets to the BIRDs.

    ``close`` (also on Ctrl-C and exceptions) ends every process the topology started, by PID,
    and deletes the namespaces.
    """

    def __init__(self, engine: str, *, tracemalloc: bool = False) -> None:
        self.engine = engine
        self.tracemalloc = tracemalloc
        self.topo = Topology(tag=engine[:3], prefix="soak")
        self.tor: TextBird | None = None
        self.mux: Bgpmux | None = None
        self.calico: Bird | None = None
        self.metallb: TextBird | None = None
        self.tor_ctl: BirdCtl | None = None

    def close(self) -> None:
        if self.tor_ctl is not None:
            self.tor_ctl.close()
            self.tor_ctl = None
        self.topo.close()

    @property
    def daemons(self) -> list[Daemon]:
        return [d for d in (self.tor, self.mux, self.calico, self.metallb) if d is not None]

    def _start(self) -> None:
        tor_host, node = self.topo.add_host("tor"), self.topo.add_host("node")
        self.topo.link(tor_host, [f"{TOR4}/30", f"{TOR6}/64"], node, [f"{NODE4}/30", f"{NODE6}/64"])
        self.tor = TextBird(tor_host, "tor", TOR4, _tor_config())
        self.tor.start()
        config = mux_config(self.engine)
        if self.tracemalloc:
            self.mux = TracedBgpmux(node, "bgpmux", config, node.workdir / "snapshots")
        else:
            self.mux = Bgpmux(node, "bgpmux", config)
        self.mux.start()
        mux = self.mux
        wait_until(lambda: mux.api_path.exists(), timeout=30, what="bgpmux API", logs_of=[mux])
        self.calico = Bird(
            node, "calico", NODE_AS, NODE4,
            [Neighbor("127.0.0.1", NODE_AS, port=CALICO_PORT, source=NODE4, graceful_restart=120,
                      add_path=True, families=("ipv4", "ipv6"))],
            [Announce(p) for p in (*POD_V4, *POD_V6)],
            listen_port=CALICO_BIRD_PORT, graceful_recovery=True,
            next_hop_address={"ipv6": NODE6},
        )  # fmt: skip
        self.calico.start()
        self.metallb = TextBird(node, "metallb", NODE4, _metallb_config())
        self.metallb.start()
        mux.wait_established("tor", "calico", "metallb", timeout=ESTABLISH_TIMEOUT)
        tor = self.tor
        self.tor_ctl = wait_until(
            lambda: BirdCtl(tor.socket_path).connect(), timeout=15, what="ToR BIRD's socket"
        )
        want = set(POD_V4)
        wait_until(
            lambda: want <= set(self.tor_routes("master4")),
            timeout=ESTABLISH_TIMEOUT,
            what="the pod blocks at the ToR",
            logs_of=self.daemons,
        )

    def ctl(self, daemon: Bird) -> BirdCtl:
        """A fresh control-socket client (each thread keeps its own)."""
        return BirdCtl(daemon.socket_path, timeout=10).connect()

    def tor_routes(self, table: str) -> list[str]:
        """Prefixes the ToR learned from the node (protocol TOR_PROTO) in ``table``."""
        assert self.tor_ctl is not None
        return parse_prefixes(self.tor_ctl.cmd(f"show route table {table} protocol {TOR_PROTO}"))

    def tor_change_stats(self) -> tuple[int, int]:
        """(import updates, import withdraws) the ToR received on its session, cumulative."""
        assert self.tor_ctl is not None
        return parse_import_stats(self.tor_ctl.cmd(f"show protocols all {TOR_PROTO}"))

    def alive(self) -> list[str]:
        """Names of daemons that have exited (empty when all run)."""
        return [d.name for d in self.daemons if not d.running]

    def wait_calico(self, timeout: float = ESTABLISH_TIMEOUT) -> float:
        """Seconds until bgpmux sees Calico Established again."""
        assert self.mux is not None
        started = time.monotonic()
        self.mux.wait_established("calico", timeout=timeout)
        return time.monotonic() - started


def _body(line: str) -> str:
    """A control-socket line without its ``NNNN-``/``NNNN `` code or continuation space."""
    if len(line) >= 5 and line[:4].isdigit() and line[4] in "- ":
        return line[5:]
    return line[1:] if line.startswith(" ") else line


def parse_prefixes(reply: str) -> list[str]:
    """The prefixes of a ``show route`` reply, in order, each once."""
    out: list[str] = []
    for line in reply.splitlines():
        words = _body(line).split()
        if len(words) >= 2 and "/" in words[0] and words[1] == "unicast":
            out.append(words[0])
    return list(dict.fromkeys(out))


def parse_import_stats(reply: str) -> tuple[int, int]:
    """(received updates, received withdraws) from ``show protocols all`` (summed over
    channels)."""
    updates = withdraws = 0
    for line in reply.splitlines():
        words = _body(line).split()
        if words[:2] == ["Import", "updates:"] and len(words) > 2 and words[2].isdigit():
            updates += int(words[2])
        elif words[:2] == ["Import", "withdraws:"] and len(words) > 2 and words[2].isdigit():
            withdraws += int(words[2])
    return updates, withdraws
