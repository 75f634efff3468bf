"""BIRD 2 driver: config rendering, `birdc` queries and their parsing."""

from __future__ import annotations

import re

from .daemon import Daemon, require_binary
from .model import Announce, Neighbor, Route
from .netns import Host

_ORIGINS = {"IGP": "igp", "EGP": "egp", "Incomplete": "incomplete", "?": "incomplete"}
_ROUTE_HEAD = re.compile(
    r"^(?P<prefix>\S+)?\s+(?P<kind>\w+)\s+\[(?P<proto>\S+)[^\]]*\]\s*(?P<primary>\*)?"
)
_PAIR = re.compile(r"\((\d+),\s*(\d+)\)")
_TRIPLE = re.compile(r"\((\d+),\s*(\d+),\s*(\d+)\)")


class Bird(Daemon):
    config_name = "bird.conf"

    def __init__(
        self,
        host: Host,
        name: str,
        asn: int,
        router_id: str,
        neighbors: list[Neighbor],
        announce: list[Announce] | None = None,
        *,
        listen_port: int = 179,
        graceful_recovery: bool = False,
        connect_retry: int = 2,
        next_hop_address: dict[str, str] | None = None,
    ) -> None:
        super().__init__(host, name, asn, router_id, neighbors, announce)
        # per family ("ipv6": "2001:db8::2"): the next hop BIRD sets on export, needed for
        # IPv6 routes carried over an IPv4 session, as Calico's BIRD does
        self.next_hop_address = dict(next_hop_address or {})
        self.listen_port = listen_port
        self.graceful_recovery = graceful_recovery  # `bird -R`, as calico-node starts it
        self.connect_retry = connect_retry
        self.socket_path = self.dir / "bird.ctl"
        self.pid_path = self.dir / "bird.pid"
        self.bird = require_binary("bird")
        self.birdc = require_binary("birdc")

    def command(self) -> list[str]:
        argv = [self.bird, "-f", "-c", str(self.config_path), "-s", str(self.socket_path)]
        argv += ["-P", str(self.pid_path)]
        return [*argv, "-R"] if self.graceful_recovery else argv

    def protocol_name(self, neighbor_address: str) -> str:
        for index, neighbor in enumerate(self.neighbors, start=1):
            if neighbor.address == neighbor_address:
                return f"peer{index}"
        raise KeyError(f"{self}: no neighbor {neighbor_address}")

    # Config
    def config_text(self) -> str:
        parts = [
            "log stderr all;",
            f"router id {self.router_id};",
            "protocol device { scan time 10; }",
        ]
        for family in ("ipv4", "ipv6"):
            routes = [a for a in self.announce if a.family == family]
            if routes:
                body = "\n".join(f"  route {a.prefix} blackhole;" for a in routes)
                parts.append(f"protocol static static_{family} {{\n  {family};\n{body}\n}}")
        parts.append(_export_filter(self.announce))
        for neighbor in self.neighbors:
            parts.append(self._bgp_protocol(neighbor))
        return "\n\n".join(parts) + "\n"

    def _bgp_protocol(self, neighbor: Neighbor) -> str:
        local = f"local {neighbor.source} " if neighbor.source else "local "
        lines = [
            f"{local}port {self.listen_port} as {self.asn};",
            f"neighbor {neighbor.address} port {neighbor.port} as {neighbor.asn};",
            f"passive {'on' if neighbor.passive else 'off'};",
            f"connect delay time 1; connect retry time {self.connect_retry};",
            "error wait time 1, 5;",
        ]
        if neighbor.hold_time is not None:
            lines.append(f"hold time {neighbor.hold_time};")
        if neighbor.password:
            lines.append(f'password "{neighbor.password}";')
        if neighbor.ttl_security:
            lines.append("ttl security on;")
        if neighbor.graceful_restart is not None:
            lines.append(f"graceful restart on; graceful restart time {neighbor.graceful_restart};")
        for family in neighbor.afis:
            channel = ["import all;", "export filter export_originated;"]
            # Originated routes carry a next hop of their own only when an Announce names one.
            if any(a.next_hop and a.family == family for a in self.announce):
                channel.append("next hop keep;")
            if neighbor.add_path:
                mode = "on" if neighbor.add_path is True else neighbor.add_path
                channel.append(f"add paths {mode};")
            if family in self.next_hop_address:
                channel.append(f"next hop address {self.next_hop_address[family]};")
            lines.append(f"{family} {{ {' '.join(channel)} }};")
        body = "\n".join(f"  {line}" for line in lines)
        return f"protocol bgp {self.protocol_name(neighbor.address)} {{\n{body}\n}}"

    # Queries
    def birdc_cmd(self, command: str, timeout: float = 10) -> str:
        result = self.host.run([self.birdc, "-s", str(self.socket_path), command], timeout=timeout)
        return result.stdout

    def routes(self, table: str = "master4", protocol: str | None = None) -> dict[str, Route]:
        command = f"show route all table {table}"
        if protocol:
            command += f" protocol {protocol}"
        return parse_show_route_all(self.birdc_cmd(command))

    def routes_of(self, family: str) -> dict[str, Route]:
        return self.routes("master4" if family == "ipv4" else "master6")

    def paths(self, prefix: str) -> list[Route]:
        """Every path BIRD holds for ``prefix`` (several with ADD-PATH), primary first; none
        when it has no route for it."""
        table = "master6" if ":" in prefix else "master4"
        text = self.birdc_cmd(f"show route all table {table}")
        return parse_show_route_paths(text).get(prefix, [])

    def protocol_info(self, name: str) -> str:
        return self.birdc_cmd(f"show protocols all {name}")

    def protocol_state(self, name: str) -> str:
        return parse_bgp_state(self.protocol_info(name))

    def neighbor_state(self, address: str) -> str:
        return self.protocol_state(self.protocol_name(address))


