"""NLRI prefixes, decoded in bulk.

A prefix is kept as its wire form, ``bytes([length]) + significant octets`` with host bits
cleared: hashable, compact, and re-encoded by concatenation. Its family is known from context
(the RIB is per family), so the same bytes can mean an IPv4 or an IPv6 prefix.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from functools import lru_cache

from .constants import AFI, Family
from .errors import UpdateSubcode, update_error

Prefix = bytes
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def decode_prefixes(
    data: bytes, family: Family, subcode: int = UpdateSubcode.INVALID_NETWORK_FIELD
) -> tuple[Prefix, ...]:
    """Split a run of NLRI (RFC 4271 §4.3, RFC 4760 §5) into wire-form prefixes, host bits
    cleared. A length over the family's maximum, or a prefix that overruns ``data``, raises
    ``BGPError``: UPDATE Message Error with ``subcode``."""
    max_bits = 32 if family.afi == AFI.IPV4 else 128
    if data:
        plen = data[0]
        spare = plen & 7
        if (  # a lone prefix, host bits clear: the NLRI of a single route
            len(data) == 1 + ((plen + 7) >> 3)
            and plen <= max_bits
            and not (spare and data[-1] & (0xFF >> spare))
        ):
            return (data,)
        same = _same_length(data, max_bits)
        if same is not None:
            return same
    out: list[Prefix] = []
    append = out.append
    pos, end = 0, len(data)
    while pos < end:
        plen = data[pos]
        if plen > max_bits:
            raise update_error(UpdateSubcode(subcode), reason=f"prefix length {plen} in {family}")
        stop = pos + 1 + ((plen + 7) >> 3)
        if stop > end:
            raise update_error(
                UpdateSubcode(subcode), reason=f"prefix overruns the NLRI in {family}"
            )
        spare = plen & 7
        if spare and data[stop - 1] & (0xFF >> spare):
            masked = bytearray(data[pos:stop])
            masked[-1] &= (0xFF << (8 - spare)) & 0xFF
            append(bytes(masked))
        else:
            append(data[pos:stop])
        pos = stop
    return tuple(out)


def _host_bits_table(spare: int) -> bytes:
    """A ``bytes.translate`` table keeping only the host bits of a last octet with ``spare``
    significant bits."""
    return bytes(b & (0xFF >> spare) for b in range(256))


_HOST_BITS = {spare: _host_bits_table(spare) for spare in range(1, 8)}


def _same_length(data: bytes, max_bits: int) -> tuple[Prefix, ...] | None:
    """``decode_prefixes`` of ``data`` where every prefix has the first one's length (a
    routing table's bulk: runs of /24s or /32s), with no host bits set; else None, and the
    caller takes the general path (which also raises the errors). The checks run over whole
    strided slices, so the only per-prefix work is one slice each."""
    plen = data[0]
    if plen > max_bits:
        return None
    step = 1 + ((plen + 7) >> 3)
    count, rest = divmod(len(data), step)
    if rest or data[::step] != bytes((plen,)) * count:
        return None
    spare = plen & 7
    if spare and data[step - 1 :: step].translate(_HOST_BITS[spare]) != bytes(count):
        return None
    if count <= _STRUCT_MAX:
        return _splitter(step, count).unpack(data)
    return tuple([data[pos : pos + step] for pos in range(0, len(data), step)])


# A struct of ``count`` fields of ``size`` octets cuts a run in C; about 35 bytes a field, so
# only runs of up to a 4096-octet UPDATE's worth, and a few dozen shapes, are kept.
_STRUCT_MAX = 1024


@lru_cache(maxsize=64)
def _splitter(size: int, count: int) -> struct.Struct:
    return struct.Struct(f"{size}s" * count)


def prefix_from_network(network: IPNetwork) -> Prefix:
    """The wire form of an ``ipaddress`` network."""
    plen = network.prefixlen
    return bytes((plen,)) + network.network_address.packed[: (plen + 7) >> 3]


def prefix_from_str(text: str) -> tuple[Family, Prefix]:
    """``"10.0.0.0/8"`` or ``"2001:db8::/32"`` to (IPv4 or IPv6 unicast, wire form), host bits
    cleared. Raises ValueError on text that is not an address or prefix."""
    from .constants import IPV4_UNICAST, IPV6_UNICAST

    net = ipaddress.ip_network(text, strict=False)
    return (IPV4_UNICAST if net.version == 4 else IPV6_UNICAST), prefix_from_network(net)


def prefix_from_text(family: Family, text: str) -> Prefix:
    """``"10.1.0.0/16"`` in ``family`` to wire form, without building an ``ip_network``.

    Raises ValueError for a bad or out-of-range length, OSError (from ``inet_pton``) for an
    address that is not of that family.
    """
    address, _, length = text.partition("/")
    packed = socket.inet_pton(
        socket.AF_INET if family.afi == AFI.IPV4 else socket.AF_INET6, address
    )
    plen = int(length) if length else len(packed) * 8
    if not 0 <= plen <= len(packed) * 8:
        raise ValueError(f"prefix length {plen} in {text!r}")
    significant = bytearray(packed[: (plen + 7) >> 3])
    if plen & 7:
        significant[-1] &= (0xFF << (8 - (plen & 7))) & 0xFF
    return bytes((plen,)) + bytes(significant)


def prefix_to_network(family: Family, prefix: Prefix) -> IPNetwork:
    """The ``ipaddress`` network of ``prefix`` (IPv4 for AFI 1, else IPv6). Raises ValueError
    if host bits are set, which prefixes decoded or built here never have."""
    size = family.address_len
    packed = prefix[1:].ljust(size, b"\x00")
    if size == 4:
        return ipaddress.IPv4Network((packed, prefix[0]))
    return ipaddress.IPv6Network((packed, prefix[0]))


def prefix_to_str(family: Family, prefix: Prefix) -> str:
    """``prefix`` of ``family`` as text, e.g. ``"10.0.0.0/8"``."""
    return str(prefix_to_network(family, prefix))


def prefix_to_int(family: Family, prefix: Prefix) -> tuple[int, int]:
    """(address as an integer, prefix length): what policy compares."""
    size = family.address_len
    return int.from_bytes(prefix[1:].ljust(size, b"\x00"), "big"), prefix[0]


class PrefixText:
    """A prefix that becomes text (``prefix_to_str``) only when it is formatted: for log lines
    that may be suppressed."""

    __slots__ = ("family", "prefix")

    def __init__(self, family: Family, prefix: Prefix) -> None:
        self.family, self.prefix = family, prefix

    def __str__(self) -> str:
        return prefix_to_str(self.family, self.prefix)
