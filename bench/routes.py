"""The route sets the benchmark announces, as BIRD static protocols.

Every set is a run of host routes (/32 or /128) from the start of its own range, inside ranges
nothing else in the lab uses: 10.128.0.0/9 for IPv4 and 2001:db8:a000::/36 for IPv6. Each role
(injector, ToR) and size class has its own range (`RANGES`), so no two sets of a plan share an
address and none reaches the latency probes' 10.150.0.0/16; a size bigger than every range is
refused (`ValueError`). A static protocol is `disabled` at start and toggled with
`birdc enable/disable`.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

ACCEPT_V4 = "10.128.0.0/9 le 32"
ACCEPT_V6 = "2001:db8:a000::/36 le 128"
ACCEPT = {
    "ipv4": ipaddress.ip_network(ACCEPT_V4.split()[0]),
    "ipv6": ipaddress.ip_network(ACCEPT_V6.split()[0]),
}

# (role, family) -> the ranges a set of that role may use, smallest first; a set of N routes
# takes the smallest range with room for N addresses.
RANGES: dict[tuple[str, str], tuple[str, ...]] = {
    ("inj", "ipv4"): ("10.140.0.0/18", "10.128.0.0/15", "10.208.0.0/12"),
    ("tor", "ipv4"): ("10.180.0.0/18", "10.160.0.0/15", "10.224.0.0/12"),
    ("inj", "ipv6"): ("2001:db8:a100::/114", "2001:db8:a000::/111", "2001:db8:a400::/108"),
    ("tor", "ipv6"): ("2001:db8:a300::/114", "2001:db8:a200::/111", "2001:db8:a500::/108"),
}
PROBE_RANGE = "10.150.0.0/16"
PROBE_BASE = "10.150.0.1"


@dataclass(frozen=True)
class RouteSet:
    name: str  # the static protocol's name
    family: str  # "ipv4" | "ipv6"
    base: str
    count: int

    @property
    def host_len(self) -> int:
        return 32 if self.family == "ipv4" else 128

    @property
    def first(self) -> int:
        return int(ipaddress.ip_address(self.base))

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def prefixes(self) -> list[str]:
        return _addresses(self.family, self.first, self.count, f"/{self.host_len}")

    def static_protocol(self) -> str:
        """The BIRD static protocol: one `route ADDR/LEN blackhole;` line per route (1M routes
        in well under a second: addresses are formatted from integers, not `ipaddress`)."""
        routes = "\n".join(
            _addresses(
                self.family, self.first, self.count, f"/{self.host_len} blackhole;", "  route "
            )
        )
        return f"protocol static {self.name} {{\n  {self.family};\n  disabled;\n{routes}\n}}\n"


def _addresses(family: str, first: int, count: int, suffix: str, prefix: str = "") -> list[str]:
    """`prefix` + address + `suffix` for `count` consecutive addresses from `first`: the upper
    bits are printed once per block of 256 (IPv4) or 65536 (IPv6) addresses."""
    width = 8 if family == "ipv4" else 16
    size = 1 << width
    tails = [f"{i}{suffix}" if family == "ipv4" else f"{i:x}{suffix}" for i in range(size)]
    out: list[str] = []
    at, end = first, first + count
    while at < end:
        block = at >> width
        head = prefix + _head(family, block << width)
        lo, hi = at & (size - 1), min(end - (block << width), size)
        out += [head + t for t in tails[lo:hi]]
        at = (block + 1) << width
    return out


def _head(family: str, address: int) -> str:
    """The address without its last group, with the separator: "10.208.3." or "2001:db8:...:"."""
    if family == "ipv4":
        return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}."
    groups = ipaddress.IPv6Address(address).exploded.split(":")[:-1]
    return ":".join(g.lstrip("0") or "0" for g in groups) + ":"


def _make(role: str, family: str, count: int) -> RouteSet:
    if count < 1:
        raise ValueError(f"a route set needs at least one route, not {count}")
    for text in RANGES[(role, family)]:
        net = ipaddress.ip_network(text)
        if count <= net.num_addresses:
            return RouteSet(f"{role}_{family[-1]}_{count}", family, str(net.network_address), count)
    biggest = RANGES[(role, family)][-1]
    raise ValueError(f"no {family} range for {count} routes (the largest is {biggest})")


def injector_set(family: str, count: int) -> RouteSet:
    """Announced by the injector (client role), one set per size and family.
    Raises ValueError when no range has room for `count` routes."""
    return _make("inj", family, count)


def tor_set(family: str, count: int) -> RouteSet:
    """Announced by the ToR (the reverse direction). Raises ValueError like `injector_set`."""
    return _make("tor", family, count)


def probe_sets(count: int) -> list[RouteSet]:
    """One single-route static protocol per latency probe: 10.150.0.1/32, 10.150.0.2/32, ..."""
    start = int(ipaddress.IPv4Address(PROBE_BASE))
    if start + count > int(ipaddress.ip_network(PROBE_RANGE).broadcast_address):
        raise ValueError(f"{count} probes do not fit in {PROBE_RANGE}")
    return [
        RouteSet(f"probe{i}", "ipv4", str(ipaddress.IPv4Address(start + i)), 1)
        for i in range(count)
    ]


def check_disjoint(sets: Iterable[RouteSet]) -> None:
    """Raise ValueError when two sets share an address or a set leaves the accepted ranges
    (`ACCEPT_V4`, `ACCEPT_V6`): the sizes of a plan must map to distinct ranges."""
    by_family: dict[str, list[RouteSet]] = {}
    for s in sets:
        accept = ACCEPT[s.family]
        if s.first < int(accept.network_address) or s.last > int(accept.broadcast_address):
            raise ValueError(f"route set {s.name} leaves {accept}")
        by_family.setdefault(s.family, []).append(s)
    for family_sets in by_family.values():
        ordered = sorted(family_sets, key=lambda s: s.first)
        for a, b in itertools.pairwise(ordered):
            if b.first <= a.last:
                raise ValueError(f"route sets {a.name} and {b.name} overlap")
