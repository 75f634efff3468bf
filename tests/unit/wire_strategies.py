"""Hypothesis strategies for every wire value, each one a value the codec round-trips exactly.

The constraints below are what "canonical" means for the codec, and each is a decision:
- prefixes have their host bits cleared (the decoder clears them, so only those come back);
- AS_PATH segments are non-empty, AS_SETs hold at most 255 ASes, and no two AS_SEQUENCEs are
  adjacent (the decoder joins adjacent sequences: long ones arrive split in 255s);
- an unknown optional transitive attribute is kept with PARTIAL set: we do not recognize it, so
  we forward it marked partial (RFC 4271 §5) and the decoder records its flags that way;
- an OPEN's ``asn`` and its 4-octet-AS capability agree (the decoder takes the capability).
"""

from __future__ import annotations

from hypothesis import strategies as st

from bgpmux.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    KEEPALIVE,
    Capabilities,
    Family,
    GracefulRestart,
    MpReach,
    MpUnreach,
    Notification,
    Open,
    PathAttributes,
    RouteRefresh,
    Update,
)
from bgpmux.wire.constants import AttrFlag, AttrType, CapabilityCode, SegmentType
from bgpmux.wire.prefix import Prefix

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFF_FFFF)
ASN2 = st.integers(1, 0xFFFF)
ASN4 = st.integers(0x1_0000, 0xFFFF_FFFF)
ASN = st.one_of(ASN2, ASN4)
IPV4 = st.binary(min_size=4, max_size=4)
IPV6 = st.binary(min_size=16, max_size=16)

PARTIAL_OPTIONAL_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE | AttrFlag.PARTIAL
# Attribute codes the codec decodes (or drops) itself; anything else is "unknown".
KNOWN_ATTRIBUTES = {int(code) for code in AttrType} | {0}
KNOWN_CAPABILITIES = {
    CapabilityCode.MULTIPROTOCOL,
    CapabilityCode.ROUTE_REFRESH,
    CapabilityCode.ROUTE_REFRESH_CISCO,
    CapabilityCode.ENHANCED_ROUTE_REFRESH,
    CapabilityCode.EXTENDED_MESSAGE,
    CapabilityCode.GRACEFUL_RESTART,
    CapabilityCode.FOUR_OCTET_AS,
    CapabilityCode.ADD_PATH,
}
FAMILIES = st.sampled_from([IPV4_UNICAST, IPV6_UNICAST])
ANY_FAMILY = st.one_of(FAMILIES, st.builds(Family, U16, U8))


