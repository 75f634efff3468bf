"""Path attributes (RFC 4271 §4.3, 1997, 4760, 6793, 8092) and their codec.

Decoding is interned: the attribute bytes of an UPDATE (less MP_REACH/MP_UNREACH) map to one
shared ``PathAttributes``, so the thousands of prefixes a speaker sends with one attribute set
cost one object. Errors follow RFC 7606: an error that costs only one attribute drops it with a
note (attribute-discard); one that makes the attribute set unusable raises ``TreatAsWithdraw``.
``BGPError`` (the NOTIFICATION) is raised only when the attribute list cannot be parsed, and for
an unrecognized well-known attribute (RFC 4271 §6.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .constants import AS_TRANS, AttrFlag, AttrType, Origin, SegmentType
from .errors import UpdateSubcode, update_error

AsPathSegment = tuple[int, tuple[int, ...]]
LargeCommunity = tuple[int, int, int]

_OPT = AttrFlag.OPTIONAL
_TRANS = AttrFlag.TRANSITIVE
_EXPECTED_FLAGS: dict[int, int] = {
    AttrType.ORIGIN: _TRANS,
    AttrType.AS_PATH: _TRANS,
    AttrType.NEXT_HOP: _TRANS,
    AttrType.MULTI_EXIT_DISC: _OPT,
    AttrType.LOCAL_PREF: _TRANS,
    AttrType.ATOMIC_AGGREGATE: _TRANS,
    AttrType.AGGREGATOR: _OPT | _TRANS,
    AttrType.COMMUNITIES: _OPT | _TRANS,
    AttrType.MP_REACH_NLRI: _OPT,
    AttrType.MP_UNREACH_NLRI: _OPT,
    AttrType.AS4_PATH: _OPT | _TRANS,
    AttrType.AS4_AGGREGATOR: _OPT | _TRANS,
    AttrType.LARGE_COMMUNITIES: _OPT | _TRANS,
}
# Attributes whose flag errors cost only the attribute: RFC 7606 §7.6, §7.7; RFC 6793 §6.
_DISCARD_ON_FLAGS = {
    AttrType.ATOMIC_AGGREGATE,
    AttrType.AGGREGATOR,
    AttrType.AS4_PATH,
    AttrType.AS4_AGGREGATOR,
}
# The segments AS4_PATH may carry, and that count in path length (RFC 6793 §3, RFC 5065).
_PLAIN_SEGMENTS = (SegmentType.AS_SET, SegmentType.AS_SEQUENCE)
# Known attributes we drop on receipt: not ours to propagate (we are no route reflector).
_DROPPED = {AttrType.ORIGINATOR_ID, AttrType.CLUSTER_LIST}


class TreatAsWithdraw(Exception):
    """RFC 7606: the attribute set is unusable; the UPDATE's NLRI are to be withdrawn."""


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """One decoded path attribute set (RFC 4271 §5), immutable and hashable; NLRI and MP next hops
    travel outside it. ``as_path``: (segment type, AS numbers) pairs, AS4_PATH already merged
    in; ``med``, ``local_pref`` and each community are 32-bit integers; a large community
    (RFC 8092) is (global administrator, local data 1, local data 2)."""

    origin: int = Origin.IGP
    as_path: tuple[AsPathSegment, ...] = ()
    next_hop: bytes | None = None  # the IPv4 NEXT_HOP attribute; MP next hops travel with MP_REACH
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, bytes] | None = None  # (AS, IPv4 address)
    communities: tuple[int, ...] = ()
    large_communities: tuple[LargeCommunity, ...] = ()
    # Unknown optional transitive attributes, as (flags, type, value). We do not recognize them,
    # so they are passed on with PARTIAL set (RFC 4271 §5): decoding records the flags that way
    # already, so a decoded value re-encodes to bytes that decode to the same value.
    other: tuple[tuple[int, int, bytes], ...] = field(default=())
    # The hash, computed once: a route's set is hashed several times on its way (path
    # interning, export grouping, packing). 0: not yet (a real 0 is recomputed, still right).
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        cached = self._hash
        if cached:
            return cached
        cached = hash(
            (
                self.origin,
                self.as_path,
                self.next_hop,
                self.med,
                self.local_pref,
                self.atomic_aggregate,
                self.aggregator,
                self.communities,
                self.large_communities,
                self.other,
            )
        )
        object.__setattr__(self, "_hash", cached)
        return cached

    def as_path_flat(self) -> tuple[int, ...]:
        """Every AS number of the path in order, whatever its segment type."""
        return tuple(asn for _kind, asns in self.as_path for asn in asns)

    def as_path_length(self) -> int:
        """Path length for the decision process: an AS_SET counts as one (RFC 4271 §9.1.2.2),
        confederation segments as none (RFC 5065)."""
        total = 0
        for kind, asns in self.as_path:
            if kind == SegmentType.AS_SEQUENCE:
                total += len(asns)
            elif kind == SegmentType.AS_SET:
                total += 1
        return total


