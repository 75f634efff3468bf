"""``node.addresses``: the node's addresses as one list, filled into ``node.address`` (IPv4)
and ``node.address_v6`` (IPv6) by family, so that one config serves single-stack and
dual-stack nodes; and ``node.router_id``, by default the node's IPv4 address. The DaemonSet
sets ``NODE_IPS`` from the downward API's ``status.hostIPs``, which gives a comma-separated
list (``10.0.0.2,2001:db8::2``), primary address first."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address


def parse_addresses(value: object) -> tuple[IPAddress, ...]:
    """``value``, a comma-separated string or a list of strings, as addresses in their order
    (status.hostIPs: the primary first): at most one of each family, none link-local, ``""``
    and ``[]`` as none. Raises ValueError naming the bad item."""
    if isinstance(value, str):
        items: list[object] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError("expected addresses, comma-separated ('10.0.0.2,2001:db8::2') or a list")
    found: dict[int, IPAddress] = {}
    for item in items:
        address = _address(item)
        if address is None:
            raise ValueError(f"{item!r} is not an IP address")
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
    when ``addresses`` is bad, or names an address of a family that ``address`` or
    ``address_v6`` gives otherwise."""
    if "addresses" not in node:
        return node
    addresses = parse_addresses(node["addresses"])
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
