"""Random canonical message values, hand-rolled on ``random.Random`` (many times faster than
Hypothesis, and deterministic by seed). Canonical means what ``tests/unit/wire_strategies.py``
spells out: host bits clear, AS_PATH segments non-empty with no two AS_SEQUENCEs side by side
and no other segment over 255 ASes, unknown attributes optional transitive with PARTIAL set,
an OPEN's AS equal to its 4-octet-AS capability. Each value must round-trip exactly."""

from __future__ import annotations

import random

from bgpmux.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    KEEPALIVE,
    Capabilities,
    Family,
    GracefulRestart,
    Message,
    MpReach,
    MpUnreach,
    Notification,
    Open,
    PathAttributes,
    RouteRefresh,
    Update,
)
from bgpmux.wire.attributes import AsPathSegment
from bgpmux.wire.constants import AttrFlag, AttrType, CapabilityCode, SegmentType

PARTIAL_OPTIONAL_TRANSITIVE = int(AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE | AttrFlag.PARTIAL)
KNOWN_ATTRIBUTES = frozenset(int(code) for code in AttrType)
UNKNOWN_ATTRIBUTES = tuple(c for c in range(256) if c not in KNOWN_ATTRIBUTES)
KNOWN_CAPABILITIES = frozenset(
    int(c)
    for c in (
        CapabilityCode.MULTIPROTOCOL,
        CapabilityCode.ROUTE_REFRESH,
        CapabilityCode.ROUTE_REFRESH_CISCO,
        CapabilityCode.ENHANCED_ROUTE_REFRESH,
        CapabilityCode.EXTENDED_MESSAGE,
        CapabilityCode.GRACEFUL_RESTART,
        CapabilityCode.FOUR_OCTET_AS,
        CapabilityCode.ADD_PATH,
    )
)
UNKNOWN_CAPABILITIES = tuple(c for c in range(256) if c not in KNOWN_CAPABILITIES)
SEGMENT_TYPES = tuple(int(t) for t in SegmentType)
_CONFED = (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET)


def family(rng: random.Random) -> Family:
    """Mostly IPv4 or IPv6 unicast; now and then any (AFI, SAFI)."""
    roll = rng.random()
    if roll < 0.45:
        return IPV4_UNICAST
    if roll < 0.9:
        return IPV6_UNICAST
    return Family(rng.randrange(1 << 16), rng.randrange(256))


