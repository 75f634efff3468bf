"""A reader of UPDATEs whose NLRI carry path identifiers (RFC 7911 §3), for the tests only:
bgpmux sends them but never receives them, so its codec does not decode them."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Collection
from dataclasses import dataclass, field

from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, Family, Framer
from bgpmux.wire.constants import HEADER_LEN, AttrType, MessageType
from bgpmux.wire.prefix import prefix_to_str

ALL = frozenset({IPV4_UNICAST, IPV6_UNICAST})


@dataclass
class PathUpdate:
    """One UPDATE: (family, path id, prefix text) withdrawn and announced, the next hop of
    the announced ones (text), and the raw attribute types present."""

    withdrawn: list[tuple[Family, int, str]] = field(default_factory=list)
    announced: list[tuple[Family, int, str]] = field(default_factory=list)
    next_hop: str | None = None
    attr_types: list[int] = field(default_factory=list)


NO_PATH_ID = -1  # the path id given to NLRI of a family sent without them


def _nlri(family: Family, data: bytes, ids: Collection[Family]) -> list[tuple[Family, int, str]]:
    out = []
    pos = 0
    skip = 4 if family in ids else 0
    while pos < len(data):
        path_id = struct.unpack_from("!I", data, pos)[0] if skip else NO_PATH_ID
        length = data[pos + skip]
        size = 1 + (length + 7) // 8
        prefix = data[pos + skip : pos + skip + size]
        assert len(prefix) == size, "truncated NLRI"
        out.append((family, path_id, prefix_to_str(family, prefix)))
        pos += skip + size
    return out


def decode_path_update(message: bytes, ids: Collection[Family] = ALL) -> PathUpdate:
    """One whole UPDATE message (header included) whose NLRI of families ``ids`` carry a path
    id (the others get ``NO_PATH_ID``)."""
    assert message[18] == MessageType.UPDATE
    body = message[HEADER_LEN:]
    out = PathUpdate()
    (wlen,) = struct.unpack_from("!H", body, 0)
    out.withdrawn += _nlri(IPV4_UNICAST, body[2 : 2 + wlen], ids)
    (alen,) = struct.unpack_from("!H", body, 2 + wlen)
    attrs = body[4 + wlen : 4 + wlen + alen]
    out.announced += _nlri(IPV4_UNICAST, body[4 + wlen + alen :], ids)
    pos = 0
    while pos < len(attrs):
        flags, kind = attrs[pos], attrs[pos + 1]
        if flags & 0x10:
            (length,) = struct.unpack_from("!H", attrs, pos + 2)
            start = pos + 4
        else:
            length, start = attrs[pos + 2], pos + 3
        value = attrs[start : start + length]
        pos = start + length
        out.attr_types.append(kind)
        if kind == AttrType.NEXT_HOP:
            out.next_hop = str(ipaddress.ip_address(value))
        elif kind == AttrType.MP_REACH_NLRI:
            afi, safi, nh_len = struct.unpack_from("!HBB", value)
            family = Family(afi, safi)
            out.next_hop = str(ipaddress.ip_address(value[4 : 4 + min(nh_len, 16)]))
            out.announced += _nlri(family, value[4 + nh_len + 1 :], ids)
        elif kind == AttrType.MP_UNREACH_NLRI:
            afi, safi = struct.unpack_from("!HB", value)
            out.withdrawn += _nlri(Family(afi, safi), value[3:], ids)
    return out


def path_updates(sent: list[bytes], ids: Collection[Family] = ALL) -> list[PathUpdate]:
    """Every UPDATE in ``sent`` (what a ``FakeLink`` recorded), End-of-RIB markers left out."""
    framer = Framer(65535)
    out = []
    for data in sent:
        for kind, body in framer.feed(data):
            if kind != MessageType.UPDATE:
                continue
            message = struct.pack("!16sHB", b"\xff" * 16, HEADER_LEN + len(body), kind) + body
            update = decode_path_update(message, ids)
            if update.withdrawn or update.announced:
                out.append(update)
    return out


def path_table(sent: list[bytes]) -> dict[tuple[str, int], str | None]:
    """The net effect of ``sent`` on an ADD-PATH receiver: (prefix, path id) -> next hop."""
    table: dict[tuple[str, int], str | None] = {}
    for update in path_updates(sent):
        for _family, pid, prefix in update.withdrawn:
            table.pop((prefix, pid), None)
        for _family, pid, prefix in update.announced:
            table[(prefix, pid)] = update.next_hop
    return table
