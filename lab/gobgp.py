"""GoBGP driver: `gobgpd` with a TOML config and its own gRPC port, driven by the `gobgp` CLI."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from .daemon import Daemon, require_binary
from .model import Announce, Neighbor, Route
from .netns import Host
from .wait import wait_until

_AFI_SAFI = {"ipv4": "ipv4-unicast", "ipv6": "ipv6-unicast"}
# gobgp's SessionState enum order
_FSM_STATES = ["Unknown", "Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established"]
_ORIGINS = {0: "igp", 1: "egp", 2: "incomplete"}
# Path attribute type codes in `gobgp ... -j` output
_ORIGIN, _AS_PATH, _NEXT_HOP, _MED, _LOCAL_PREF, _COMMUNITIES, _MP_REACH, _LARGE = (
    1, 2, 3, 4, 5, 8, 14, 32,
)  # fmt: skip


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


class GoBgp(Daemon):
    config_name = "gobgpd.toml"

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
        api_port: int = 50051,
        connect_retry: int = 2,
    ) -> None:
        super().__init__(host, name, asn, router_id, neighbors, announce)
        self.listen_port = listen_port  # None: do not listen (`port = -1`)
        self.api_port = api_port  # bound on 127.0.0.1 inside the host's namespace
        self.connect_retry = connect_retry
        self.gobgpd = require_binary("gobgpd")
        self.gobgp = require_binary("gobgp")

    def command(self) -> list[str]:
        return [
            self.gobgpd,
            "--config-type", "toml",
            "--config-file", str(self.config_path),
            "--api-hosts", f"127.0.0.1:{self.api_port}",
            "--pprof-disable",
            "--log-plain",
            "--log-level", "info",
        ]  # fmt: skip

    def start(self) -> GoBgp:
        """Start gobgpd, wait for its API, then add the configured announcements."""
        super().start()
        wait_until(
            lambda: self.cli(["global"], check=False).returncode == 0,
            timeout=15,
            what=f"{self} gRPC API on port {self.api_port}",
            logs_of=[self],
        )
        for announce in self.announce:
            self.add_route(
                announce.prefix,
                announce.next_hop,
                communities=announce.communities,
                large_communities=announce.large_communities,
                med=announce.med,
            )
        return self

    # Config
    def config_text(self) -> str:
        lines = [
            "[global.config]",
            f"  as = {self.asn}",
            f"  router-id = {_toml(self.router_id)}",
            f"  port = {self.listen_port if self.listen_port else -1}",
            "[global.apply-policy.config]",
            '  default-import-policy = "accept-route"',
            '  default-export-policy = "accept-route"',
        ]
        for neighbor in self.neighbors:
            lines += self._neighbor_lines(neighbor)
        return "\n".join(lines) + "\n"

    def _neighbor_lines(self, neighbor: Neighbor) -> list[str]:
        lines = [
            "",
            "[[neighbors]]",
            "  [neighbors.config]",
            f"    neighbor-address = {_toml(neighbor.address)}",
            f"    peer-as = {neighbor.asn}",
        ]
        if neighbor.password:
            lines.append(f"    auth-password = {_toml(neighbor.password)}")
        lines += ["  [neighbors.timers.config]", f"    connect-retry = {self.connect_retry}"]
        if neighbor.hold_time is not None:
            lines.append(f"    hold-time = {neighbor.hold_time}")
            lines.append(f"    keepalive-interval = {max(1, neighbor.hold_time // 3)}")
        lines += ["  [neighbors.transport.config]", f"    passive-mode = {_toml(neighbor.passive)}"]
        if neighbor.port != 179:
            lines.append(f"    remote-port = {neighbor.port}")
        if neighbor.source:
            lines.append(f"    local-address = {_toml(neighbor.source)}")
        if neighbor.graceful_restart:
            lines += [
                "  [neighbors.graceful-restart.config]",
                "    enabled = true",
                f"    restart-time = {neighbor.graceful_restart}",
            ]
        if neighbor.add_path:
            lines += ["  [neighbors.add-paths.config]", "    receive = true", "    send-max = 8"]
        for family in neighbor.afis:
            lines += [
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                f"      afi-safi-name = {_toml(_AFI_SAFI[family])}",
            ]
            if neighbor.graceful_restart:
                lines += [
                    "    [neighbors.afi-safis.mp-graceful-restart.config]",
                    "      enabled = true",
                ]
        return lines

    # CLI
    def cli(
        self, args: list[str], check: bool = True, timeout: float = 10
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.gobgp, "-p", str(self.api_port), *args]
        return self.host.run(argv, check=check, timeout=timeout)

    def add_route(
        self,
        prefix: str,
        next_hop: str | None = None,
        *,
        communities: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
        large_communities: tuple[tuple[int, int, int], ...] | list[tuple[int, int, int]] = (),
        med: int | None = None,
    ) -> None:
        family = Announce(prefix).family
        args = ["global", "rib", "-a", family, "add", prefix]
        if next_hop:
            args += ["nexthop", next_hop]
        if communities:
            args += ["community", ",".join(f"{a}:{b}" for a, b in communities)]
        if large_communities:
            args += ["large-community", ",".join(f"{a}:{b}:{c}" for a, b, c in large_communities)]
        if med is not None:
            args += ["med", str(med)]
        self.cli(args)

    def del_route(self, prefix: str) -> None:
        self.cli(["global", "rib", "-a", Announce(prefix).family, "del", prefix])

    # Queries
    def routes_of(self, family: str) -> dict[str, Route]:
        return self.routes(family)

    def routes(self, family: str = "ipv4") -> dict[str, Route]:
        """Best path per prefix of the global RIB (`gobgp global rib -a <family> -j`)."""
        table = json.loads(self.cli(["global", "rib", "-a", family, "-j"]).stdout or "{}")
        routes: dict[str, Route] = {}
        for prefix, paths in table.items():
            best = next((p for p in paths if p.get("best")), paths[0] if paths else None)
            if best is not None:
                routes[prefix] = parse_path(best)
        return routes

    def neighbor_info(self, address: str) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.cli(["neighbor", address, "-j"]).stdout)
        return info

    def neighbor_state(self, address: str) -> str:
        """The FSM state spelled as RFC 4271 does, e.g. "Established", "Active"."""
        state = self.neighbor_info(address)["state"]["session_state"]
        if isinstance(state, int):
            return _FSM_STATES[state] if 0 <= state < len(_FSM_STATES) else str(state)
        name = str(state).upper().removeprefix("SESSION_STATE_").removeprefix("BGP_FSM_")
        return {s.upper(): s for s in _FSM_STATES}.get(name, name)


def parse_path(path: dict[str, Any]) -> Route:
    route = Route(next_hop=None)
    for attr in path.get("attrs", []):
        kind = attr.get("type")
        if kind == _ORIGIN:
            route.origin = _ORIGINS.get(attr.get("value"), str(attr.get("value")))
        elif kind == _AS_PATH:
            for segment in attr.get("as_paths", []):
                route.as_path += [int(asn) for asn in segment.get("asns", [])]
        elif kind == _NEXT_HOP or (kind == _MP_REACH and "nexthop" in attr):
            route.next_hop = attr["nexthop"]
        elif kind == _MED:
            route.med = int(attr["metric"])
        elif kind == _LOCAL_PREF:
            route.local_pref = int(attr["value"])
        elif kind == _COMMUNITIES:
            route.communities |= {(c >> 16, c & 0xFFFF) for c in attr.get("communities", [])}
        elif kind == _LARGE:
            route.large_communities |= {
                (lc["ASN"], lc["LocalData1"], lc["LocalData2"]) for lc in attr.get("value", [])
            }
    return route
