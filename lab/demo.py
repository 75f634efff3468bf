"""``make demo``: a rack in network namespaces with real daemons, and bgpmux in the middle.

    tor (gobgpd, AS 65000, 10.0.0.1) ── veth ── node (10.0.0.2, AS 64512)
                                                 ├─ bgpmux (examples/demo.yaml)
                                                 ├─ calico: BIRD 2, iBGP, dials 127.0.0.1:1790
                                                 └─ metallb: FRR bgpd, AS 64514, to :1791

Prints the sessions, the ToR's table, what was rejected and why, what Calico learned from the
ToR, and a few lines of /metrics; then tears everything down. ``KEEP=1`` keeps it up until
Ctrl-C and prints bgpmux's PID, its config file (edit it: bgpmux reloads it live) and commands
to explore; ``ENGINE=native`` runs the native engine instead of the config's.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bgpmux.show import ROUTE_COLUMNS, format_table, status_table
from lab import Announce, Bgpmux, Bird, Frr, GoBgp, Neighbor, Topology, wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"
POD_BLOCK, POD_BLOCK_V6 = "10.244.1.0/26", "2001:db8:244:1::/64"
LB_ADDRESS, OUTSIDE = "198.51.100.10/32", "203.0.113.66/32"
TOR_ROUTES = ("10.244.8.0/26", "10.96.0.0/12")  # another node's pod block, the service range


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}")


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  "
            + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        )


def load_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    if os.environ.get("ENGINE"):
        config["engine"] = os.environ["ENGINE"]
    config.pop("api", None)  # the lab puts the socket in the node's scratch directory
    return config


def build(topo: Topology) -> tuple[GoBgp, Bgpmux, Bird, Frr]:
    tor_host, node = topo.add_host("tor"), topo.add_host("node")
    topo.link(
        tor_host, ["10.0.0.1/30", "2001:db8:ff::1/64"], node, ["10.0.0.2/30", "2001:db8:ff::2/64"]
    )
    tor = GoBgp(
        tor_host, "tor", 65000, "10.0.0.1", [Neighbor("10.0.0.2", 64512, families=("ipv4", "ipv6"))]
    )
    mux = Bgpmux(node, "bgpmux", load_config())
    calico = Bird(
        node, "calico", 64512, "10.0.0.2",
        [Neighbor("127.0.0.1", 64512, port=1790, source="10.0.0.2", graceful_restart=120,
                  add_path=True, families=("ipv4", "ipv6"))],
        [Announce(POD_BLOCK), Announce(POD_BLOCK_V6)],
        listen_port=17900, graceful_recovery=True, next_hop_address={"ipv6": "2001:db8:ff::2"},
    )  # fmt: skip
    metallb = Frr(
        node, "metallb", 64514, "10.0.0.2",
        [Neighbor("127.0.0.1", 64512, port=1791, source="127.0.0.1")],
        [Announce(LB_ADDRESS, communities=((64514, 10),)), Announce(OUTSIDE)],
        listen_port=None,
    )  # fmt: skip
    print("Building the rack in network namespaces (tor, node) and starting the daemons ...")
    tor.start()
    for prefix in TOR_ROUTES:
        tor.add_route(prefix)
    mux.start()
    wait_until(lambda: mux.api_path.exists(), timeout=30, what="bgpmux API socket", logs_of=[mux])
    calico.start()
    metallb.start()
    mux.wait_established("calico", "metallb", "tor", timeout=60)
    wait_until(
        lambda: {POD_BLOCK, LB_ADDRESS} <= set(tor.routes("ipv4")),
        timeout=60, what="the ToR holding both clients' routes", logs_of=[mux, tor],
    )  # fmt: skip
    wait_until(
        lambda: set(TOR_ROUTES) <= set(calico.routes("master4")),
        timeout=30, what="Calico learning the ToR's routes", logs_of=[mux, calico],
    )  # fmt: skip
    return tor, mux, calico, metallb


def report(tor: GoBgp, mux: Bgpmux, calico: Bird) -> None:
    heading("Sessions (bgpmux status)")
    print(indent(status_table(list(mux.sessions().values()))))
    heading("What bgpmux sends the ToR, as sent (bgpmux routes)")
    print(indent(format_table(mux.exported(), ("upstream", *ROUTE_COLUMNS))))
    heading("The ToR's table (gobgp global rib): one session from the node carries both clients")
    rows = []
    for family in ("ipv4", "ipv6"):
        for prefix, route in sorted(tor.routes(family).items()):
            communities = " ".join(f"{a}:{b}" for a, b in sorted(route.communities))
            origin = "this ToR" if not route.as_path else "node via bgpmux"
            rows.append([prefix, route.next_hop or "-", str(route.as_path), communities, origin])
    table(rows, ["PREFIX", "NEXT HOP", "AS PATH", "COMMUNITIES", "FROM"])
    heading("Rejected by import policy (never sent to the ToR)")
    for client in ("calico", "metallb"):
        for prefix, reason in sorted(mux.rejected(client).items()):
            print(f"  {client}: {prefix}  reason: {reason}")
    heading("What Calico's BIRD learned from the ToR through bgpmux")
    bgp_routes = {p: r for p, r in calico.routes("master4").items() if r.as_path}
    table(
        [
            [p, r.next_hop or "-", str(r.as_path), str(r.local_pref)]
            for p, r in sorted(bgp_routes.items())
        ],
        ["PREFIX", "NEXT HOP", "AS PATH", "LOCAL PREF"],
    )
    heading("A few lines of /metrics")
    wanted = ("bgpmux_session_up", "bgpmux_prefixes_accepted", "bgpmux_prefixes_rejected{",
              "bgpmux_prefixes_advertised", "bgpmux_engine_restarts_total")  # fmt: skip
    for line in mux.metrics().splitlines():
        if line.startswith(wanted):
            print("  " + line)


def keep_running(topo: Topology, mux: Bgpmux, tor: GoBgp) -> None:
    node, tor_host = topo.hosts["node"], topo.hosts["tor"]
    heading("KEEP=1: the rack stays up until you press Ctrl-C")
    pid = mux.proc.pid if mux.proc is not None else "?"
    print(f"  bgpmux: PID {pid}, config {mux.config_path}, log {mux.log_path}")
    print("  Edit the config file: bgpmux reloads it live (reload.watch); see its log.")
    bgpmux = f"ip netns exec {node.netns} {sys.executable} -m bgpmux"
    print(f"  {bgpmux} status --api unix:{mux.api_path}")
    print(f"  {bgpmux} routes --api unix:{mux.api_path}")
    print(f"  {bgpmux} routes --client calico --api unix:{mux.api_path}")
    print(f"  ip netns exec {tor_host.netns} gobgp -p {tor.api_port} global rib")
    print(f"  ip netns exec {node.netns} curl -s http://{mux.metrics_address}/metrics")
    signal.sigwait({signal.SIGINT, signal.SIGTERM})


def main() -> int:
    if os.geteuid() != 0:
        print("make demo needs root: it creates network namespaces", file=sys.stderr)
        return 1
    started = time.monotonic()
    with Topology("demo") as topo:
        try:
            tor, mux, calico, _metallb = build(topo)
            report(tor, mux, calico)
        except (AssertionError, RuntimeError) as exc:
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            return 1
        if os.environ.get("KEEP"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            keep_running(topo, mux, tor)
        print(f"\nTearing down (the demo took {time.monotonic() - started:.1f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
