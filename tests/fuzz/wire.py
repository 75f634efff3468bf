"""UPDATE and OPEN bodies built TLV by TLV: framed right (so the decoders get past the lengths)
but filled with values that are often wrong: bad flags, odd lengths, repeats, unknown codes,
NLRI with ADD-PATH identifiers (RFC 7911 §3) that we never negotiate, RFC 9072 OPENs."""

from __future__ import annotations

import random
import struct

from bgpmux.wire import Family
from bgpmux.wire.constants import AttrFlag, AttrType, CapabilityCode

from . import values

_FLAGS: dict[
    int, int
] = {  # the flags each known attribute should carry (optional and transitive bits)
    AttrType.ORIGIN: 0x40,
    AttrType.AS_PATH: 0x40,
    AttrType.NEXT_HOP: 0x40,
    AttrType.MULTI_EXIT_DISC: 0x80,
    AttrType.LOCAL_PREF: 0x40,
    AttrType.ATOMIC_AGGREGATE: 0x40,
    AttrType.AGGREGATOR: 0xC0,
    AttrType.COMMUNITIES: 0xC0,
    AttrType.ORIGINATOR_ID: 0x80,
    AttrType.CLUSTER_LIST: 0x80,
    AttrType.MP_REACH_NLRI: 0x80,
    AttrType.MP_UNREACH_NLRI: 0x80,
    AttrType.AS4_PATH: 0xC0,
    AttrType.AS4_AGGREGATOR: 0xC0,
    AttrType.LARGE_COMMUNITIES: 0xC0,
}
_CODES = (*_FLAGS, 0, 16, 20, 22, 35, 40, 128, 255)


def _nlri(rng: random.Random, afi: int, add_path: bool) -> bytes:
    fam = Family(afi, 1)
    out = bytearray()
    for _ in range(rng.randint(0, 6)):
        if add_path:
            out += rng.randbytes(4)
        out += values.prefix(rng, fam)
    if rng.random() < 0.05:  # a host bit set, or a length past the family's
        out += bytes((rng.randint(0, 255),)) + rng.randbytes(rng.randint(0, 17))
    return bytes(out)


