"""Plain-data views of the routing state, for the API and the CLI (JSON-ready dicts)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..policy.transforms import RejectReason
from ..rib.paths import Path
from ..wire.constants import Family, Origin
from ..wire.prefix import Prefix, prefix_to_str

if TYPE_CHECKING:
    from .events import RoutesQuery
    from .routing import Core


def next_hop_str(next_hop: bytes) -> str:
    """A next hop as text: one address for 4 or 16 octets, "global link-local" for 32, else
    hex."""
    if len(next_hop) in (4, 16):
        return str(ipaddress.ip_address(next_hop))
    if len(next_hop) == 32:  # IPv6 global + link-local
        return f"{ipaddress.ip_address(next_hop[:16])} {ipaddress.ip_address(next_hop[16:])}"
    return next_hop.hex()


def community_str(value: int) -> str:
    """A community (RFC 1997, a 32-bit integer) as ``ASN:value``."""
    return f"{value >> 16}:{value & 0xFFFF}"


def route_view(family: Family, prefix: Prefix, path: Path, **extra: Any) -> dict[str, Any]:
    """One route as JSON-ready data: prefix, family, source, next_hop, as_path (flat list of
    ASNs), origin, then med, local_pref, communities, large_communities when present, then
    ``extra``."""
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


def routes_view(core: Core, query: RoutesQuery) -> dict[str, Any]:
    """The answer to a ``RoutesQuery``: a client's Adj-RIB-In (stale and best marked, with the
    prefixes it refused), what an upstream sent (with the prefixes its import policy refused),
    or what is exported to the upstreams."""
    if query.client is not None:
        client = core.clients.get(query.client)
        if client is None:
            return {"error": f"no client named {query.client!r}"}
        channel = client.channel
        best = core.for_upstreams
        routes = [
            route_view(f, p, path, stale=stale, best=best.table(f).get(p) is path)
            for f, p, path, stale in channel.rib.items()
        ]
        return {"routes": routes, "rejected": _rejected_view(channel.rejected)}
    if query.upstream is not None:
        upstream = core.upstreams.get(query.upstream)
        if upstream is None:
            return {"error": f"no upstream named {query.upstream!r}"}
        items = upstream.channel.rib.items()
        return {
            "routes": [route_view(f, p, path, stale=stale) for f, p, path, stale in items],
            "rejected": _rejected_view(upstream.channel.imports.rejected),
        }
    return {
        "routes": [
            route_view(f, p, path)
            for f, table in core.for_upstreams.best.items()
            for p, path in table.items()
        ]
    }


def _rejected_view(
    rejected: Mapping[tuple[Family, Prefix], tuple[RejectReason, Path | None]],
) -> list[dict[str, str]]:
    """A channel's refused prefixes (client or upstream), each with why."""
    return [
        {"prefix": prefix_to_str(f, p), "family": str(f), "rejected": reason.value}
        for (f, p), (reason, _path) in rejected.items()
    ]


def peer_counts(core: Core) -> dict[str, dict[str, int]]:
    """The answer to a ``PeersQuery``, per peer name: clients ``prefixes`` (live and stale),
    ``stale``, ``rejected``; upstreams ``prefixes`` received and accepted (live and stale),
    ``stale`` (kept through its graceful restart), ``rejected`` and ``advertised`` (0 while
    down; routes withheld as too large not counted)."""
    out: dict[str, dict[str, int]] = {}
    for name, client in core.clients.items():
        rib = client.channel.rib
        out[name] = {
            "prefixes": rib.count(),
            "stale": rib.stale_count(),
            "rejected": len(client.channel.rejected),
        }
    for name, upstream in core.upstreams.items():
        out[name] = {
            "prefixes": upstream.channel.rib.count(),
            "rejected": len(upstream.channel.imports.rejected),
            "stale": upstream.channel.rib.stale_count(),
            "advertised": sum(advertised(core, name, family) for family in core.families),
        }
    return out


def advertised(core: Core, upstream: str, family: Family) -> int:
    """Prefixes of ``family`` handed to the engine for ``upstream`` and accepted by it: the
    Loc-RIB's table of the family less the routes the engine refused as too large (RFC 8654),
    while the session is up and negotiated ``family`` (RFC 4760 §8: the core exports nothing
    else to it); 0 otherwise. O(1), for every scrape."""
    peer = core.upstreams[upstream]
    if not peer.up or family not in peer.families:
        return 0
    table = core.for_upstreams.table(family)
    return len(table) - core.exporter.withheld(upstream, family)
