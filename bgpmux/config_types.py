"""The value types of the configuration that are addresses: how an endpoint
(``1.2.3.4:179``), an upstream's address (an IP address or ``default-gateway``) and a CIDR
are written, parsed and shown."""

from __future__ import annotations

import enum
import ipaddress
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, NamedTuple

from pydantic import PlainSerializer, PlainValidator

IPAddress = IPv4Address | IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Endpoint(NamedTuple):
    """An IP address and TCP port, written ``1.2.3.4:179`` or ``[2001:db8::1]:179``."""

    host: IPAddress
    port: int

    def __str__(self) -> str:
        return (
            f"[{self.host}]:{self.port}" if self.host.version == 6 else f"{self.host}:{self.port}"
        )


def parse_endpoint(value: object) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a string 'host:port'")
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{value!r} is not 'host:port' (IPv6 as '[addr]:port')")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is not in 1..65535")
    return Endpoint(addr, int(port))


EndpointField = Annotated[
    Endpoint, PlainValidator(parse_endpoint), PlainSerializer(str, return_type=str)
]


class Gateway(enum.StrEnum):
    """An upstream address written as the next hop of this node's default route, resolved at
    start and on reload (``bgpmux.placement``)."""

    IPV4 = "default-gateway"
    IPV6 = "default-gateway6"

    @property
    def version(self) -> int:
        """The IP version of the default route it names: 4 or 6."""
        return 6 if self is Gateway.IPV6 else 4


def _parse_upstream_address(value: object) -> IPAddress | Gateway:
    if isinstance(value, IPv4Address | IPv6Address | Gateway):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an IP address, default-gateway or default-gateway6")
    if value in Gateway.__members__.values():
        return Gateway(value)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address, default-gateway or default-gateway6"
        ) from None


UpstreamAddress = Annotated[
    IPAddress | Gateway,
    PlainValidator(_parse_upstream_address),
    PlainSerializer(str, return_type=str),
]


def _parse_cidr(value: object) -> IPNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"{value!r} is not a CIDR like 10.0.1.0/24 or 2001:db8:1::/64")
    try:
        return ipaddress.ip_network(value)
    except ValueError as e:
        raise ValueError(f"{value!r}: {e}") from None


CIDR = Annotated[IPNetwork, PlainValidator(_parse_cidr), PlainSerializer(str, return_type=str)]