# ---------------------------------------------------------------------------------- encode


def _attr(flags: int, code: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"attribute {code} of {len(value)} octets does not fit any UPDATE")
    if len(value) > 255:
        return struct.pack("!BBH", flags | AttrFlag.EXTENDED_LENGTH, code, len(value)) + value
    return struct.pack("!BBB", flags & ~AttrFlag.EXTENDED_LENGTH, code, len(value)) + value


def encode_as_path(segments: tuple[AsPathSegment, ...], asn4: bool) -> bytes:
    """The AS_PATH value (RFC 4271 §4.3): 4-octet ASes with ``asn4``, else 2-octet with AS_TRANS
    for larger ones (RFC 6793 §4.2.2). Segments over 255 ASes are split; empty ones left out."""
    out = bytearray()
    fmt = "!I" if asn4 else "!H"
    for kind, asns in segments:
        # Long segments are split in 255s; an empty one is not sent (a receiver must reject it).
        for start in range(0, len(asns), 255):
            chunk = asns[start : start + 255]
            out += bytes((kind, len(chunk)))
            for asn in chunk:
                out += struct.pack(fmt, asn if asn4 or asn <= 0xFFFF else AS_TRANS)
    return bytes(out)


def _as4_path(attrs: PathAttributes) -> tuple[AsPathSegment, ...] | None:
    """The AS4_PATH to send beside a 2-octet AS_PATH, or None when no AS needs it: the path
    less its confederation segments, which AS4_PATH must not carry (RFC 6793 §3)."""
    plain = tuple(seg for seg in attrs.as_path if seg[0] in _PLAIN_SEGMENTS)
    return plain if any(asn > 0xFFFF for _kind, asns in plain for asn in asns) else None


_AS_GIVEN = b"as given"  # encode_attributes: the NEXT_HOP of ``attrs`` itself


