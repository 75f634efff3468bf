"""Builds UPDATE messages for many prefixes sharing one attribute set, packed to the maximum size.

This is the export hot path: attributes are encoded once per batch and the NLRI are joined as
they are (prefixes are kept in wire form), so packing costs little more than the copying.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from .attributes import PathAttributes, encode_attributes
from .constants import HEADER_LEN, IPV4_UNICAST, MARKER, AttrFlag, AttrType, Family, MessageType
from .prefix import Prefix

_EMPTY = b"\x00\x00"
MAX_PREFIX_OCTETS = 17  # an IPv6 /128 in NLRI form: length octet and 16 address octets


def _frame(body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", HEADER_LEN + len(body), MessageType.UPDATE) + body


class Packed(NamedTuple):
    """UPDATE messages for one attribute set, and the prefixes that fit in none of them.

    ``messages``: whole BGP messages, each at most the peer's maximum length.
    ``too_large``: prefixes that would not fit in a message of that maximum beside these
    attributes (RFC 4271 §4.3, RFC 8654 §4); the caller withdraws them from the peer instead.
    """

    messages: list[bytes]
    too_large: list[Prefix]


def _chunks(
    prefixes: Sequence[Prefix], room: int, too_large: list[Prefix], path_id: bytes = b""
) -> list[bytes]:
    """Join prefixes into runs of at most ``room`` octets; those longer than ``room`` go to
    ``too_large``. No run is empty. ``path_id``: ADD-PATH NLRI (RFC 7911 §3), every prefix
    preceded by these 4 octets, which count against ``room``; empty for plain NLRI."""
    extra = len(path_id)
    if len(prefixes) == 1 and len(prefixes[0]) + extra <= room:  # a lone route
        return [path_id + prefixes[0]]
    if prefixes and room >= MAX_PREFIX_OCTETS + extra:
        uniform = _uniform_runs(prefixes, room, path_id)
        if uniform is not None:
            return uniform
    out: list[bytes] = []
    run: list[Prefix] = []
    used = 0
    for prefix in prefixes:
        size = len(prefix) + extra
        if size > room:
            too_large.append(prefix)
            continue
        if used + size > room:
            out.append(path_id + path_id.join(run))
            run, used = [], 0
        run.append(prefix)
        used += size
    if run:
        out.append(path_id + path_id.join(run))
    return out


def _uniform_runs(prefixes: Sequence[Prefix], room: int, path_id: bytes) -> list[bytes] | None:
    """``_chunks`` where every prefix has the first one's length (a table of /24s or /32s) and
    fits in ``room``: runs of ``room // size`` prefixes; else None. Prefixes are in wire form,
    so each length octet gives its prefix's size: if every ``size``-th octet of a run is the
    first length octet, and the run is as long as that makes it, every prefix has that size."""
    first = prefixes[0]
    extra = len(path_id)
    size = len(first) + extra
    per = room // size
    mark = first[:1]
    out = []
    for start in range(0, len(prefixes), per):
        run = path_id + path_id.join(prefixes[start : start + per])
        count = len(run) // size
        if len(run) != count * size or run[extra::size] != mark * count:
            return None
        out.append(run)
    return out


def _nlri_runs(
    prefixes: Sequence[Prefix], room: int, too_large: list[Prefix], path_id: int | None
) -> list[bytes]:
    """``_chunks`` with ``path_id`` (None: no ADD-PATH) as its 4 octets."""
    if path_id is None:
        return _chunks(prefixes, room, too_large)
    return _chunks(prefixes, room, too_large, struct.pack("!I", path_id))


_Layout = tuple[bytes, bytes, int]
_LayoutKey = tuple[Family, PathAttributes, bytes, bool, int]
# Layouts by their inputs (all immutable, so an entry never goes stale): a lone route sent with
# an attribute set seen before skips encoding it. Past the limit the cache starts over.
LAYOUT_CACHE_LIMIT = 4096
_layouts: dict[_LayoutKey, _Layout] = {}


def _announce_layout(
    family: Family, attributes: PathAttributes, next_hop: bytes, asn4: bool, max_len: int
) -> _Layout:
    """The encoded path attributes of an announcement, the fixed part of its MP_REACH_NLRI
    (empty for IPv4 with an IPv4 next hop) and the room left for NLRI in one message (may be
    negative; -1 with no attributes when one of them is over 65535 octets)."""
    key = (family, attributes, next_hop, asn4, max_len)
    layout = _layouts.get(key)
    if layout is None:
        layout = _encode_layout(family, attributes, next_hop, asn4, max_len)
        if len(_layouts) >= LAYOUT_CACHE_LIMIT:
            _layouts.clear()
        _layouts[key] = layout
    return layout


def _encode_layout(
    family: Family, attributes: PathAttributes, next_hop: bytes, asn4: bool, max_len: int
) -> _Layout:
    ipv4 = family == IPV4_UNICAST and len(next_hop) == 4
    try:
        attrs = encode_attributes(attributes, asn4, next_hop=next_hop if ipv4 else None)
    except ValueError:  # an attribute longer than any message: nothing can carry these
        return b"", b"", -1
    if ipv4:
        return attrs, b"", max_len - HEADER_LEN - 4 - len(attrs)
    mp_fixed = struct.pack("!HBB", family.afi, family.safi, len(next_hop)) + next_hop + b"\x00"
    return attrs, mp_fixed, max_len - HEADER_LEN - 4 - len(attrs) - 4 - len(mp_fixed)


def nlri_room(
    family: Family,
    attributes: PathAttributes,
    next_hop: bytes,
    asn4: bool = True,
    max_len: int = 4096,
) -> int:
    """Octets left for NLRI in one UPDATE of at most ``max_len`` octets carrying these
    attributes and next hop; a prefix of more octets (``len(prefix)``) cannot be announced
    with them. Negative when the attributes alone do not fit."""
    return _announce_layout(family, attributes, next_hop, asn4, max_len)[2]


def split_too_large(prefixes: Sequence[Prefix], room: int) -> tuple[Sequence[Prefix], list[Prefix]]:
    """``prefixes`` split into those that fit in ``room`` octets of NLRI and those that do not."""
    if room >= MAX_PREFIX_OCTETS:
        return prefixes, []
    fit = [p for p in prefixes if len(p) <= room]
    return fit, [p for p in prefixes if len(p) > room]


def pack_announce(
    family: Family,
    attributes: PathAttributes,
    next_hop: bytes,
    prefixes: Sequence[Prefix],
    asn4: bool = True,
    max_len: int = 4096,
    path_id: int | None = None,
) -> Packed:
    """UPDATE messages announcing ``prefixes`` with one attribute set and next hop, none over
    ``max_len`` octets (4096, or 65535 with extended message, RFC 8654). IPv4 unicast with a
    4-octet next hop uses NEXT_HOP and the NLRI field; anything else MP_REACH_NLRI (RFC 4760 §3).
    ``asn4``: AS numbers in 4 octets (RFC 6793). ``path_id``: the path identifier (0 to
    2**32-1) every NLRI carries, for a session that negotiated ADD-PATH send for ``family``
    (RFC 7911 §3); None for one without."""
    too_large: list[Prefix] = []
    if not prefixes:
        return Packed([], too_large)
    attrs, mp_fixed, room = _announce_layout(family, attributes, next_hop, asn4, max_len)
    if room < (1 if path_id is None else 5):  # not even a default route fits beside these
        return Packed([], list(prefixes))
    if not mp_fixed:
        head = _EMPTY + struct.pack("!H", len(attrs)) + attrs
        if path_id is None:
            runs = _chunks(prefixes, room, too_large)
        else:
            runs = _nlri_runs(prefixes, room, too_large, path_id)
        return Packed([_frame(head + nlri) for nlri in runs], too_large)
    out = []
    for nlri in _nlri_runs(prefixes, room, too_large, path_id):
        value = mp_fixed + nlri
        mp = struct.pack(
            "!BBH", AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH, AttrType.MP_REACH_NLRI, len(value)
        )
        path_attrs = mp + value + attrs
        out.append(_frame(_EMPTY + struct.pack("!H", len(path_attrs)) + path_attrs))
    return Packed(out, too_large)


def pack_withdraw(
    family: Family, prefixes: Sequence[Prefix], max_len: int = 4096, path_id: int | None = None
) -> list[bytes]:
    """UPDATE messages withdrawing ``prefixes``, none over ``max_len`` octets (RFC 4760 §4 for
    families other than IPv4 unicast). A prefix too long for one message is dropped silently.
    ``path_id``: as for ``pack_announce``, the path withdrawn (RFC 7911 §3)."""
    if not prefixes:
        return []
    if family == IPV4_UNICAST:
        room = max_len - HEADER_LEN - 4
        chunks = _nlri_runs(prefixes, room, [], path_id)
        return [_frame(struct.pack("!H", len(w)) + w + _EMPTY) for w in chunks]
    fixed = struct.pack("!HB", family.afi, family.safi)
    room = max_len - HEADER_LEN - 4 - 4 - len(fixed)
    out = []
    for nlri in _nlri_runs(prefixes, room, [], path_id):
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
