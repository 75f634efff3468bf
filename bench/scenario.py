"""One mux under test, in its own lab: injector (Calico role, BIRD) — mux node — ToR (BIRD).

Every scenario builds fresh namespaces, so each run starts from empty tables and a fresh peak-RSS
counter. The injector and the ToR get their configs (with the benchmark's static route sets)
written here; the mux is BIRD, GoBGP, bgpmux (engine native, exabgp or gobgp), or nothing at all
("direct": the injector peers straight with the ToR, the baseline).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import Bgpmux, Bird, GoBgp, Host, Neighbor, Topology, wait_until
from lab.daemon import Daemon
from lab.lifecycle import Lifecycle
from lab.procs import descendants

from .birdctl import BirdCtl
from .routes import ACCEPT_V4, ACCEPT_V6, RouteSet

NODE_AS, TOR_AS = 64512, 65000
MUX_PORT = {"bgpmux-native": 1790, "bgpmux-exabgp": 1790, "bgpmux-gobgp": 1790}  # others: 179
MUXES = ("direct", "bird", "gobgp", "bgpmux-native", "bgpmux-exabgp", "bgpmux-gobgp")
ESTABLISH_TIMEOUT = 45.0


@dataclass(frozen=True)
class Addresses:
    inj4: str = "10.91.0.1"
    inj6: str = "2001:db8:91::1"
    mux_inj4: str = "10.91.0.2"  # the mux on the injector's link
    mux_inj6: str = "2001:db8:91::2"
    mux_tor4: str = "10.92.0.1"  # the mux (the node address) on the ToR's link
    mux_tor6: str = "2001:db8:92::1"
    tor4: str = "10.92.0.2"
    tor6: str = "2001:db8:92::2"


LAB = Addresses()
# Without a mux the injector and the ToR share one link.
DIRECT = Addresses(
    inj4="10.93.0.1", inj6="2001:db8:93::1", mux_inj4="10.93.0.2", mux_inj6="2001:db8:93::2",
    mux_tor4="10.93.0.1", mux_tor6="2001:db8:93::1", tor4="10.93.0.2", tor6="2001:db8:93::2",
)  # fmt: skip

ONLY_STATIC = "filter only_static { if source = RTS_STATIC then accept; reject; }"
TIMERS = "connect delay time 1; connect retry time 2; error wait time 1, 5;"


class ConfiguredBird(Bird):
    """The lab's BIRD driver with a config text written by the benchmark."""

    def __init__(self, host: Host, name: str, router_id: str, text: str) -> None:
        super().__init__(host, name, 0, router_id, [])
        self.text = text

    def config_text(self) -> str:
        return self.text


def _bird_config(router_id: str, sets: list[RouteSet], protocols: list[str]) -> str:
    parts = ["log stderr { warning, error, fatal, bug, info };", f"router id {router_id};"]
    parts += ["protocol device { scan time 10; }", ONLY_STATIC]
    parts += [s.static_protocol() for s in sets]
    return "\n\n".join([*parts, *protocols]) + "\n"


def _bgp(
    name: str, local: str, local_as: int, peer: str, port: int, peer_as: int, *lines: str
) -> str:
    body = "\n".join(
        [
            f"  local {local} as {local_as};",
            f"  neighbor {peer} port {port} as {peer_as};",
            f"  {TIMERS}",
        ]
        + [f"  {line}" for line in lines]
    )
    return f"protocol bgp {name} {{\n{body}\n}}"


