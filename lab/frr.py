"""FRR driver: `bgpd` started on its own (no zebra), queried with `vtysh` over its vty socket."""

from __future__ import annotations

import json
from typing import Any

from .daemon import Daemon, require_binary
from .model import Announce, Neighbor, Route
from .netns import Host

BGPD = "/usr/lib/frr/bgpd"


class Frr(Daemon):
    config_name = "bgpd.conf"

    def __init__(
        self,
        host: Host,
        name: str,
        asn: int,
        router_id: str,
        neighbors: list[Neighbor],
        announce: list[Announce] | None = None,
        *,
        listen_port: int | None = 179,
        listen_address: str | None = None,
        connect_retry: int = 2,
        route_map_in: dict[str, str] | None = None,
        extra_config: list[str] | None = None,
    ) -> None:
        super().__init__(host, name, asn, router_id, neighbors, announce)
        # neighbor address -> the route-map applied to what it sends (its inbound policy)
        self.route_map_in = dict(route_map_in or {})
        self.extra_config = list(extra_config or [])  # global lines, before `router bgp`
        self.listen_port = listen_port  # None: do not listen at all (`-p 0`)
        self.listen_address = listen_address
        self.connect_retry = connect_retry
        self.vty_dir = self.dir / "vty"
        self.vty_dir.mkdir(exist_ok=True)
        self.bgpd = require_binary(BGPD)
        self.vtysh = require_binary("vtysh")

    def command(self) -> list[str]:
        argv = [
            self.bgpd,
            "--no_zebra",  # -Z: no zebra at all
            "--no_kernel",  # -n: never install routes
            "--skip_runas",  # -S: stay root, no capability dance
            "--config_file", str(self.config_path),
            "--pid_file", str(self.dir / "bgpd.pid"),
            "--vty_socket", str(self.vty_dir),
            "--vty_port", "0",  # no TCP vty, only the unix socket
            "--bgp_port", str(self.listen_port or 0),
            "--log", "stdout",
        ]  # fmt: skip
        if self.listen_address:
            argv += ["--listenon", self.listen_address]
        return argv

    # Config
    def config_text(self) -> str:
        lines = [
            "frr defaults traditional",
            f"hostname {self.name}",
            "log stdout informational",
            "!",
        ]
        lines += [*self.extra_config, "!"] if self.extra_config else []
        route_maps: dict[str, str] = {}
        for index, announce in enumerate(self.announce, start=1):
            body = _route_map_body(announce)
            if body:
                route_maps[announce.prefix] = f"ANNOUNCE-{index}"
                lines += [f"route-map ANNOUNCE-{index} permit 10", *body, "!"]
        lines += [
            f"router bgp {self.asn}",
            f" bgp router-id {self.router_id}",
            " no bgp ebgp-requires-policy",  # announce without an export policy
            " no bgp network import-check",  # `network` needs no IGP route (there is no zebra)
            " no bgp default ipv4-unicast",
        ]
        restart_times = [n.graceful_restart for n in self.neighbors if n.graceful_restart]
        if restart_times:
            lines += [
                " bgp graceful-restart",
                f" bgp graceful-restart restart-time {max(restart_times)}",
            ]
        for neighbor in self.neighbors:
            lines += [f" {line}" for line in _neighbor_lines(neighbor, self.connect_retry)]
        for family in ("ipv4", "ipv6"):
            peers = [n for n in self.neighbors if family in n.afis]
            networks = [a for a in self.announce if a.family == family]
            if not peers and not networks:
                continue
            lines.append(f" address-family {family} unicast")
            for announce in networks:
                route_map = route_maps.get(announce.prefix)
                suffix = f" route-map {route_map}" if route_map else ""
                lines.append(f"  network {announce.prefix}{suffix}")
            for neighbor in peers:
                lines.append(f"  neighbor {neighbor.address} activate")
                if neighbor.address in self.route_map_in:
                    name = self.route_map_in[neighbor.address]
                    lines.append(f"  neighbor {neighbor.address} route-map {name} in")
                if neighbor.add_path:
                    lines.append(f"  neighbor {neighbor.address} addpath-tx-all-paths")
            lines.append(" exit-address-family")
        lines.append("!")
        return "\n".join(lines) + "\n"

    # Queries
    def vtysh_cmd(self, command: str, timeout: float = 10) -> str:
        argv = [self.vtysh, "--vty_socket", str(self.vty_dir), "-d", "bgpd", "-c", command]
        return self.host.run(argv, timeout=timeout).stdout

    def configure(self, *lines: str) -> str:
        """Apply configuration ``lines`` to the running bgpd (`vtysh -c "configure terminal"
        -c line ...`); returns vtysh's output. Raises RuntimeError when vtysh fails."""
        argv = [self.vtysh, "--vty_socket", str(self.vty_dir), "-d", "bgpd"]
        for line in ("configure terminal", *lines):
            argv += ["-c", line]
        return self.host.run(argv).stdout

    def vtysh_json(self, command: str) -> Any:
        return json.loads(self.vtysh_cmd(command) or "{}")

    def routes_of(self, family: str) -> dict[str, Route]:
        return self.routes(family)

    def routes(self, family: str = "ipv4") -> dict[str, Route]:
        """Best path per prefix of the BGP table (`show bgp <afi> unicast <prefix> json`)."""
        table = self.vtysh_json(f"show bgp {family} unicast json")
        routes: dict[str, Route] = {}
        for prefix in table.get("routes", {}):
            detail = self.vtysh_json(f"show bgp {family} unicast {prefix} json")
            route = parse_prefix_detail(detail)
            if route is not None:
                routes[prefix] = route
        return routes

    def neighbors_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.vtysh_json("show bgp neighbors json")
        return info

    def neighbor_info(self, address: str) -> dict[str, Any]:
        """`show bgp neighbors <address> json` for one neighbor (uptime, counters, capabilities)."""
        info: dict[str, Any] = self.vtysh_json(f"show bgp neighbors {address} json").get(
            address, {}
        )
        return info

    def neighbor_state(self, address: str) -> str:
        neighbor = self.neighbors_info().get(address)
        if neighbor is None:
            raise KeyError(f"{self}: no neighbor {address}")
        return str(neighbor["bgpState"])