def encode_attributes(
    attrs: PathAttributes, asn4: bool = True, mp: bytes = b"", next_hop: bytes | None = _AS_GIVEN
) -> bytes:
    """The attribute list of an UPDATE (RFC 4271 §4.3, §5): the known attributes in type-code
    order, with ``mp`` (encoded MP_REACH and/or MP_UNREACH_NLRI) in its place, then those of
    ``attrs.other``, marked PARTIAL. ``next_hop``, when given, replaces the NEXT_HOP of ``attrs``
    (None: no NEXT_HOP attribute). With ``asn4`` False, 2-octet AS numbers with AS4_PATH and
    AS4_AGGREGATOR as RFC 6793 §4.2.2 asks. Raises ValueError for an attribute over 65535
    octets (its length field has two)."""
    if next_hop is _AS_GIVEN:
        next_hop = attrs.next_hop
    out = [_attr(_TRANS, AttrType.ORIGIN, bytes((attrs.origin,)))]
    out.append(_attr(_TRANS, AttrType.AS_PATH, encode_as_path(attrs.as_path, asn4)))
    if next_hop is not None:
        out.append(_attr(_TRANS, AttrType.NEXT_HOP, next_hop))
    if attrs.med is not None:
        out.append(_attr(_OPT, AttrType.MULTI_EXIT_DISC, struct.pack("!I", attrs.med)))
    if attrs.local_pref is not None:
        out.append(_attr(_TRANS, AttrType.LOCAL_PREF, struct.pack("!I", attrs.local_pref)))
    if attrs.atomic_aggregate:
        out.append(_attr(_TRANS, AttrType.ATOMIC_AGGREGATE, b""))
    if attrs.aggregator is not None:
        agg_as, agg_ip = attrs.aggregator
        if asn4:
            value = struct.pack("!I", agg_as) + agg_ip
        else:
            value = struct.pack("!H", agg_as if agg_as <= 0xFFFF else AS_TRANS) + agg_ip
        out.append(_attr(_OPT | _TRANS, AttrType.AGGREGATOR, value))
    if attrs.communities:
        value = struct.pack(f"!{len(attrs.communities)}I", *attrs.communities)
        out.append(_attr(_OPT | _TRANS, AttrType.COMMUNITIES, value))
    out.append(mp)
    as4_path = None if asn4 else _as4_path(attrs)
    if as4_path is not None:
        out.append(_attr(_OPT | _TRANS, AttrType.AS4_PATH, encode_as_path(as4_path, True)))
    if not asn4 and attrs.aggregator is not None and attrs.aggregator[0] > 0xFFFF:
        value = struct.pack("!I", attrs.aggregator[0]) + attrs.aggregator[1]
        out.append(_attr(_OPT | _TRANS, AttrType.AS4_AGGREGATOR, value))
    if attrs.large_communities:
        value = b"".join(struct.pack("!III", *lc) for lc in attrs.large_communities)
        out.append(_attr(_OPT | _TRANS, AttrType.LARGE_COMMUNITIES, value))
    for flags, code, value in attrs.other:
        out.append(_attr(flags | AttrFlag.PARTIAL, code, value))
    return b"".join(out)


# ---------------------------------------------------------------------------------- decode


_MALFORMED_LIST = UpdateSubcode.MALFORMED_ATTRIBUTE_LIST