def _export_filter(announce: list[Announce]) -> str:
    """Export only the static routes, setting their attributes on the way out: BIRD drops a MED
    on eBGP export unless the export filter itself set it."""
    lines = ["filter export_originated {", "  if source != RTS_STATIC then reject;"]
    for a in announce:
        statements = [f"bgp_community.add(({x}, {y}));" for x, y in a.communities]
        statements += [
            f"bgp_large_community.add(({x}, {y}, {z}));" for x, y, z in a.large_communities
        ]
        if a.med is not None:
            statements.append(f"bgp_med = {a.med};")
        if a.next_hop:
            statements.append(f"bgp_next_hop = {a.next_hop};")
        if statements:
            lines.append(f"  if net = {a.prefix} then {{ {' '.join(statements)} }}")
    lines += ["  accept;", "}"]
    return "\n".join(lines)


def parse_bgp_state(protocol_info: str) -> str:
    """The BGP FSM state from `show protocols all NAME` (e.g. "Established", "Active")."""
    for line in protocol_info.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "BGP state":
            return value.strip()
    raise ValueError(f"no 'BGP state' in birdc output:\n{protocol_info}")


def _route_paths(text: str) -> list[tuple[str, bool, Route]]:
    """Every path of `birdc show route all`, in BIRD's order: (prefix, primary, route).

    Route heads look like `PREFIX  unicast [proto time] * (100) [AS65001i]`; further routes of
    the same prefix repeat the head without the prefix. Attribute lines are tab-indented
    `Name: value`; BIRD wraps long values onto lines indented with two tabs.
    """
    out: list[tuple[str, bool, Route]] = []
    prefix: str | None = None
    current: Route | None = None
    last_key: str | None = None
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith(("BIRD ", "Table ", "Access ")):
            continue
        head = _ROUTE_HEAD.match(raw)
        if head and (head.group("prefix") or not raw.startswith("\t")):
            prefix = head.group("prefix") or prefix
            if prefix is None:
                continue
            current = Route(next_hop=None)
            out.append((prefix, head.group("primary") is not None, current))
            last_key = None
            continue
        if current is None:
            continue
        if raw.startswith("\t\t") and last_key is not None:
            _apply_attribute(current, last_key, raw.strip())
            continue
        key, sep, value = raw.strip().partition(":")
        if sep:  # not "via 10.0.0.1 on eth1" and similar
            last_key = key
            _apply_attribute(current, key, value.strip())
    return out


def parse_show_route_all(text: str) -> dict[str, Route]:
    """Parse `birdc show route all`; per prefix the primary route (marked `*`), else the first."""
    routes: dict[str, Route] = {}
    primary: set[str] = set()
    for prefix, is_primary, route in _route_paths(text):
        if prefix not in routes or (is_primary and prefix not in primary):
            routes[prefix] = route
        if is_primary:
            primary.add(prefix)
    return routes


def parse_show_route_paths(text: str) -> dict[str, list[Route]]:
    """Parse `birdc show route all` keeping every path: per prefix, its routes in BIRD's order
    (the primary one first)."""
    paths: dict[str, list[Route]] = {}
    for prefix, _primary, route in _route_paths(text):
        paths.setdefault(prefix, []).append(route)
    return paths


def _apply_attribute(route: Route, key: str, value: str) -> None:
    if key == "BGP.next_hop":
        route.next_hop = value.split()[0] if value else None
    elif key == "BGP.as_path":
        route.as_path += [int(token) for token in re.findall(r"\d+", value)]
    elif key == "BGP.community":
        route.communities |= {(int(a), int(b)) for a, b in _PAIR.findall(value)}
    elif key == "BGP.large_community":
        route.large_communities |= {(int(a), int(b), int(c)) for a, b, c in _TRIPLE.findall(value)}
    elif key == "BGP.med":
        route.med = int(value)
    elif key == "BGP.local_pref":
        route.local_pref = int(value)
    elif key == "BGP.origin":
        route.origin = _ORIGINS.get(value, value.lower())