class Scenario(Lifecycle):
    """Context manager: the three namespaces, the daemons, and control-socket clients.

    `inj_proto` is the injector's BGP protocol (towards the mux), `tor_proto` the ToR's.
    """

    inj_proto = "uplink"
    tor_proto = "node"

    def __init__(
        self,
        mux: str,
        injector_sets: list[RouteSet],
        tor_sets: list[RouteSet],
        *,
        bgpmux_log_level: str = "info",
        bgpmux_env: dict[str, str] | None = None,
    ) -> None:
        if mux not in MUXES:
            raise ValueError(f"unknown mux {mux!r}; choose from {', '.join(MUXES)}")
        self.mux_kind = mux
        self.addr = DIRECT if mux == "direct" else LAB
        self.injector_sets = injector_sets
        self.tor_sets = tor_sets
        self.bgpmux_log_level = bgpmux_log_level
        self.bgpmux_env = bgpmux_env or {}
        self.topo: Topology | None = None
        self.hosts: dict[str, Host] = {}
        self.ifaces: dict[str, str] = {}
        self.injector: ConfiguredBird | None = None
        self.tor: ConfiguredBird | None = None
        self.mux: Daemon | None = None
        self.inj_ctl: BirdCtl | None = None
        self.tor_ctl: BirdCtl | None = None

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        for ctl in (self.inj_ctl, self.tor_ctl):
            if ctl is not None:
                ctl.close()
        if self.topo is not None:
            self.topo.close()  # ends every process it started, by PID, then the namespaces
            self.topo = None

    @property
    def workdir(self) -> Path:
        assert self.topo is not None
        return self.topo.workdir

    def _build(self) -> None:
        a = self.addr
        self.topo = topo = Topology(tag="bn")
        inj, tor = topo.add_host("inj"), topo.add_host("tor")
        self.hosts = {"inj": inj, "tor": tor}
        if self.mux_kind == "direct":
            self.ifaces["inj"], self.ifaces["tor"] = topo.link(
                inj, [f"{a.inj4}/30", f"{a.inj6}/64"], tor, [f"{a.tor4}/30", f"{a.tor6}/64"]
            )
            return
        mux = self.hosts["mux"] = topo.add_host("mux")
        self.ifaces["inj"], self.ifaces["mux_inj"] = topo.link(
            inj, [f"{a.inj4}/30", f"{a.inj6}/64"], mux, [f"{a.mux_inj4}/30", f"{a.mux_inj6}/64"]
        )
        self.ifaces["mux_tor"], self.ifaces["tor"] = topo.link(
            mux, [f"{a.mux_tor4}/30", f"{a.mux_tor6}/64"], tor, [f"{a.tor4}/30", f"{a.tor6}/64"]
        )

    def _start(self) -> None:
        self._build()
        a = self.addr
        direct = self.mux_kind == "direct"
        tor_text = _bird_config(
            a.tor4,
            self.tor_sets,
            [
                _bgp(
                    self.tor_proto, a.tor4, TOR_AS, a.mux_tor4, 179, NODE_AS, "passive on;",
                    "ipv4 { import all; export filter only_static; };",
                    "ipv6 { import all; export filter only_static;"
                    f" next hop address {a.tor6}; }};",
                )
            ],
        )  # fmt: skip
        self.tor = ConfiguredBird(self.hosts["tor"], "tor", a.tor4, tor_text)
        self.tor.start()

        if not direct:
            self.mux = self._make_mux()
            self.mux.start()

        port = MUX_PORT.get(self.mux_kind, 179)
        peer_as = TOR_AS if direct else NODE_AS
        inj_text = _bird_config(
            a.inj4,
            self.injector_sets,
            [
                _bgp(
                    self.inj_proto, a.inj4, NODE_AS, a.mux_inj4, port, peer_as,
                    "ipv4 { import all; export filter only_static; };",
                    "ipv6 { import all; export filter only_static;"
                    f" next hop address {a.inj6}; }};",
                )
            ],
        )  # fmt: skip
        self.injector = ConfiguredBird(self.hosts["inj"], "injector", a.inj4, inj_text)
        self.injector.start()

        daemons = [d for d in (self.injector, self.mux, self.tor) if d is not None]
        self.inj_ctl = wait_until(
            lambda: BirdCtl(self.injector.socket_path).connect(),
            timeout=15,
            what="injector BIRD's socket",
            logs_of=daemons,
        )
        self.tor_ctl = wait_until(
            lambda: BirdCtl(self.tor.socket_path).connect(),
            timeout=15,
            what="ToR BIRD's socket",
            logs_of=daemons,
        )
        for ctl, proto, who in (
            (self.inj_ctl, self.inj_proto, "injector"),
            (self.tor_ctl, self.tor_proto, "ToR"),
        ):
            deadline = time.monotonic() + ESTABLISH_TIMEOUT
            while ctl.state(proto) != "Established":
                dead = [d for d in daemons if not d.running]
                if dead or time.monotonic() > deadline:
                    why = f"{dead[0]} exited" if dead else f"not within {ESTABLISH_TIMEOUT:g} s"
                    tails = "\n".join(f"--- {d.name} ---\n{d.log_tail(15)}" for d in daemons)
                    raise RuntimeError(f"{who} session not Established: {why}\n{tails}")
                time.sleep(0.1)

    def _make_mux(self) -> Daemon:
        a = self.addr
        host = self.hosts["mux"]
        if self.mux_kind == "bird":
            text = _bird_config(
                a.mux_tor4,
                [],
                [
                    _bgp(
                        "inj", a.mux_inj4, NODE_AS, a.inj4, 179, NODE_AS, "passive on; direct;",
                        "ipv4 { import all; export where source = RTS_BGP; gateway direct; };",
                        "ipv6 { import all; export where source = RTS_BGP; gateway direct;"
                        f" next hop address {a.mux_inj6}; }};",
                    ),
                    _bgp(
                        "tor", a.mux_tor4, NODE_AS, a.tor4, 179, TOR_AS,
                        "ipv4 { import all; export where source = RTS_BGP; next hop self; };",
                        "ipv6 { import all; export where source = RTS_BGP;"
                        f" next hop address {a.mux_tor6}; }};",
                    ),
                ],
            )  # fmt: skip
            return ConfiguredBird(host, "mux", a.mux_tor4, text)
        if self.mux_kind == "gobgp":
            families = ("ipv4", "ipv6")
            neighbors = [
                Neighbor(a.inj4, NODE_AS, passive=True, source=a.mux_inj4, families=families),
                Neighbor(a.tor4, TOR_AS, source=a.mux_tor4, families=families),
            ]
            return _GoBgpMux(
                host, "mux", NODE_AS, a.mux_tor4, neighbors, listen_port=179, next_hop6=a.mux_tor6
            )
        engine = self.mux_kind.removeprefix("bgpmux-")
        config: dict[str, Any] = {
            "node": {
                "asn": NODE_AS,
                "router_id": a.mux_tor4,
                "address": a.mux_tor4,
                "address_v6": a.mux_tor6,
            },
            "engine": engine,
            "upstreams": [{"name": "tor", "address": a.tor4, "asn": TOR_AS}],
            "clients": [
                {
                    "name": "calico",
                    "listen": f"{a.mux_inj4}:{MUX_PORT[self.mux_kind]}",
                    "peer_address": a.inj4,  # the injector is in its own namespace
                    "asn": NODE_AS,
                    "accept": [ACCEPT_V4, ACCEPT_V6],
                    "max_prefixes": 2_000_000,  # above every table the bench sends
                    "receive_upstream_routes": True,
                }
            ],
            "log": {"level": self.bgpmux_log_level},
        }
        mux = _EnvBgpmux(host, "mux", config, env=self.bgpmux_env)
        return mux

    # ------------------------------------------------------------------ the mux's processes

    def mux_processes(self) -> list[tuple[str, int]]:
        """(name, pid) of the mux's process and, for bgpmux, every descendant (ExaBGP, relay)."""
        if self.mux is None or self.mux.proc is None:
            return []
        root = self.mux.proc.pid
        out = [(_comm(root), root)]
        if self.mux_kind.startswith("bgpmux"):
            out += [(_comm(pid), pid) for pid in descendants(root)]
        return out

    def tcpdump_binary(self) -> str:
        found = shutil.which("tcpdump") or "/usr/bin/tcpdump"
        if not os.path.exists(found):
            raise RuntimeError("tcpdump is not installed")
        return found