def _route_map_body(announce: Announce) -> list[str]:
    body = []
    if announce.communities:
        values = " ".join(f"{a}:{b}" for a, b in announce.communities)
        body.append(f" set community {values} additive")
    if announce.large_communities:
        values = " ".join(f"{a}:{b}:{c}" for a, b, c in announce.large_communities)
        body.append(f" set large-community {values} additive")
    if announce.med is not None:
        body.append(f" set metric {announce.med}")
    if announce.next_hop:
        keyword = "ip next-hop" if announce.family == "ipv4" else "ipv6 next-hop global"
        body.append(f" set {keyword} {announce.next_hop}")
    return body


def _neighbor_lines(neighbor: Neighbor, connect_retry: int) -> list[str]:
    peer = f"neighbor {neighbor.address}"
    lines = [f"{peer} remote-as {neighbor.asn}", f"{peer} timers connect {connect_retry}"]
    if neighbor.port != 179:
        lines.append(f"{peer} port {neighbor.port}")
    if neighbor.source:
        lines.append(f"{peer} update-source {neighbor.source}")
    if neighbor.passive:
        lines.append(f"{peer} passive")
    if neighbor.password:
        lines.append(f"{peer} password {neighbor.password}")
    if neighbor.ttl_security:
        lines.append(f"{peer} ttl-security hops 1")
    if neighbor.hold_time is not None:
        lines.append(f"{peer} timers {max(1, neighbor.hold_time // 3)} {neighbor.hold_time}")
    if neighbor.graceful_restart:
        lines.append(f"{peer} graceful-restart")
    return lines


def parse_prefix_detail(detail: dict[str, Any]) -> Route | None:
    """The best path from `show bgp <afi> unicast <prefix> json`."""
    paths = detail.get("paths", [])
    best = next((p for p in paths if p.get("bestpath", {}).get("overall")), None)
    if best is None and paths:
        best = paths[0]
    if best is None:
        return None
    nexthops = best.get("nexthops", [])
    as_path = best.get("aspath", {}).get("string", "")
    return Route(
        next_hop=nexthops[0].get("ip") if nexthops else None,
        as_path=[
            int(token)
            for token in as_path.replace("{", " ").replace("}", " ").split()
            if token.isdigit()
        ],
        communities={
            (a, b) for a, b in _numeric(best.get("community", {}).get("list", []), parts=2)
        },
        large_communities={
            (a, b, c)
            for a, b, c in _numeric(best.get("largeCommunity", {}).get("list", []), parts=3)
        },
        med=best.get("metric"),
        local_pref=best.get("locPrf"),
        origin=str(best["origin"]).lower() if "origin" in best else None,
    )


def _numeric(values: list[str], parts: int) -> list[tuple[int, ...]]:
    """ "65001:100" -> (65001, 100); well-known names such as "no-export" are left out."""
    tuples = []
    for value in values:
        fields = value.split(":")
        if len(fields) == parts and all(f.isdigit() for f in fields):
            tuples.append(tuple(int(f) for f in fields))
    return tuples
