"""The route sets the benchmark announces, as BIRD static protocols.

Every set is a run of host routes (/32 or /128) from a base address, inside ranges nothing else
in the lab uses: 10.128.0.0/9 for IPv4 and 2001:db8:a000::/36 for IPv6. A static protocol is
`disabled` at start and toggled with `birdc enable/disable`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ACCEPT_V4 = "10.128.0.0/9 le 32"
ACCEPT_V6 = "2001:db8:a000::/36 le 128"


@dataclass(frozen=True)
class RouteSet:
    name: str  # the static protocol's name
    family: str  # "ipv4" | "ipv6"
    base: str
    count: int

    @property
    def host_len(self) -> int:
        return 32 if self.family == "ipv4" else 128

    def prefixes(self) -> list[str]:
        start = int(ipaddress.ip_address(self.base))
        make = ipaddress.IPv4Address if self.family == "ipv4" else ipaddress.IPv6Address
        return [f"{make(start + i)}/{self.host_len}" for i in range(self.count)]

    def static_protocol(self) -> str:
        routes = "\n".join(f"  route {p} blackhole;" for p in self.prefixes())
        return f"protocol static {self.name} {{\n  {self.family};\n  disabled;\n{routes}\n}}\n"


# Announced by the injector (client role), one set per size and family.
def injector_set(family: str, count: int) -> RouteSet:
    base = {"ipv4": {10_000: "10.140.0.0", 100_000: "10.128.0.0"},
            "ipv6": {10_000: "2001:db8:a100::", 100_000: "2001:db8:a000::"}}  # fmt: skip
    return RouteSet(
        f"inj_{family[-1]}_{count}", family, base[family].get(count, base[family][10_000]), count
    )


# Announced by the ToR (the reverse direction).
def tor_set(family: str, count: int) -> RouteSet:
    base = {"ipv4": {10_000: "10.180.0.0", 100_000: "10.160.0.0"},
            "ipv6": {10_000: "2001:db8:a300::", 100_000: "2001:db8:a200::"}}  # fmt: skip
    return RouteSet(
        f"tor_{family[-1]}_{count}", family, base[family].get(count, base[family][10_000]), count
    )


PROBE_BASE = "10.150.0.1"


def probe_sets(count: int) -> list[RouteSet]:
    """One single-route static protocol per latency probe: 10.150.0.1/32, 10.150.0.2/32, ..."""
    start = int(ipaddress.IPv4Address(PROBE_BASE))
    return [
        RouteSet(f"probe{i}", "ipv4", str(ipaddress.IPv4Address(start + i)), 1)
        for i in range(count)
    ]