def prefix_of(family: Family, max_len: int | None = None) -> st.SearchStrategy[Prefix]:
    """A canonical prefix: length octet, then only the significant octets, host bits zero."""
    bits = 8 * family.address_len
    top = bits if max_len is None else max_len

    @st.composite
    def build(draw: st.DrawFn) -> Prefix:
        plen = draw(st.integers(0, top))
        address = draw(st.integers(0, (1 << bits) - 1))
        address &= ((1 << plen) - 1) << (bits - plen)
        return bytes((plen,)) + address.to_bytes(bits // 8, "big")[: (plen + 7) // 8]

    return build()


def prefixes_of(family: Family, max_size: int = 20) -> st.SearchStrategy[tuple[Prefix, ...]]:
    return st.lists(prefix_of(family), max_size=max_size).map(tuple)


@st.composite
def as_paths(draw: st.DrawFn, max_segments: int = 4) -> tuple[tuple[int, tuple[int, ...]], ...]:
    segments: list[tuple[int, tuple[int, ...]]] = []
    for _ in range(draw(st.integers(0, max_segments))):
        previous = segments[-1][0] if segments else None
        kinds = [SegmentType.AS_SET]
        if previous != SegmentType.AS_SEQUENCE:
            kinds.append(SegmentType.AS_SEQUENCE)
        kind = draw(st.sampled_from(kinds))
        # Sequences occasionally longer than 255, to cross the split-and-join path.
        most = 300 if kind == SegmentType.AS_SEQUENCE and draw(st.integers(0, 9)) == 0 else 12
        asns = draw(st.lists(ASN, min_size=1, max_size=most))
        segments.append((int(kind), tuple(asns)))
    return tuple(segments)


unknown_attribute_codes = st.integers(0, 255).filter(lambda c: c not in KNOWN_ATTRIBUTES)


@st.composite
def other_attributes(draw: st.DrawFn) -> tuple[tuple[int, int, bytes], ...]:
    codes = draw(st.lists(unknown_attribute_codes, max_size=3, unique=True))
    # Values past 255 octets take the extended-length form.
    return tuple(
        (int(PARTIAL_OPTIONAL_TRANSITIVE), code, draw(st.binary(max_size=300))) for code in codes
    )


@st.composite
def path_attributes(draw: st.DrawFn, next_hop: bool | None = None) -> PathAttributes:
    """``next_hop``: True forces an IPv4 NEXT_HOP, False forbids it, None draws it."""
    has_next_hop = draw(st.booleans()) if next_hop is None else next_hop
    return PathAttributes(
        origin=draw(st.integers(0, 2)),
        as_path=draw(as_paths()),
        next_hop=draw(IPV4) if has_next_hop else None,
        med=draw(st.none() | U32),
        local_pref=draw(st.none() | U32),
        atomic_aggregate=draw(st.booleans()),
        aggregator=draw(st.none() | st.tuples(ASN, IPV4)),
        communities=tuple(draw(st.lists(U32, max_size=10))),
        large_communities=tuple(draw(st.lists(st.tuples(U32, U32, U32), max_size=5))),
        other=draw(other_attributes()),
    )


@st.composite
def mp_reaches(draw: st.DrawFn, family: Family | None = None) -> MpReach:
    fam = draw(FAMILIES) if family is None else family
    if fam == IPV4_UNICAST:
        next_hop = draw(IPV4)
    else:  # global only, or global + link-local (RFC 2545)
        next_hop = draw(st.one_of(IPV6, st.binary(min_size=32, max_size=32)))
    return MpReach(fam, next_hop, draw(prefixes_of(fam)))


@st.composite
def mp_unreaches(draw: st.DrawFn) -> MpUnreach:
    fam = draw(FAMILIES)
    return MpUnreach(fam, draw(prefixes_of(fam)))


@st.composite
def updates(draw: st.DrawFn) -> Update:
    """Any well-formed UPDATE: attributes are present exactly when something is announced
    (or drawn anyway), and IPv4 NLRI come with a NEXT_HOP."""
    withdrawn = draw(prefixes_of(IPV4_UNICAST))
    nlri = draw(prefixes_of(IPV4_UNICAST))
    mp_reach = draw(st.none() | mp_reaches())
    mp_unreach = draw(st.none() | mp_unreaches())
    announcing = bool(nlri) or (mp_reach is not None and bool(mp_reach.nlri))
    attributes = None
    if announcing or draw(st.booleans()):
        attributes = draw(path_attributes(next_hop=True if nlri else None))
    return Update(withdrawn, attributes, nlri, mp_reach, mp_unreach)


def end_of_ribs() -> st.SearchStrategy[Update]:
    return st.sampled_from([Update(), Update(mp_unreach=MpUnreach(IPV6_UNICAST, ()))])


@st.composite
def graceful_restarts(draw: st.DrawFn) -> GracefulRestart:
    return GracefulRestart(
        restart_time=draw(st.integers(0, 0x0FFF)),
        restarting=draw(st.booleans()),
        notification=draw(st.booleans()),
        families=tuple(draw(st.lists(st.tuples(ANY_FAMILY, st.booleans()), max_size=4))),
    )


@st.composite
def capabilities(draw: st.DrawFn, four_octet_as: int | None = None) -> Capabilities:
    unknown_codes = st.integers(0, 255).filter(lambda c: c not in KNOWN_CAPABILITIES)
    return Capabilities(
        multiprotocol=tuple(draw(st.lists(ANY_FAMILY, max_size=4))),
        route_refresh=draw(st.booleans()),
        enhanced_route_refresh=draw(st.booleans()),
        four_octet_as=four_octet_as,
        graceful_restart=draw(st.none() | graceful_restarts()),
        add_path=tuple(draw(st.lists(st.tuples(ANY_FAMILY, st.integers(0, 3)), max_size=3))),
        extended_message=draw(st.booleans()),
        unknown=tuple(draw(st.lists(st.tuples(unknown_codes, st.binary(max_size=16)), max_size=3))),
    )


@st.composite
def opens(draw: st.DrawFn) -> Open:
    asn = draw(ASN)
    # A 4-octet AS can only travel in the capability; a 2-octet one may go either way.
    four_octet = asn if asn > 0xFFFF or draw(st.booleans()) else None
    router_id = ".".join(str(b) for b in draw(IPV4))
    return Open(asn, draw(U16), router_id, draw(capabilities(four_octet)))


notifications = st.builds(Notification, U8, U8, st.binary(max_size=64))
route_refreshes = st.builds(RouteRefresh, ANY_FAMILY, U8)
keepalives = st.just(KEEPALIVE)


def messages() -> st.SearchStrategy[object]:
    return st.one_of(opens(), updates(), end_of_ribs(), notifications, keepalives, route_refreshes)
