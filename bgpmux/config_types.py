"""The value types of the configuration: how an endpoint (``1.2.3.4:179``), an upstream's
address (an IP address or ``default-gateway``), a CIDR, a prefix rule, a community, an AS
number or a hold time are written, parsed and shown."""

from __future__ import annotations

import enum
import ipaddress
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, Field, PlainSerializer, PlainValidator

from .policy.prefix_list import PrefixRule

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


def _parse_rule(value: object) -> PrefixRule:
    if isinstance(value, PrefixRule):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a string 'prefix [ge N] [le M]'")
    return PrefixRule.parse(value)


PrefixRuleField = Annotated[
    PrefixRule, PlainValidator(_parse_rule), PlainSerializer(str, return_type=str)
]


def _parse_community(value: object) -> int:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 2 or not all(p.isdigit() and int(p) <= 0xFFFF for p in parts):
        raise ValueError(f"{value!r} is not a community 'A:B' with A and B in 0..65535")
    return int(parts[0]) << 16 | int(parts[1])


def _parse_large_community(value: object) -> tuple[int, int, int]:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 0xFFFFFFFF for p in parts):
        raise ValueError(f"{value!r} is not a large community 'A:B:C' with each in 0..4294967295")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _check_hold_time(value: int) -> int:
    if value in (1, 2):
        raise ValueError("hold time must be 0 or 3..65535 seconds")  # RFC 4271 4.2
    return value


def empty_is_none(value: object) -> object:
    return None if value == "" else value


ASN = Annotated[int, Field(ge=1, le=4294967295)]
HoldTime = Annotated[int, Field(ge=0, le=65535), AfterValidator(_check_hold_time)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9._-]+$", max_length=64)]
Community = Annotated[int, PlainValidator(_parse_community)]
LargeCommunity = Annotated[tuple[int, int, int], PlainValidator(_parse_large_community)]
