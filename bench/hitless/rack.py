"""The hitless check's rack, in network namespaces named ``hl…``.

    tor   BIRD 2, AS 65000, 10.0.0.1/30; GR helper towards the node (``graceful restart
      │   aware``); installs what it learns into its kernel table; originates BEHIND_CIDR,
      │   whose address BEHIND_ADDR sits on its loopback
      │   (one veth pair, both ends created inside the two namespaces)
    node  AS 64512, 10.0.0.2/30; POD_ADDR and LB_ADDR on its loopback
          mux      bgpmux (engine exabgp, native or gobgp) or BIRD hand-configured as the mux
          calico   BIRD 2, iBGP, graceful restart, started with ``-R`` as calico-node does;
                   announces POD_CIDR; installs what it learns (the ToR's routes) into the
                   node's kernel table, which has no default route: BEHIND_ADDR is reachable
                   only through that BGP route
          metallb  FRR bgpd, eBGP 64514, graceful restart, no listener (``-p 0``) and
                   ``timers connect 1``, as MetalLB runs it; announces LB_ADDR/32

Why BIRD as the ToR: it is one process that both speaks BGP and programs the kernel (FRR needs
zebra beside bgpd for that, and the lab runs bgpd alone), its GR helper mode is a one-line
setting, and the soak, the faults suite and the benchmark already drive it as the ToR.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import Announce, Bgpmux, Bird, Frr, Host, Neighbor, Topology, wait_until
from lab.daemon import Daemon
from lab.lifecycle import Lifecycle
from lab.procs import descendants

TOR_AS, NODE_AS, METALLB_AS = 65000, 64512, 64514
TOR4, NODE4 = "10.0.0.1", "10.0.0.2"
POD_CIDR, POD_ADDR = "10.244.1.0/26", "10.244.1.1"
LB_ADDR = "198.51.100.1"
BEHIND_CIDR, BEHIND_ADDR = "10.99.0.0/24", "10.99.0.1"
CALICO_PORT, METALLB_PORT = 1790, 1791
MUX_ROUTER_ID = "127.0.0.2"  # the BIRD baseline mux
CALICO_BIRD_PORT = 11790  # Calico's BIRD's own listen port
TOR_PROTO, CALICO_PROTO = "node", "mux"
BIRD_MUX_PROTOS = ("tor", "calico", "metallb")
ESTABLISHED = "Established"
MUX_KINDS = ("exabgp", "native", "gobgp", "bird")
UP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0  # a SIGTERM'd mux is SIGKILLed after this
CHILD_EXIT_TIMEOUT = 10.0  # a killed bgpmux's ExaBGP and relay must be gone by then
QUIET = "log stderr { warning, error, fatal, bug };"
TIMERS = "connect delay time 1; connect retry time 2; error wait time 1, 5;"
KERNEL = "protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }"


class ConfigBird(Bird):
    """The lab's BIRD driver with a config text written here; ``-R`` when ``recovery``."""

    def __init__(self, host: Host, name: str, text: str, *, recovery: bool = False) -> None:
        super().__init__(host, name, 0, NODE4, [], graceful_recovery=recovery)
        self.text = text

    def config_text(self) -> str:
        return self.text


def tor_config() -> str:
    return f"""{QUIET}
router id {TOR4};
protocol device {{ scan time 10; }}
{KERNEL}
protocol static behind {{ ipv4; route {BEHIND_CIDR} blackhole; }}
protocol bgp {TOR_PROTO} {{
  local {TOR4} as {TOR_AS};
  neighbor {NODE4} as {NODE_AS};
  passive on;
  graceful restart aware;
  {TIMERS}
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
"""


def calico_config() -> str:
    return f"""{QUIET}
router id {NODE4};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface "eth*"; }}
{KERNEL}
protocol static pods {{ ipv4; route {POD_CIDR} blackhole; }}
protocol bgp {CALICO_PROTO} {{
  local {NODE4} port {CALICO_BIRD_PORT} as {NODE_AS};
  neighbor 127.0.0.1 port {CALICO_PORT} as {NODE_AS};
  graceful restart on; graceful restart time 120;
  {TIMERS}
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
"""


