"""Plain-data views of the routing state, for the API and the CLI (JSON-ready dicts).

A route row has the keys of the API's ``Route`` message (proto/bgpmux/v1/routes.proto):
upstream, client, prefix, family, next_hop, as_path (flat list of ASNs), med, local_pref,
communities ("ASN:value"), large_communities ("a:b:c"), origin, stale, best, reason (None or
"" where they do not apply).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..policy.channels import ClientChannel, UpstreamChannel
from ..policy.transforms import RejectReason
from ..rib.paths import Path
from ..wire.attributes import PathAttributes
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


def large_community_str(value: tuple[int, int, int]) -> str:
    """A large community (RFC 8092) as ``global:local1:local2``."""
    return ":".join(map(str, value))


def route_view(
    family: Family,
    prefix: Prefix,
    next_hop: bytes | None,
    attrs: PathAttributes | None,
    **extra: Any,
) -> dict[str, Any]:
    """One route as a row (see the module's docstring); ``attrs`` None (a refused prefix whose
    path was not kept): no attributes. ``extra`` sets upstream, client, stale, best, reason."""
    view: dict[str, Any] = {
        "upstream": None,
        "client": None,
        "prefix": prefix_to_str(family, prefix),
        "family": str(family),
        "next_hop": None if next_hop is None else next_hop_str(next_hop),
        "as_path": [],
        "med": None,
        "local_pref": None,
        "communities": [],
        "large_communities": [],
        "origin": None,
        "stale": False,
        "best": False,
        "reason": None,
    }
    if attrs is not None:
        view["as_path"] = list(attrs.as_path_flat())
        view["med"] = attrs.med
        view["local_pref"] = attrs.local_pref
        view["communities"] = [community_str(c) for c in attrs.communities]
        view["large_communities"] = [large_community_str(c) for c in attrs.large_communities]
        view["origin"] = Origin(attrs.origin).name.lower()
    view.update(extra)
    return view


def routes_view(core: Core, query: RoutesQuery) -> dict[str, Any]:
    """The answer to a ``RoutesQuery``: ``{"routes": [row, ...]}``, or ``{"error": ...}`` for
    an unknown name. With ``client``: its Adj-RIB-In (stale and best marked) then the prefixes
    it had refused (``reason`` set); with ``received_from``: that upstream's Adj-RIB-In then what
    its import policy refused; with ``rejected`` (and neither) every client's refused prefixes;
    otherwise the routes exported to each upstream (``upstream``: only that one), with the
    attributes as sent. Rows ``query.keep`` refuses are left out as they are made."""
    rows = _rows(core, query)
    if isinstance(rows, str):
        return {"error": rows}
    keep = query.keep
    return {"routes": list(rows) if keep is None else [row for row in rows if keep(row)]}


def _rows(core: Core, query: RoutesQuery) -> Iterator[dict[str, Any]] | str:
    """The rows ``routes_view`` asks for, made one at a time; an error in words instead for an
    unknown name."""
    if query.client is not None:
        client = core.clients.get(query.client)
        if client is None:
            return f"no client named {query.client!r}"
        return _client_rows(core, query.client, client.channel)
    if query.received_from is not None:
        upstream = core.upstreams.get(query.received_from)
        if upstream is None:
            return f"no upstream named {query.received_from!r}"
        return _received_rows(query.received_from, upstream.channel)
    if query.rejected:
        return itertools.chain.from_iterable(
            _rejected_view(client.channel.rejected, client=name)
            for name, client in core.clients.items()
        )
    if query.upstream is not None and query.upstream not in core.upstreams:
        return f"no upstream named {query.upstream!r}"
    return _exported(core, query.upstream)


def _client_rows(core: Core, name: str, channel: ClientChannel) -> Iterator[dict[str, Any]]:
    """A client's Adj-RIB-In (stale and best marked), then the prefixes it had refused."""
    tables = {f: core.for_upstreams.table(f) for f in (*channel.rib.live, *channel.rib.stale)}
    for f, p, path, stale in channel.rib.items():
        yield route_view(f, p, path.next_hop, path.attributes, client=name, stale=stale,
                         best=tables[f].get(p) is path)  # fmt: skip
    yield from _rejected_view(channel.rejected, client=name)


