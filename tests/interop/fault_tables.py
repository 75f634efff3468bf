"""What the ToR of the fault suite's rack should hold, and how its BIRD shows what it holds.

A table is {prefix: next hop}: the node's routes must carry the node's address, the ToR's own
routes have none (BIRD shows them as blackholes).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable

from .e2e_rack import (
    CALICO_V4,
    CALICO_V6,
    METALLB_V4,
    METALLB_V6,
    NODE_V4,
    NODE_V6,
    TOR_ROUTE_V4,
    TOR_ROUTE_V6,
)

# The rack's addresses and routes are the end-to-end suite's (e2e_rack), for the same topology.
TOR_ROUTES = (TOR_ROUTE_V4, TOR_ROUTE_V6)
CALICO_ROUTES = (CALICO_V4, CALICO_V6)
METALLB_ROUTES = (METALLB_V4, METALLB_V6)
BASELINE_NODE_ROUTES = (*CALICO_ROUTES, *METALLB_ROUTES)

Table = dict[str, str | None]  # prefix -> next hop (None: the ToR's own route)


def norm(prefix: str) -> str:
    return str(ipaddress.ip_network(prefix, strict=False))


def host_routes(base: str, count: int) -> list[str]:
    start = int(ipaddress.IPv4Address(base))
    return [f"{ipaddress.IPv4Address(start + i)}/32" for i in range(count)]


def node_hop(prefix: str) -> str:
    return NODE_V4 if ipaddress.ip_network(prefix).version == 4 else NODE_V6


def table_of(node_routes: Iterable[str], tor_routes: Iterable[str] = TOR_ROUTES) -> Table:
    """The ToR's table when the node exports ``node_routes`` and the ToR originates
    ``tor_routes``."""
    table: Table = {norm(p): None for p in tor_routes}
    table.update({norm(p): node_hop(p) for p in node_routes})
    return table


def baseline() -> Table:
    return table_of(BASELINE_NODE_ROUTES)


def diff(got: Table, want: Table, limit: int = 8) -> str:
    """What differs, shortly: missing, unexpected, and wrong next hops."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(p for p in set(got) & set(want) if got[p] != want[p])

    def some(items: list[str], show: Callable[[str], str] = str) -> str:
        more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
        return ", ".join(show(i) for i in items[:limit]) + more

    parts = []
    if missing:
        parts.append(f"missing {len(missing)}: {some(missing)}")
    if extra:
        parts.append(f"unexpected {len(extra)}: {some(extra)}")
    if wrong:
        parts.append(f"wrong next hop {len(wrong)}: {some(wrong, lambda p: f'{p} via {got[p]}')}")
    return "; ".join(parts) or "equal"


_ROUTE_LINE = re.compile(r"^(?P<prefix>[0-9a-f:.]+/\d+)?\s+(?P<kind>\w+)\s+\[")
_VIA = re.compile(r"^\s+via (\S+)")
_COUNTER = re.compile(r"^\s+Import (updates|withdraws):\s+(\d+)")


def parse_bird_table(text: str) -> Table:
    """`show route table all`: per prefix the first route's gateway (None for a blackhole)."""
    table: Table = {}
    prefix: str | None = None
    awaiting_via = False
    for line in text.splitlines():
        head = _ROUTE_LINE.match(line)
        if head:
            awaiting_via = False
            if head.group("prefix"):
                prefix = norm(head.group("prefix"))
                if prefix not in table:
                    table[prefix] = None
                    awaiting_via = head.group("kind") == "unicast"
            continue
        via = _VIA.match(line)
        if via and awaiting_via and prefix is not None:
            table[prefix] = via.group(1)
            awaiting_via = False
    return table


def parse_import_counters(protocol_info: str) -> int:
    """Import updates and withdraws received, over every channel (`show protocols all P`)."""
    return sum(
        int(m.group(2)) for line in protocol_info.splitlines() if (m := _COUNTER.match(line))
    )