def bird_mux_config() -> str:
    """BIRD doing bgpmux's job by hand: the ToR's routes down to Calico, both clients' routes
    up to the ToR with next hop self, graceful restart on every session. Its router id is not
    the node's: Calico's BIRD refuses an iBGP OPEN carrying its own (bgpmux does the same with
    ``node.client_router_id``)."""
    gr = "graceful restart on; graceful restart time 120;"
    return f"""{QUIET}
router id {MUX_ROUTER_ID};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface "eth*"; }}
protocol bgp tor {{
  local {NODE4} as {NODE_AS};
  neighbor {TOR4} as {TOR_AS};
  {gr}
  {TIMERS}
  ipv4 {{ import all; export where source = RTS_BGP && proto != "tor"; next hop self; }};
}}
protocol bgp calico {{
  local 127.0.0.1 port {CALICO_PORT} as {NODE_AS};
  neighbor {NODE4} as {NODE_AS};
  passive on; multihop;
  {gr}
  {TIMERS}
  ipv4 {{ import where net ~ [ 10.244.0.0/16+ ]; export where proto = "tor"; }};
}}
protocol bgp metallb {{
  local 127.0.0.1 port {METALLB_PORT} as {NODE_AS};
  neighbor 127.0.0.1 as {METALLB_AS};
  passive on; multihop;
  {gr}
  {TIMERS}
  ipv4 {{ import where net ~ [ 198.51.100.0/24+ ]; export none; }};
}}
"""


def bgpmux_config(engine: str) -> dict[str, Any]:
    """What an operator would run: defaults for graceful restart and the End-of-RIB hold."""
    return {
        "node": {"asn": NODE_AS, "router_id": NODE4, "address": NODE4},
        "engine": engine,
        "upstreams": [{"name": "tor", "address": TOR4, "asn": TOR_AS}],
        "clients": [
            {
                "name": "calico",
                "listen": f"127.0.0.1:{CALICO_PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32"],
                "receive_upstream_routes": True,
            },
            {
                "name": "metallb",
                "listen": f"127.0.0.1:{METALLB_PORT}",
                "asn": METALLB_AS,
                "accept": ["198.51.100.0/24 le 32"],
            },
        ],
        "log": {"level": "info"},
    }