def split_attributes(data: bytes) -> list[tuple[int, int, bytes]]:
    """Walk the attribute TLVs, as (flags, type code, value). A list whose framing breaks is
    unparseable: ``BGPError`` (the NOTIFICATION).

    RFC 7606 §4 calls an attribute header cut short, or a length running past the Total Path
    Attribute Length, a framing error of the attribute list. Treat-as-withdraw needs every
    MP_REACH/MP_UNREACH to be parsed (§3 b, §5), and one may hide behind the break, so this is
    a session reset with Malformed Attribute List (RFC 4271 §6.3: Attribute Length Error is for
    a length that conflicts with what the attribute's type requires).
    """
    out: list[tuple[int, int, bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + 3 > end:
            raise update_error(_MALFORMED_LIST, reason="truncated attribute header")
        flags, code = data[pos], data[pos + 1]
        if flags & AttrFlag.EXTENDED_LENGTH:
            if pos + 4 > end:
                raise update_error(_MALFORMED_LIST, reason="truncated attribute header")
            length = (data[pos + 2] << 8) | data[pos + 3]
            start = pos + 4
        else:
            length = data[pos + 2]
            start = pos + 3
        stop = start + length
        if stop > end:
            raise update_error(
                _MALFORMED_LIST,
                reason=f"attribute {code} length {length} overruns the attribute list",
            )
        out.append((flags, code, data[start:stop]))
        pos = stop
    return out


def _decode_as_path(value: bytes, asn4: bool) -> tuple[AsPathSegment, ...]:
    size = 4 if asn4 else 2
    fmt = "!I" if asn4 else "!H"
    segments: list[AsPathSegment] = []
    pos, end = 0, len(value)
    while pos < end:
        if pos + 2 > end:
            raise TreatAsWithdraw("AS_PATH segment header truncated")
        kind, count = value[pos], value[pos + 1]
        if kind not in (1, 2, 3, 4) or count == 0:
            raise TreatAsWithdraw(f"AS_PATH segment type {kind} count {count}")
        stop = pos + 2 + count * size
        if stop > end:
            raise TreatAsWithdraw("AS_PATH segment overruns the attribute")
        asns = tuple(a for (a,) in struct.iter_unpack(fmt, value[pos + 2 : stop]))
        if segments and segments[-1][0] == kind == SegmentType.AS_SEQUENCE:
            segments[-1] = (kind, segments[-1][1] + asns)  # long sequences come split in 255s
        else:
            segments.append((kind, asns))
        pos = stop
    return tuple(segments)


def _count(segments: tuple[AsPathSegment, ...]) -> int:
    return sum(
        len(a) if k == SegmentType.AS_SEQUENCE else 1 for k, a in segments if k in _PLAIN_SEGMENTS
    )


def merge_as4_path(
    as_path: tuple[AsPathSegment, ...], as4_path: tuple[AsPathSegment, ...]
) -> tuple[AsPathSegment, ...]:
    """RFC 6793 §4.2.3: keep the leading ASes of AS_PATH that AS4_PATH does not cover, then
    AS4_PATH. When AS4_PATH counts more ASes than AS_PATH, AS_PATH alone is returned."""
    keep = _count(as_path) - _count(as4_path)
    if keep < 0:
        return as_path
    head: list[AsPathSegment] = []
    for kind, asns in as_path:
        if kind not in _PLAIN_SEGMENTS:
            # AS4_PATH never carries confederation segments: one that leads AS_PATH, or is next
            # to a segment kept (every one before it was), is kept too (§4.2.3).
            head.append((kind, asns))
            continue
        if keep <= 0:
            break
        if kind == SegmentType.AS_SEQUENCE:
            head.append((kind, asns[:keep]))
            keep -= min(keep, len(asns))
        else:
            head.append((kind, asns))
            keep -= 1
    merged = list(head)
    for seg in as4_path:
        if merged and merged[-1][0] == seg[0] == SegmentType.AS_SEQUENCE:
            merged[-1] = (seg[0], merged[-1][1] + seg[1])
        else:
            merged.append(seg)
    return tuple(merged)


def _u32(value: bytes, what: str) -> int:
    if len(value) != 4:
        raise TreatAsWithdraw(f"{what} length {len(value)}")
    return int.from_bytes(value, "big")


def decode_attributes(
    tlvs: list[tuple[int, int, bytes]], asn4: bool, notes: list[str]
) -> PathAttributes:
    """Build the attribute value from (flags, type code, value) TLVs, MP attributes already
    removed; ``asn4``: AS numbers of AS_PATH and AGGREGATOR are 4 octets (RFC 6793).

    Raises ``TreatAsWithdraw`` (RFC 7606 §2), or ``BGPError`` for an unrecognized well-known
    attribute. Errors that only cost an attribute, and repeats of an attribute (RFC 7606 §3 g),
    are appended to ``notes`` and the attribute is dropped (RFC 7606 attribute-discard).
    """
    seen: set[int] = set()
    origin: int | None = None
    as_path: tuple[AsPathSegment, ...] | None = None
    as4_path: tuple[AsPathSegment, ...] | None = None
    next_hop: bytes | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic = False
    aggregator: tuple[int, bytes] | None = None
    as4_aggregator: tuple[int, bytes] | None = None
    communities: tuple[int, ...] = ()
    large: tuple[LargeCommunity, ...] = ()
    other: list[tuple[int, int, bytes]] = []
    for flags, code, value in tlvs:
        if code in seen:
            notes.append(f"duplicate attribute {code} discarded")
            continue
        seen.add(code)
        expected = _EXPECTED_FLAGS.get(code)
        if expected is not None and (flags & (_OPT | _TRANS)) != expected:
            if code in _DISCARD_ON_FLAGS:
                notes.append(f"attribute {code} with flags {flags:#x} discarded")
                continue
            raise TreatAsWithdraw(f"attribute {code} has flags {flags:#x}")
        if code == AttrType.ORIGIN:
            if len(value) != 1 or value[0] > 2:
                raise TreatAsWithdraw(f"ORIGIN {value.hex()}")
            origin = value[0]
        elif code == AttrType.AS_PATH:
            as_path = _decode_as_path(value, asn4)
        elif code == AttrType.NEXT_HOP:
            if len(value) != 4:
                raise TreatAsWithdraw(f"NEXT_HOP length {len(value)}")
            next_hop = value
        elif code == AttrType.MULTI_EXIT_DISC:
            med = _u32(value, "MULTI_EXIT_DISC")
        elif code == AttrType.LOCAL_PREF:
            local_pref = _u32(value, "LOCAL_PREF")
        elif code == AttrType.ATOMIC_AGGREGATE:
            if value:
                notes.append("ATOMIC_AGGREGATE with a value discarded")
                continue
            atomic = True
        elif code == AttrType.AGGREGATOR:
            if len(value) != (8 if asn4 else 6):
                notes.append(f"AGGREGATOR length {len(value)} discarded")
                continue
            aggregator = (int.from_bytes(value[:-4], "big"), value[-4:])
        elif code == AttrType.AS4_AGGREGATOR:
            if len(value) != 8:
                notes.append(f"AS4_AGGREGATOR length {len(value)} discarded")
                continue
            if not asn4:
                as4_aggregator = (int.from_bytes(value[:4], "big"), value[4:])
        elif code == AttrType.COMMUNITIES:
            if not value or len(value) % 4:
                raise TreatAsWithdraw(f"COMMUNITIES length {len(value)}")
            communities = tuple(c for (c,) in struct.iter_unpack("!I", value))
        elif code == AttrType.LARGE_COMMUNITIES:
            if not value or len(value) % 12:
                raise TreatAsWithdraw(f"LARGE_COMMUNITIES length {len(value)}")
            large = tuple(struct.iter_unpack("!III", value))
        elif code == AttrType.AS4_PATH:
            if not asn4:  # a 4-octet speaker must ignore AS4_PATH (RFC 6793 §4.1)
                try:
                    as4_path = _decode_as_path(value, True)
                except TreatAsWithdraw:
                    notes.append("malformed AS4_PATH discarded")
                    continue
                if any(kind not in _PLAIN_SEGMENTS for kind, _asns in as4_path):
                    # RFC 6793 §6: confederation segments in AS4_PATH make it malformed.
                    notes.append("AS4_PATH with confederation segments discarded")
                    as4_path = None
        elif code in _DROPPED:
            continue
        elif not flags & _OPT:
            raise update_error(
                UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                data=_attr(flags, code, value),
                reason=f"unrecognized well-known attribute {code}",
            )
        elif flags & _TRANS:
            # We do not recognize it either: it travels on marked PARTIAL (RFC 4271 §5).
            other.append((_OPT | _TRANS | AttrFlag.PARTIAL, code, value))
        # unknown optional non-transitive: quietly dropped (RFC 4271 §5)
    if as4_path is not None and as_path is not None:
        as_path = merge_as4_path(as_path, as4_path)
    if as4_aggregator is not None and aggregator is not None and aggregator[0] == AS_TRANS:
        aggregator = as4_aggregator
    return PathAttributes(
        origin=Origin.IGP if origin is None else origin,
        as_path=as_path or (),
        next_hop=next_hop,
        med=med,
        local_pref=local_pref,
        atomic_aggregate=atomic,
        aggregator=aggregator,
        communities=communities,
        large_communities=large,
        other=tuple(other),
    )


MISSING_NEXT_HOP = "missing well-known attribute NEXT_HOP"


def missing_mandatory(tlvs: list[tuple[int, int, bytes]], need_next_hop: bool) -> str | None:
    """Why the TLVs lack a mandatory well-known attribute (ORIGIN, AS_PATH, and NEXT_HOP when
    ``need_next_hop``), or None (RFC 4271 §5.1; treat-as-withdraw by RFC 7606 §3 d)."""
    codes = {code for _f, code, _v in tlvs}
    for code in (AttrType.ORIGIN, AttrType.AS_PATH):
        if code not in codes:
            return f"missing well-known attribute {AttrType(code).name}"
    if need_next_hop and AttrType.NEXT_HOP not in codes:
        return MISSING_NEXT_HOP
    return None
