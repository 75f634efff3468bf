"""Plain-data views of the routing state, for the API and the CLI (JSON-ready dicts)."""

from __future__ import annotations

import ipaddress
from typing import Any

from .rib.paths import Path
from .wire.constants import Family, Origin
from .wire.prefix import Prefix, prefix_to_str


def next_hop_str(next_hop: bytes) -> str:
    if len(next_hop) in (4, 16):
        return str(ipaddress.ip_address(next_hop))
    if len(next_hop) == 32:  # IPv6 global + link-local
        return f"{ipaddress.ip_address(next_hop[:16])} {ipaddress.ip_address(next_hop[16:])}"
    return next_hop.hex()


def community_str(value: int) -> str:
    return f"{value >> 16}:{value & 0xFFFF}"


def route_view(family: Family, prefix: Prefix, path: Path, **extra: Any) -> dict[str, Any]:
    attrs = path.attributes
    view: dict[str, Any] = {
        "prefix": prefix_to_str(family, prefix),
        "family": str(family),
        "source": path.source.name,
        "next_hop": next_hop_str(path.next_hop),
        "as_path": list(attrs.as_path_flat()),
        "origin": Origin(attrs.origin).name.lower(),
    }
    if attrs.med is not None:
        view["med"] = attrs.med
    if attrs.local_pref is not None:
        view["local_pref"] = attrs.local_pref
    if attrs.communities:
        view["communities"] = [community_str(c) for c in attrs.communities]
    if attrs.large_communities:
        view["large_communities"] = [":".join(map(str, lc)) for lc in attrs.large_communities]
    view.update(extra)
    return view