def _as_path(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    for _ in range(rng.randint(0, 3)):
        kind = rng.choice((1, 2, 2, 3, 4, 0, 5))
        count = rng.choice((0, 1, 2, 3, 255)) if rng.random() < 0.1 else rng.randint(1, 6)
        out += bytes((kind, count))
        out += b"".join(values.asn(rng).to_bytes(4, "big")[-size:] for _ in range(count))
    if rng.random() < 0.05:
        out = out[: rng.randint(0, len(out))]
    return bytes(out)


def _value(rng: random.Random, code: int, asn4: bool) -> bytes:
    """A value for ``code``: usually of the right shape, sometimes not."""
    if rng.random() < 0.08:
        return rng.randbytes(rng.choice((0, 1, 2, 3, 4, 5, 7, 8, 12, 13)))
    if code == AttrType.ORIGIN:
        return bytes((rng.choice((0, 1, 2, 3)),))
    if code in (AttrType.AS_PATH, AttrType.AS4_PATH):
        return _as_path(rng, 4 if asn4 or code == AttrType.AS4_PATH else 2)
    if code in (AttrType.NEXT_HOP, AttrType.ORIGINATOR_ID):
        return rng.randbytes(4)
    if code in (AttrType.MULTI_EXIT_DISC, AttrType.LOCAL_PREF):
        return struct.pack("!I", values.u32(rng))
    if code == AttrType.ATOMIC_AGGREGATE:
        return b""
    if code in (AttrType.AGGREGATOR, AttrType.AS4_AGGREGATOR):
        size = 4 if asn4 or code == AttrType.AS4_AGGREGATOR else 2
        return values.asn(rng).to_bytes(4, "big")[-size:] + rng.randbytes(4)
    if code in (AttrType.COMMUNITIES, AttrType.CLUSTER_LIST):
        return rng.randbytes(4 * rng.randint(0, 8))
    if code == AttrType.LARGE_COMMUNITIES:
        return rng.randbytes(12 * rng.randint(0, 4))
    if code == AttrType.MP_REACH_NLRI:
        afi = rng.choice((1, 2, 2, 3))
        hop = rng.choice((4, 16, 32, 8)) if rng.random() < 0.9 else rng.randint(0, 40)
        head = struct.pack("!HBB", afi, rng.choice((1, 1, 2)), hop) + rng.randbytes(hop)
        return head + b"\x00" + _nlri(rng, afi, rng.random() < 0.1)
    if code == AttrType.MP_UNREACH_NLRI:
        afi = rng.choice((1, 2, 2, 3))
        fixed = struct.pack("!HB", afi, rng.choice((1, 1, 2)))
        return fixed + _nlri(rng, afi, rng.random() < 0.1)
    return rng.randbytes(rng.randint(0, 300))


def _tlv(rng: random.Random, code: int, value: bytes) -> bytes:
    flags = _FLAGS.get(code, rng.choice((0xC0, 0xC0, 0x80, 0x40, 0xE0)))
    if rng.random() < 0.08:
        flags ^= 1 << rng.randint(4, 7)
    if rng.random() < 0.1:
        flags |= AttrFlag.PARTIAL
    flags &= ~AttrFlag.EXTENDED_LENGTH
    if len(value) > 255 or rng.random() < 0.15:
        return struct.pack("!BBH", flags | AttrFlag.EXTENDED_LENGTH, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def update_body(rng: random.Random, asn4: bool) -> bytes:
    """An UPDATE body whose three lengths are right, with plausible, often wrong, contents."""
    add_path = rng.random() < 0.1
    withdrawn = _nlri(rng, 1, add_path) if rng.random() < 0.3 else b""
    codes = [c for c in (1, 2, 3) if rng.random() < 0.85]
    codes += [rng.choice(_CODES) for _ in range(rng.randint(0, 5))]
    if rng.random() < 0.3:
        rng.shuffle(codes)
    attrs = b"".join(_tlv(rng, code, _value(rng, code, asn4)) for code in codes)
    nlri = _nlri(rng, 1, add_path) if rng.random() < 0.6 else b""
    return (
        struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri
    )


def _capability(rng: random.Random) -> bytes:
    code = rng.choice(
        (
            CapabilityCode.MULTIPROTOCOL,
            CapabilityCode.ROUTE_REFRESH,
            CapabilityCode.EXTENDED_MESSAGE,
            CapabilityCode.GRACEFUL_RESTART,
            CapabilityCode.FOUR_OCTET_AS,
            CapabilityCode.ADD_PATH,
            CapabilityCode.ENHANCED_ROUTE_REFRESH,
            CapabilityCode.ROUTE_REFRESH_CISCO,
            CapabilityCode.LONG_LIVED_GRACEFUL_RESTART,
            CapabilityCode.FQDN,
            0,
            255,
        )
    )
    sizes = {1: 4, 2: 0, 6: 0, 64: 2 + 4 * rng.randint(0, 3), 65: 4, 69: 4 * rng.randint(0, 3)}
    size = sizes.get(code, rng.randint(0, 20))
    if rng.random() < 0.08:
        size = rng.randint(0, 9)
    return bytes((code, size)) + rng.randbytes(size)


def open_body(rng: random.Random) -> bytes:
    """An OPEN body: version 4 (mostly), capabilities in one or more parameters, sometimes with
    RFC 9072 extended lengths, sometimes another parameter type."""
    extended = rng.random() < 0.15
    params = bytearray()
    for _ in range(rng.randint(0, 3)):
        caps = b"".join(_capability(rng) for _ in range(rng.randint(0, 5)))
        ptype = 2 if rng.random() < 0.92 else rng.choice((1, 3, 255))
        length = struct.pack("!H", len(caps)) if extended else bytes((min(len(caps), 255),))
        params += bytes((ptype,)) + length + caps
    if extended:
        params = bytearray(b"\xff" + struct.pack("!H", len(params)) + params)
        plen = 255
    else:
        plen = len(params) if len(params) <= 255 else 255
    version = 4 if rng.random() < 0.95 else rng.randint(0, 255)
    head = struct.pack(
        "!BHH4sB", version, values.asn(rng) & 0xFFFF, rng.randrange(1 << 16), rng.randbytes(4), plen
    )
    return head + bytes(params)