class Rack(Lifecycle):
    """Context manager: the namespaces and the four daemons. ``close`` (also on Ctrl-C and on
    errors) ends every process started here by PID, then any ExaBGP or relay a killed bgpmux
    left behind, and deletes the namespaces."""

    def __init__(self, mux_kind: str) -> None:
        if mux_kind not in MUX_KINDS:
            raise ValueError(f"mux kind {mux_kind!r}: choose from {MUX_KINDS}")
        self.kind = mux_kind
        self.topo = Topology(tag=mux_kind[:3], prefix="hl")
        self.tor: ConfigBird | None = None
        self.mux: Daemon | None = None
        self.calico: ConfigBird | None = None
        self.metallb: Frr | None = None
        # every ExaBGP/relay process seen below bgpmux: PID -> its start time (/proc stat), so
        # that a PID the kernel has since reused is never signalled
        self.children: dict[int, str] = {}

    @property
    def daemons(self) -> list[Daemon]:
        return [d for d in (self.tor, self.mux, self.calico, self.metallb) if d is not None]

    @property
    def tor_host(self) -> Host:
        return self.topo.hosts["tor"]

    @property
    def node(self) -> Host:
        return self.topo.hosts["node"]

    def close(self) -> None:
        self._note_children()
        try:
            self.topo.close()
        finally:
            _kill_leftovers(self.children)

    def _start(self) -> None:
        tor_host, node = self.topo.add_host("tor"), self.topo.add_host("node")
        self.topo.link(tor_host, [f"{TOR4}/30"], node, [f"{NODE4}/30"])
        tor_host.add_address(f"{BEHIND_ADDR}/32")
        node.add_address(f"{POD_ADDR}/32")
        node.add_address(f"{LB_ADDR}/32")
        self.tor = ConfigBird(tor_host, "tor", tor_config())
        self.tor.start()
        self.mux = self._make_mux()
        self.mux.start()
        self.calico = ConfigBird(node, "calico", calico_config(), recovery=True)
        self.calico.start()
        self.metallb = Frr(
            node, "metallb", METALLB_AS, NODE4,
            [Neighbor("127.0.0.1", NODE_AS, port=METALLB_PORT, source="127.0.0.1",
                      graceful_restart=120)],
            [Announce(f"{LB_ADDR}/32")],
            listen_port=None, connect_retry=1,
        )  # fmt: skip
        self.metallb.start()
        wait_until(self.settled, timeout=UP_TIMEOUT, interval=0.5, what="the rack converged",
                   logs_of=self.daemons)  # fmt: skip
        for host, target in ((tor_host, POD_ADDR), (tor_host, LB_ADDR), (node, BEHIND_ADDR)):
            wait_until(functools.partial(_pings, host, target), timeout=UP_TIMEOUT,
                       what=f"{target} answering from {host.name}")  # fmt: skip

    def _make_mux(self) -> Daemon:
        if self.kind == "bird":
            return ConfigBird(self.node, "mux", bird_mux_config(), recovery=True)
        return Bgpmux(self.node, "bgpmux", bgpmux_config(self.kind))

    # ------------------------------------------------------------------ state

    def session_states(self) -> dict[str, str]:
        """Each session's state as the ToR, Calico and MetalLB see it ("Established", "Active",
        ... or why the daemon did not answer)."""
        tor, calico, metallb = self.tor, self.calico, self.metallb
        assert tor is not None and calico is not None and metallb is not None
        return {
            "tor": _state(functools.partial(tor.protocol_state, TOR_PROTO)),
            "calico": _state(functools.partial(calico.protocol_state, CALICO_PROTO)),
            "metallb": _state(functools.partial(metallb.neighbor_state, "127.0.0.1")),
        }

    def settled(self) -> bool:
        return self.unsettled() is None

    def unsettled(self) -> str | None:
        """None once every session is Established, the ToR holds the pod CIDR and the LB
        address, Calico the ToR's route, and bgpmux answers /readyz (the ToR has had its
        End-of-RIB) or the BIRD mux sees its own sessions Established; else what is missing."""
        assert self.tor and self.calico and self.mux
        down = {name: st for name, st in self.session_states().items() if st != ESTABLISHED}
        if down:
            return "not Established: " + ", ".join(f"{name} {st}" for name, st in down.items())
        missing = {POD_CIDR, f"{LB_ADDR}/32"} - set(self.tor.routes("master4", TOR_PROTO))
        if missing:
            return f"the ToR lacks {', '.join(sorted(missing))}"
        if BEHIND_CIDR not in self.calico.routes("master4", CALICO_PROTO):
            return f"Calico lacks {BEHIND_CIDR}"
        if isinstance(self.mux, Bgpmux):
            status, body = self.mux.http("/readyz")
            return None if status == 200 else f"/readyz {status}: {body.strip()[:200]}"
        assert isinstance(self.mux, ConfigBird)  # the baseline: its own view too
        mux = self.mux
        states = {p: _state(functools.partial(mux.protocol_state, p)) for p in BIRD_MUX_PROTOS}
        down = {p: st for p, st in states.items() if st != ESTABLISHED}
        return ("the BIRD mux's " + ", ".join(f"{p} {st}" for p, st in down.items())
                if down else None)  # fmt: skip

    # ------------------------------------------------------------------ restarts

    def restart_mux(self, sig: int) -> dict[str, Any]:
        """Send ``sig`` to the mux, wait (bounded) for it to exit, start it again at once.
        Returns how long it took to exit, whether SIGTERM had to become SIGKILL, and how many
        ExaBGP/relay processes outlived a killed bgpmux (ended here by PID)."""
        mux = self.mux
        assert mux is not None and mux.proc is not None
        self._note_children()
        before = dict(self.children)
        started = time.monotonic()
        mux.host.kill(mux.proc, sig)
        forced = False
        try:
            mux.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            forced = True
            mux.host.kill(mux.proc, signal.SIGKILL)
            mux.proc.wait(timeout=STOP_TIMEOUT)
        exited = time.monotonic() - started
        left = _wait_gone(before, CHILD_EXIT_TIMEOUT)
        _kill_leftovers(left)
        mux.start()
        return {"exit_s": round(exited, 2), "forced_kill": forced, "leftover_children": len(left)}

    def _note_children(self) -> None:
        if isinstance(self.mux, Bgpmux) and self.mux.running and self.mux.proc is not None:
            for pid in descendants(self.mux.proc.pid):
                start = _start_time(pid)
                if start is not None:
                    self.children.setdefault(pid, start)

    def mux_log(self) -> Path | None:
        return None if self.mux is None else self.mux.log_path


def _state(query: Callable[[], str]) -> str:
    try:
        return query()
    except Exception as error:  # a daemon refusing queries while it starts is "not yet"
        return f"(no answer: {type(error).__name__})"


def _pings(host: Host, target: str) -> bool:
    return host.run(["ping", "-n", "-c", "1", "-W", "1", target], check=False).returncode == 0


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _wait_gone(procs: dict[int, str], timeout: float) -> dict[int, str]:
    """Those of ``procs`` still alive (same PID, same start time) after at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        left = {pid: st for pid, st in procs.items() if _start_time(pid) == st}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _kill_leftovers(procs: dict[int, str]) -> None:
    """SIGKILL, by PID, the processes a bgpmux of this rack left behind (checked by start time)."""
    for pid, start in procs.items():
        if _start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
