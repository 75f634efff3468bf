"""``node.addresses``: the node's addresses as one list, filled into ``node.address`` (IPv4)
and ``node.address_v6`` (IPv6) by family, so that one config serves single-stack and
dual-stack nodes; and ``node.router_id``, by default the node's IPv4 address. The DaemonSet
sets ``NODE_IPS`` from the downward API's ``status.hostIPs``, which gives a comma-separated
list (``10.0.0.2,2001:db8::2``), primary address first."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from .config_types import empty_is_none

IPAddress = IPv4Address | IPv6Address
_BROADCAST = IPv4Address("255.255.255.255")


def check_node_address(address: IPAddress) -> IPAddress:
    """``address`` when a node may have it as its own (a session's source, a next hop).
    Raises ValueError on the unspecified address, a multicast one, the limited broadcast
    255.255.255.255 or an IPv4-mapped IPv6 address (``::ffff:10.0.0.2``: give the IPv4 one)."""
    if address.is_unspecified:
        raise ValueError(f"{address} is the unspecified address: give the node's own address")
    if address.is_multicast:
        raise ValueError(f"{address} is a multicast address: give the node's own address")
    if address == _BROADCAST:
        raise ValueError(f"{address} is the broadcast address: give the node's own address")
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        raise ValueError(
            f"{address} is an IPv4-mapped IPv6 address: give {address.ipv4_mapped} as the "
            "node's IPv4 address"
        )
    return address


def _check_optional(address: IPAddress | None) -> IPAddress | None:
    return None if address is None else check_node_address(address)


def check_router_id(router_id: IPv4Address) -> IPv4Address:
    """``router_id`` when it can be a BGP Identifier; raises ValueError on 0.0.0.0 (RFC 6286
    §2.1: a non-zero four-octet unsigned integer)."""
    if int(router_id) == 0:
        raise ValueError("0.0.0.0: a BGP identifier must be non-zero (RFC 6286 §2.1)")
    return router_id


# The ``node:`` fields' types: "" as not given, then the checks above.
NodeIPv4 = Annotated[
    IPv4Address | None, BeforeValidator(empty_is_none), AfterValidator(_check_optional)
]
NodeIPv6 = Annotated[
    IPv6Address | None, BeforeValidator(empty_is_none), AfterValidator(_check_optional)
]
RouterId = Annotated[IPv4Address, AfterValidator(check_router_id)]


def parse_addresses(value: object) -> tuple[IPAddress, ...]:
    """``value``, a comma-separated string or a list of strings, as addresses in their order
    (status.hostIPs: the primary first): at most one of each family, none link-local, ``""``,
    ``[]`` and None as none. Raises ValueError naming the bad item (``check_node_address``)."""
    if value is None:  # `addresses: ${NODE_IPS}` unquoted, NODE_IPS empty
        items: list[object] = []
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError("expected addresses, comma-separated ('10.0.0.2,2001:db8::2') or a list")
    found: dict[int, IPAddress] = {}
    for item in items:
        address = _address(item)
        if address is None:
            raise ValueError(f"{item!r} is not an IP address")
        check_node_address(address)
        if address.is_link_local:
            raise ValueError(f"{address} is link-local: give the node's global address")
        if address.version in found:
            other = found[address.version]
            raise ValueError(
                f"two IPv{address.version} addresses ({other}, {address}): give at most one "
                "of each family"
            )
        found[address.version] = address
    return tuple(found.values())


def fill_by_family(node: dict[str, object]) -> dict[str, object]:
    """``node`` (the raw ``node:`` mapping) with ``address`` and ``address_v6`` taken from
    ``addresses`` where they are not given; ``addresses`` is kept, parsed. Raises ValueError
    when ``addresses`` is bad, empty with neither field given (``NODE_IPS`` set empty), or
    names an address of a family that ``address`` or ``address_v6`` gives otherwise."""
    if "addresses" not in node:
        return node
    addresses = parse_addresses(node["addresses"])
    if not addresses and all(node.get(f) in (None, "") for f in ("address", "address_v6")):
        raise ValueError("empty (is NODE_IPS set?)")
    out = {**node, "addresses": addresses}
    for address in addresses:
        field = "address" if address.version == 4 else "address_v6"
        given = node.get(field)
        if given in (None, ""):
            out[field] = address
        elif _address(given) not in (None, address):  # a bad one is reported on its field
            raise ValueError(f"{address} differs from node.{field} {given}: give one of them")
    return out


def _address(value: object) -> IPAddress | None:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def default_router_id(node: dict[str, object]) -> dict[str, object]:
    """``node`` with ``router_id`` set to ``address`` where it is missing (or empty) and
    ``address`` is an IPv4 address: a BGP identifier is four octets (RFC 6286), unique in the
    AS, as a node's IPv4 address is. Raises ValueError on an IPv6-only node, which must give
    one."""
    if node.get("router_id") not in (None, ""):
        return node
    address = _address(node.get("address"))
    if isinstance(address, IPv4Address):
        return {**node, "router_id": address}
    if node.get("address_v6") not in (None, ""):
        raise ValueError(
            "required on a node without an IPv4 address (it defaults to node.address): a BGP "
            "identifier is four octets (RFC 6286); give one unique in the AS"
        )
    return {k: v for k, v in node.items() if k != "router_id"}  # "required" on router_id
