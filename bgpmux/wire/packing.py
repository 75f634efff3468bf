"""Builds UPDATE messages for many prefixes sharing one attribute set, packed to the maximum size.

This is the export hot path: attributes are encoded once per batch and the NLRI are joined as
they are (prefixes are kept in wire form), so packing costs little more than the copying.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .attributes import PathAttributes, encode_attributes
from .constants import HEADER_LEN, IPV4_UNICAST, MARKER, AttrFlag, AttrType, Family, MessageType
from .prefix import Prefix

_UPDATE_HEAD = MARKER  # + length + type
_EMPTY = b"\x00\x00"


def _frame(body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", HEADER_LEN + len(body), MessageType.UPDATE) + body


def _chunks(prefixes: Sequence[Prefix], room: int) -> list[bytes]:
    """Join prefixes into runs of at most ``room`` octets."""
    if room <= 0:
        raise ValueError("attributes leave no room for NLRI")
    out: list[bytes] = []
    run: list[Prefix] = []
    used = 0
    for prefix in prefixes:
        size = len(prefix)
        if used + size > room:
            out.append(b"".join(run))
            run, used = [], 0
        run.append(prefix)
        used += size
    if run:
        out.append(b"".join(run))
    return out


def pack_announce(
    family: Family,
    attributes: PathAttributes,
    next_hop: bytes,
    prefixes: Sequence[Prefix],
    asn4: bool = True,
    max_len: int = 4096,
) -> list[bytes]:
    """UPDATE messages announcing ``prefixes`` with one attribute set and next hop."""
    if not prefixes:
        return []
    if family == IPV4_UNICAST and len(next_hop) == 4:
        if attributes.next_hop != next_hop:
            attributes = _with_next_hop(attributes, next_hop)
        attrs = encode_attributes(attributes, asn4)
        head = _EMPTY + struct.pack("!H", len(attrs)) + attrs
        room = max_len - HEADER_LEN - len(head)
        return [_frame(head + nlri) for nlri in _chunks(prefixes, room)]
    if attributes.next_hop is not None:
        attributes = _with_next_hop(attributes, None)
    attrs = encode_attributes(attributes, asn4)
    mp_fixed = struct.pack("!HBB", family.afi, family.safi, len(next_hop)) + next_hop + b"\x00"
    room = max_len - HEADER_LEN - 4 - len(attrs) - 4 - len(mp_fixed)
    out = []
    for nlri in _chunks(prefixes, room):
        value = mp_fixed + nlri
        mp = struct.pack(
            "!BBH", AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH, AttrType.MP_REACH_NLRI, len(value)
        )
        path_attrs = mp + value + attrs
        out.append(_frame(_EMPTY + struct.pack("!H", len(path_attrs)) + path_attrs))
    return out


def pack_withdraw(family: Family, prefixes: Sequence[Prefix], max_len: int = 4096) -> list[bytes]:
    if not prefixes:
        return []
    if family == IPV4_UNICAST:
        room = max_len - HEADER_LEN - 4
        return [_frame(struct.pack("!H", len(w)) + w + _EMPTY) for w in _chunks(prefixes, room)]
    fixed = struct.pack("!HB", family.afi, family.safi)
    room = max_len - HEADER_LEN - 4 - 4 - len(fixed)
    out = []
    for nlri in _chunks(prefixes, room):
        value = fixed + nlri
        mp = struct.pack(
            "!BBH",
            AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH,
            AttrType.MP_UNREACH_NLRI,
            len(value),
        )
        out.append(_frame(_EMPTY + struct.pack("!H", len(mp) + len(value)) + mp + value))
    return out


def pack_end_of_rib(family: Family) -> bytes:
    """RFC 4724 §2: an empty UPDATE (IPv4) or an empty MP_UNREACH_NLRI (other families)."""
    if family == IPV4_UNICAST:
        return _frame(_EMPTY + _EMPTY)
    value = struct.pack("!HB", family.afi, family.safi)
    attr = struct.pack("!BBB", AttrFlag.OPTIONAL, AttrType.MP_UNREACH_NLRI, len(value)) + value
    return _frame(_EMPTY + struct.pack("!H", len(attr)) + attr)


_NH_CACHE: dict[tuple[PathAttributes, bytes | None], PathAttributes] = {}


def _with_next_hop(attributes: PathAttributes, next_hop: bytes | None) -> PathAttributes:
    from dataclasses import replace

    key = (attributes, next_hop)
    cached = _NH_CACHE.get(key)
    if cached is None:
        if len(_NH_CACHE) > 10_000:
            _NH_CACHE.clear()
        cached = _NH_CACHE[key] = replace(attributes, next_hop=next_hop)
    return cached