class _GoBgpMux(GoBgp):
    """GoBGP as the mux. On an IPv4 session GoBGP's own next hop for IPv6 routes is the IPv4
    address (as ::ffff:a.b.c.d), which the ToR cannot use: a global export policy for the ToR
    (the last neighbor) sets the node's IPv6 address instead, as BIRD's `next hop address`
    does."""

    def __init__(self, *args: Any, next_hop6: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_hop6 = next_hop6

    def config_text(self) -> str:
        text = (
            super()
            .config_text()
            .replace(
                '  default-export-policy = "accept-route"\n',
                '  default-export-policy = "accept-route"\n'
                '  export-policy-list = ["v6-next-hop"]\n',
                1,
            )
        )
        return text + "\n".join(
            [
                "",
                "[[defined-sets.neighbor-sets]]",
                '  neighbor-set-name = "tor"',
                f'  neighbor-info-list = ["{self.neighbors[-1].address}"]',
                "",
                "[[defined-sets.prefix-sets]]",
                '  prefix-set-name = "all-v6"',
                "  [[defined-sets.prefix-sets.prefix-list]]",
                '    ip-prefix = "::/0"',
                '    masklength-range = "0..128"',
                "",
                "[[policy-definitions]]",
                '  name = "v6-next-hop"',
                "  [[policy-definitions.statements]]",
                '    name = "v6"',
                "    [policy-definitions.statements.conditions.match-prefix-set]",
                '      prefix-set = "all-v6"',
                "    [policy-definitions.statements.conditions.match-neighbor-set]",
                '      neighbor-set = "tor"',
                "    [policy-definitions.statements.actions]",
                '      route-disposition = "accept-route"',
                "    [policy-definitions.statements.actions.bgp-actions]",
                f'      set-next-hop = "{self.next_hop6}"',
                "",
            ]
        )


class _EnvBgpmux(Bgpmux):
    """The lab's bgpmux driver, with extra environment (for example a profiler hook)."""

    def __init__(self, host: Host, name: str, config: dict[str, Any], env: dict[str, str]) -> None:
        super().__init__(host, name, config)
        self.extra_env = env

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra_env}


def _comm(pid: int) -> str:
    """A short name for a mux process: bgpmux, exabgp, exabgp_relay, or the program's name."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in cmdline if w]
    for word in words:
        if word.endswith("exabgp_relay"):
            return "exabgp_relay"
    for word in words:
        if Path(word).name == "exabgp" or word == "exabgp":
            return "exabgp"
    for word in words:
        if word == "bgpmux" or Path(word).name == "bgpmux":
            return "bgpmux"
    return Path(words[0]).name if words else "?"