def _received_rows(name: str, channel: UpstreamChannel) -> Iterator[dict[str, Any]]:
    """An upstream's Adj-RIB-In, then what its import policy refused."""
    for f, p, path, stale in channel.rib.items():
        yield route_view(f, p, path.next_hop, path.attributes, upstream=name, stale=stale)
    yield from _rejected_view(channel.imports.rejected, upstream=name)


def _exported(core: Core, only: str | None) -> Iterator[dict[str, Any]]:
    """The rows of what each upstream is sent: the best client path per prefix (``best`` set)
    through the exporter's own transform (``Exporter.as_sent``), next hop the node's address;
    of the families its session negotiated (every family of the node while it is down), less
    the routes withheld from it as too large."""
    exporter = core.exporter
    for name, upstream in core.upstreams.items():
        if only is not None and name != only:
            continue
        ebgp = upstream.channel.ebgp
        withheld = exporter.too_large.get(name, set())
        families = upstream.families if upstream.up else core.families
        for family in families:
            next_hop = exporter.next_hops[family]
            for prefix, path in core.for_upstreams.table(family).items():
                if (family, prefix) in withheld:
                    continue
                yield route_view(family, prefix, next_hop, exporter.as_sent(path, ebgp),
                                 upstream=name, client=path.source.name, best=True)  # fmt: skip


def _rejected_view(
    rejected: Mapping[tuple[Family, Prefix], tuple[RejectReason, Path | None]], **peer: str
) -> Iterator[dict[str, Any]]:
    """A channel's refused prefixes (client or upstream), each with why and, where kept, the
    attributes it came with."""
    for (family, prefix), (reason, path) in rejected.items():
        next_hop, attrs = (None, None) if path is None else (path.next_hop, path.attributes)
        yield route_view(family, prefix, next_hop, attrs, reason=reason.value, **peer)


def peer_counts(core: Core) -> dict[str, dict[str, Any]]:
    """The answer to a ``PeersQuery``, per peer name: ``received`` (accepted plus rejected),
    ``accepted`` (also as ``prefixes``: live and stale), ``stale``, ``rejected`` and
    ``rejected_by_reason`` (reason -> count), ``advertised`` (0 while down; to an upstream,
    routes withheld as too large not counted; to a client, the upstreams' best routes when it
    receives them) and ``flaps``."""
    out: dict[str, dict[str, Any]] = {}
    to_clients = core.for_clients.count()
    for name, client in core.clients.items():
        channel = client.channel
        to_client = 0
        if client.receives_upstream_routes:
            to_client = to_clients - len(core.exporter.too_large.get(name, ()))
        out[name] = _counts(channel.rib.count(), channel.rib.stale_count(), channel.rejected)
        out[name].update(advertised=to_client, flaps=client.flaps)
    for name, upstream in core.upstreams.items():
        rib = upstream.channel.rib
        out[name] = _counts(rib.count(), rib.stale_count(), upstream.channel.imports.rejected)
        sent = sum(advertised(core, name, family) for family in core.families)
        out[name].update(advertised=sent, flaps=upstream.flaps)
    return out


def _counts(
    accepted: int, stale: int, rejected: Mapping[Any, tuple[RejectReason, Path | None]]
) -> dict[str, Any]:
    by_reason = Counter(reason.value for reason, _path in rejected.values())
    return {
        "prefixes": accepted,
        "received": accepted + len(rejected),
        "accepted": accepted,
        "stale": stale,
        "rejected": len(rejected),
        "rejected_by_reason": dict(by_reason),
    }


def advertised(core: Core, upstream: str, family: Family) -> int:
    """Prefixes of ``family`` handed to the engine for ``upstream`` and accepted by it: the
    Loc-RIB's table of the family less the routes the engine refused as too large (RFC 8654),
    while the session is up and negotiated ``family`` (RFC 4760 §8: the core exports nothing
    else to it); 0 otherwise, and while an engine holds the table before the session opens
    (``table_first``: nothing went on the wire yet). No walk over the table: cheap enough for
    every scrape."""
    peer = core.upstreams[upstream]
    if not peer.up or peer.established_at is None or family not in peer.families:
        return 0
    table = core.for_upstreams.table(family)
    return len(table) - core.exporter.withheld(upstream, family)