def prefix(rng: random.Random, fam: Family, plen: int | None = None) -> bytes:
    """A canonical prefix of ``fam`` in wire form; ``plen`` drawn when None."""
    bits = 8 * fam.address_len
    if plen is None:
        plen = rng.choice((0, bits, bits // 2)) if rng.random() < 0.1 else rng.randint(0, bits)
    address = rng.getrandbits(bits) & (((1 << plen) - 1) << (bits - plen))
    return bytes((plen,)) + address.to_bytes(bits // 8, "big")[: (plen + 7) // 8]


def prefixes(rng: random.Random, fam: Family, most: int = 12) -> tuple[bytes, ...]:
    return tuple(prefix(rng, fam) for _ in range(rng.randint(0, most)))


def asn(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.5:
        return rng.randint(1, 0xFFFF)
    if roll < 0.55:
        return rng.choice((0, 23456, 0xFFFF, 0x10000, 0xFFFF_FFFF))
    return rng.randint(0x10000, 0xFFFF_FFFF)


def u32(rng: random.Random) -> int:
    return rng.choice((0, 1, 0xFFFF_FFFF)) if rng.random() < 0.1 else rng.getrandbits(32)


def as_path(
    rng: random.Random, asn4: bool = True, segments: int = 4, longest: int = 12
) -> tuple[AsPathSegment, ...]:
    """Canonical segments, sometimes a sequence past 255 (sent split, joined on receipt). For a
    2-octet session (``asn4`` False) confederation segments only lead and hold 2-octet ASes:
    AS4_PATH cannot carry them (RFC 6793 §3), so nothing else comes back the same."""
    out: list[AsPathSegment] = []
    for _ in range(rng.randint(0, segments)):
        leading = all(kind in _CONFED for kind, _asns in out)
        kinds = [
            t
            for t in SEGMENT_TYPES
            if not (out and out[-1][0] == t == SegmentType.AS_SEQUENCE)
            and (asn4 or leading or t not in _CONFED)
        ]
        kind = rng.choice(kinds)
        most = 255 if kind != SegmentType.AS_SEQUENCE else longest
        if kind == SegmentType.AS_SEQUENCE and rng.random() < 0.05:
            most = 600
        count = rng.randint(1, min(most, longest if rng.random() < 0.9 else most))
        small = not asn4 and kind in _CONFED
        out.append(
            (kind, tuple(rng.randint(1, 0xFFFF) if small else asn(rng) for _ in range(count)))
        )
    return tuple(out)


def other_attributes(
    rng: random.Random, most: int = 3, longest: int = 300
) -> tuple[tuple[int, int, bytes], ...]:
    codes = rng.sample(UNKNOWN_ATTRIBUTES, rng.randint(0, most))
    return tuple(
        (PARTIAL_OPTIONAL_TRANSITIVE, code, rng.randbytes(rng.randint(0, longest)))
        for code in codes
    )


def path_attributes(
    rng: random.Random, asn4: bool = True, next_hop: bool | None = None
) -> PathAttributes:
    """``next_hop``: True forces an IPv4 NEXT_HOP, False forbids it, None draws it."""
    has_next_hop = rng.random() < 0.5 if next_hop is None else next_hop
    maybe = rng.random
    return PathAttributes(
        origin=rng.randint(0, 2),
        as_path=as_path(rng, asn4),
        next_hop=rng.randbytes(4) if has_next_hop else None,
        med=u32(rng) if maybe() < 0.4 else None,
        local_pref=u32(rng) if maybe() < 0.4 else None,
        atomic_aggregate=maybe() < 0.2,
        aggregator=(asn(rng), rng.randbytes(4)) if maybe() < 0.2 else None,
        communities=tuple(u32(rng) for _ in range(rng.randint(0, 10))) if maybe() < 0.5 else (),
        large_communities=tuple((u32(rng), u32(rng), u32(rng)) for _ in range(rng.randint(0, 4)))
        if maybe() < 0.3
        else (),
        other=other_attributes(rng) if maybe() < 0.2 else (),
    )


def next_hop_for(rng: random.Random, fam: Family) -> bytes:
    """A next hop of a length the decoder takes: one address, or two (IPv6 global+link-local)."""
    return rng.randbytes(fam.address_len * rng.choice((1, 1, 1, 2)))


def update(rng: random.Random, asn4: bool = True) -> Update:
    """Any well-formed UPDATE: attributes present exactly when something is announced (or drawn
    anyway), and IPv4 NLRI with a NEXT_HOP."""
    if rng.random() < 0.05:
        return rng.choice((Update(), Update(mp_unreach=MpUnreach(family(rng), ()))))
    withdrawn = prefixes(rng, IPV4_UNICAST) if rng.random() < 0.4 else ()
    nlri = prefixes(rng, IPV4_UNICAST) if rng.random() < 0.5 else ()
    mp_reach = None
    if rng.random() < 0.4:
        fam = family(rng)
        mp_reach = MpReach(fam, next_hop_for(rng, fam), prefixes(rng, fam))
    mp_unreach = None
    if rng.random() < 0.3:
        fam = family(rng)
        mp_unreach = MpUnreach(fam, prefixes(rng, fam))
    announcing = bool(nlri) or (mp_reach is not None and bool(mp_reach.nlri))
    attributes = None
    if announcing or rng.random() < 0.5:
        attributes = path_attributes(rng, asn4, next_hop=True if nlri else None)
    return Update(withdrawn, attributes, nlri, mp_reach, mp_unreach)


def capabilities(rng: random.Random, four_octet_as: int | None) -> Capabilities:
    maybe = rng.random
    restart = None
    if maybe() < 0.5:
        restart = GracefulRestart(
            restart_time=rng.randrange(0x1000),
            restarting=maybe() < 0.5,
            notification=maybe() < 0.5,
            families=tuple((family(rng), maybe() < 0.5) for _ in range(rng.randint(0, 3))),
        )
    return Capabilities(
        multiprotocol=tuple(family(rng) for _ in range(rng.randint(0, 3))),
        route_refresh=maybe() < 0.5,
        enhanced_route_refresh=maybe() < 0.3,
        four_octet_as=four_octet_as,
        graceful_restart=restart,
        add_path=tuple((family(rng), rng.randint(0, 3)) for _ in range(rng.randint(0, 2))),
        extended_message=maybe() < 0.4,
        unknown=tuple(
            (rng.choice(UNKNOWN_CAPABILITIES), rng.randbytes(rng.randint(0, 12)))
            for _ in range(rng.randint(0, 2))
        ),
    )


def open_message(rng: random.Random) -> Open:
    number = asn(rng)
    four_octet = number if number > 0xFFFF or rng.random() < 0.6 else None
    router_id = ".".join(str(b) for b in rng.randbytes(4))
    return Open(number, rng.randrange(1 << 16), router_id, capabilities(rng, four_octet))


def message(rng: random.Random, asn4: bool = True) -> Message:
    """Any message, UPDATEs most often."""
    roll = rng.random()
    if roll < 0.6:
        return update(rng, asn4)
    if roll < 0.8:
        return open_message(rng)
    if roll < 0.9:
        return Notification(
            rng.randrange(256), rng.randrange(256), rng.randbytes(rng.randint(0, 40))
        )
    if roll < 0.95:
        return RouteRefresh(family(rng), rng.randrange(256))
    return KEEPALIVE
