"""The next hop of this node's default route: what ``upstreams[].address: default-gateway``
(IPv4) and ``default-gateway6`` (IPv6) stand for.

Read from the kernel's ``/proc/net/route`` and ``/proc/net/ipv6_route``: a stable kernel
interface, present in every container image (the slim image has no iproute2), read without a
subprocess, and always that of the network namespace bgpmux runs in (``/proc/net`` is the
reading process's; under ``hostNetwork`` that is the node's). What the files list:
- ``/proc/net/route``: the main IPv4 table; of a multipath route, only its first next hop.
- ``/proc/net/ipv6_route``: every IPv6 table (a policy-routing table's default route too);
  each next hop of a multipath route on a line of its own.

Parsing and choosing are pure (``parse_ipv4_routes``, ``parse_ipv6_routes``,
``choose_gateway``); ``default_gateway`` reads the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

PROC_NET = Path("/proc/net")

# route flags (linux/route.h)
RTF_UP = 0x0001
RTF_GATEWAY = 0x0002
RTF_REJECT = 0x0200


class GatewayError(Exception):
    """No usable default route next hop; the message says why and what to do."""


@dataclass(frozen=True)
class DefaultRoute:
    """One default route: its next hop (None: a route straight onto a link, no gateway), its
    metric (lower wins) and its output device."""

    gateway: IPv4Address | IPv6Address | None
    metric: int
    device: str


def parse_ipv4_routes(text: str) -> list[DefaultRoute]:
    """The usable default routes in ``/proc/net/route``'s text (a header line, then one route
    a line: Iface Destination Gateway Flags RefCnt Use Metric Mask ..., addresses as
    little-endian hex). Routes that are down or reject routes are left out. Raises
    GatewayError on a line it cannot read."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            device, destination, gateway, flags = (
                fields[0],
                fields[1],
                fields[2],
                int(fields[3], 16),
            )
            metric, mask = int(fields[6]), fields[7]
        except (IndexError, ValueError):
            raise GatewayError(f"cannot read /proc/net/route line {line!r}") from None
        if int(destination, 16) or int(mask, 16) or not flags & RTF_UP or flags & RTF_REJECT:
            continue
        hop = IPv4Address(bytes.fromhex(gateway)[::-1]) if flags & RTF_GATEWAY else None
        routes.append(DefaultRoute(hop, metric, device))
    return routes


def parse_ipv6_routes(text: str) -> list[DefaultRoute]:
    """The usable default routes (::/0) in ``/proc/net/ipv6_route``'s text (no header; one
    route a line: destination, its length, source, its length, next hop, metric, refcount,
    use, flags, device; hex). Routes that are down or reject routes (the kernel's null entry
    on ``lo``) are left out. Raises GatewayError on a line it cannot read."""
    routes = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            destination, length, next_hop = fields[0], int(fields[1], 16), fields[4]
            metric, flags, device = int(fields[5], 16), int(fields[8], 16), fields[9]
        except (IndexError, ValueError):
            raise GatewayError(f"cannot read /proc/net/ipv6_route line {line!r}") from None
        if int(destination, 16) or length or not flags & RTF_UP or flags & RTF_REJECT:
            continue
        hop = IPv6Address(bytes.fromhex(next_hop)) if flags & RTF_GATEWAY else None
        routes.append(DefaultRoute(hop, metric, device))
    return routes


def choose_gateway(routes: list[DefaultRoute], version: int) -> IPv4Address | IPv6Address:
    """The next hop of the default route with the lowest metric among ``routes`` (IPv
    ``version``, 4 or 6). Raises GatewayError when there is none, when that route has no next
    hop, when several next hops share the lowest metric (a multipath route: name the ToRs
    instead), and for an IPv6 link-local next hop (usable only with its interface, which
    bgpmux does not dial: name the ToR's global address)."""
    word = "default-gateway6" if version == 6 else "default-gateway"
    if not routes:
        raise GatewayError(
            f"{word}: this node has no IPv{version} default route (in bgpmux's network "
            "namespace); write the upstream's address instead"
        )
    lowest = min(route.metric for route in routes)
    best = [route for route in routes if route.metric == lowest]
    hops = sorted({route.gateway for route in best if route.gateway is not None}, key=str)
    if not hops:
        raise GatewayError(
            f"{word}: the IPv{version} default route (dev {best[0].device}) has no next hop "
            "(it points straight onto a link); write the upstream's address instead"
        )
    if len(hops) > 1:
        raise GatewayError(
            f"{word}: several IPv{version} default routes with metric {lowest} "
            f"(via {', '.join(map(str, hops))}); write each upstream's address instead"
        )
    hop = hops[0]
    if hop.is_link_local:
        device = next(route.device for route in best if route.gateway == hop)
        raise GatewayError(
            f"{word}: the IPv{version} default route's next hop {hop} (dev {device}) is "
            "link-local, which bgpmux does not peer with; write the upstream's global address "
            "instead"
        )
    return hop


def default_gateway(version: int, proc_net: Path = PROC_NET) -> IPv4Address | IPv6Address:
    """The next hop of the IPv ``version`` (4 or 6) default route in this process's network
    namespace (``choose_gateway``). Raises GatewayError, also when the file cannot be read
    (IPv6 disabled, say)."""
    path = proc_net / ("ipv6_route" if version == 6 else "route")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise GatewayError(
            f"cannot read {path} for the IPv{version} default route: {why}"
        ) from None
    routes = parse_ipv6_routes(text) if version == 6 else parse_ipv4_routes(text)
    return choose_gateway(routes, version)
