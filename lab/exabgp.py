"""ExaBGP 5 driver: static routes in its config, received routes and session changes recorded as
JSON lines by an API process (`exabgp_recorder.py`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .daemon import Daemon, require_binary
from .model import Announce, Neighbor, Route, announcements_for
from .netns import Host

EXABGP = str(Path(sys.executable).with_name("exabgp"))
RECORDER = Path(__file__).with_name("exabgp_recorder.py")
_STATES = {"up": "Established", "down": "Idle", "connected": "Connect"}


class ExaBgp(Daemon):
    config_name = "exabgp.conf"

    def __init__(
        self,
        host: Host,
        name: str,
        asn: int,
        router_id: str,
        neighbors: list[Neighbor],
        announce: list[Announce] | None = None,
        *,
        listen_addresses: tuple[str, ...] = (),
        listen_port: int = 179,
    ) -> None:
        super().__init__(host, name, asn, router_id, neighbors, announce)
        self.listen_addresses = listen_addresses  # empty: ExaBGP does not listen at all
        self.listen_port = listen_port
        self.received_path = self.dir / "received.jsonl"
        self.exabgp = require_binary(EXABGP)

    def command(self) -> list[str]:
        return [self.exabgp, "server", str(self.config_path)]

    def env(self) -> dict[str, str]:
        # ExaBGP reads `exabgp.section.option` settings from the environment; the underscore
        # spelling is accepted too and survives shells.
        return {
            "exabgp_daemon_daemonize": "false",
            "exabgp_daemon_drop": "false",  # stay root: it would become `nobody`
            "exabgp_daemon_user": "root",
            "exabgp_daemon_pid": str(self.dir / "exabgp.pid"),
            "exabgp_log_destination": "stdout",
            "exabgp_log_level": "INFO",
            "exabgp_api_ack": "false",
            "exabgp_api_cli": "false",  # no named pipes under /run/exabgp
            "exabgp_api_encoder": "json",
            "exabgp_tcp_bind": " ".join(self.listen_addresses),
            "exabgp_tcp_port": str(self.listen_port),
        }

    def extra_logs(self) -> list[Path]:
        return [self.received_path]

    # Config
    def config_text(self) -> str:
        parts = [
            "process recorder {",
            f"    run {sys.executable} {RECORDER} {self.received_path};",
            "    encoder json;",
            "}",
        ]
        for neighbor in self.neighbors:
            parts += self._neighbor_block(neighbor)
        return "\n".join(parts) + "\n"

    def _neighbor_block(self, neighbor: Neighbor) -> list[str]:
        if neighbor.passive and not neighbor.source:
            # Without it ExaBGP 5.0.15 drops every incoming connection ("'NoneType' object has
            # no attribute 'address'").
            raise ValueError(f"{self}: a passive ExaBGP neighbor needs `source` (local-address)")
        lines = [
            f"router-id {self.router_id};",
            f"local-as {self.asn};",
            f"peer-as {neighbor.asn};",
            f"connect {neighbor.port};",
            # ExaBGP 5.0 neighbors are passive unless told otherwise.
            f"passive {'true' if neighbor.passive else 'false'};",
        ]
        if neighbor.source:
            lines.append(f"local-address {neighbor.source};")
        if neighbor.hold_time is not None:
            lines.append(f"hold-time {neighbor.hold_time};")
        if neighbor.password:
            lines.append(f'md5-password "{neighbor.password}";')
        lines.append("family { " + " ".join(f"{f} unicast;" for f in neighbor.afis) + " }")
        capabilities = []
        if neighbor.graceful_restart:
            capabilities.append(f"graceful-restart {neighbor.graceful_restart};")
        if neighbor.add_path:
            capabilities.append("add-path send/receive;")
        if capabilities:
            lines.append("capability { " + " ".join(capabilities) + " }")
        lines.append(
            "api { processes [ recorder ]; neighbor-changes; receive { parsed; update; } }"
        )
        routes = [_static_route(a) for a in announcements_for(neighbor, self.announce)]
        if routes:
            lines += ["static {", *(f"    {route}" for route in routes), "}"]
        body = [f"    {line}" for line in lines]
        return [f"neighbor {neighbor.address} {{", *body, "}"]

    # Queries
    def messages(self) -> list[dict[str, Any]]:
        if not self.received_path.exists():
            return []
        messages = []
        for line in self.received_path.read_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                messages.append(json.loads(line))
        return messages

    def neighbor_state(self, address: str) -> str:
        state = "Idle"
        for message in self.messages():
            neighbor = message.get("neighbor", {})
            if (
                message.get("type") == "state"
                and neighbor.get("address", {}).get("peer") == address
            ):
                state = _STATES.get(neighbor.get("state"), str(neighbor.get("state")))
        return state

    def routes_of(self, family: str) -> dict[str, Route]:
        return self.routes(family)

    def routes(self, family: str = "ipv4") -> dict[str, Route]:
        """Routes received from every neighbor, replayed from the recorded UPDATEs."""
        afi = f"{family} unicast"
        routes: dict[str, Route] = {}
        for message in self.messages():
            update = message.get("neighbor", {}).get("message", {}).get("update")
            if message.get("type") != "update" or update is None:
                continue  # session changes, End-of-RIB markers
            for prefix in _prefixes(update.get("withdraw", {}).get(afi, [])):
                routes.pop(prefix, None)
            attributes = update.get("attribute", {})
            announced: set[str] = set()
            # IPv6 NLRI may be listed twice, under the global and under the link-local next hop;
            # the global one comes first.
            for next_hop, nlris in update.get("announce", {}).get(afi, {}).items():
                for prefix in _prefixes(nlris):
                    if prefix not in announced:
                        announced.add(prefix)
                        routes[prefix] = parse_attributes(attributes, next_hop)
        return routes


def _prefixes(nlris: list[Any]) -> list[str]:
    return [n["nlri"] if isinstance(n, dict) else str(n) for n in nlris]


def _static_route(announce: Announce) -> str:
    words = [f"route {announce.prefix}", f"next-hop {announce.next_hop or 'self'}"]
    if announce.communities:
        words.append("community [ " + " ".join(f"{a}:{b}" for a, b in announce.communities) + " ]")
    if announce.large_communities:
        values = " ".join(f"{a}:{b}:{c}" for a, b, c in announce.large_communities)
        words.append(f"large-community [ {values} ]")
    if announce.med is not None:
        words.append(f"med {announce.med}")
    return " ".join(words) + ";"


def parse_attributes(attributes: dict[str, Any], next_hop: str) -> Route:
    as_path = attributes.get("as-path", [])
    if isinstance(as_path, dict):  # {"0": {"element": "as-sequence", "value": [...]}} forms
        as_path = [asn for segment in as_path.values() for asn in segment.get("value", [])]
    return Route(
        next_hop=next_hop,
        as_path=[int(asn) for asn in as_path],
        communities={(int(a), int(b)) for a, b in attributes.get("community", [])},
        large_communities={
            (int(a), int(b), int(c)) for a, b, c in attributes.get("large-community", [])
        },
        med=attributes.get("med"),
        local_pref=attributes.get("local-preference"),
        origin=attributes.get("origin"),
    )
