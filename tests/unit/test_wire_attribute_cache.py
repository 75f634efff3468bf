"""The attribute cache of ``decode_update`` and the layout cache of ``pack_announce``: a cached
decode or layout must be exactly what the uncached one gives, RFC 7606 outcomes included."""

from __future__ import annotations

import itertools

import pytest

from bgpmux.wire import CodecOptions, PathAttributes, packing
from bgpmux.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpmux.wire.messages import AttributeCache, Update, decode_update

from .test_wire_errors import (
    AS_PATH,
    ASN2,
    ASN4,
    BASE,
    NEXT_HOP,
    NLRI,
    ORIGIN,
    as_path,
    attr,
    body,
    mp_reach_v6,
)

BLOCKS = {
    "plain": BASE,
    "with communities": BASE + attr(0xC0, 8, b"\xfc\x00\x00\x64"),
    "no NEXT_HOP": ORIGIN + AS_PATH,
    "no ORIGIN": AS_PATH + NEXT_HOP,
    "no AS_PATH": ORIGIN + NEXT_HOP,
    "discarded AGGREGATOR": BASE + attr(0xC0, 7, b"\x00\x01"),
    "treat-as-withdraw MED": BASE + attr(0x80, 4, b"\x00\x00\x01"),
    "4-octet AS": ORIGIN + as_path(4200000001) + NEXT_HOP,
    "2-octet AS": ORIGIN + as_path(65001, size=2) + NEXT_HOP,
    "MP_REACH": mp_reach_v6() + ORIGIN + AS_PATH,
}
# (NLRI, withdrawn): an announcement, a withdrawal beside the attributes, both, neither
SHAPES = [(NLRI, b""), (b"", NLRI), (NLRI, b"\x18\x0a\x09\x09"), (b"", b"")]


def same(a: Update, b: Update) -> bool:
    """Equal, including the fields ``Update.__eq__`` leaves out."""
    return a == b and a.treat_as_withdraw == b.treat_as_withdraw and a.notes == b.notes


@pytest.mark.parametrize("name", list(BLOCKS))
@pytest.mark.parametrize("options", [ASN4, ASN2], ids=["asn4", "asn2"])
def test_cached_decode_is_the_uncached_one(name: str, options: CodecOptions) -> None:
    """Every order of shapes through one cache: a block first seen without NLRI (nothing
    missing that matters) and then with some must still be treated as withdraw."""
    for order in itertools.permutations(SHAPES):
        cache = AttributeCache()
        for _ in range(2):
            for nlri, withdrawn in order:
                data = body(BLOCKS[name], nlri, withdrawn)
                assert same(decode_update(data, options, cache), decode_update(data, options))


def test_the_negotiated_as_size_is_part_of_the_key() -> None:
    """The same bytes mean other AS numbers with and without 4-octet AS (RFC 6793)."""
    cache = AttributeCache()
    data = body(ORIGIN + as_path(65001, 65002, size=2) + NEXT_HOP)
    two = decode_update(data, ASN2, cache)
    four = decode_update(data, ASN4, cache)
    assert two.attributes is not None and two.attributes.as_path == ((2, (65001, 65002)),)
    assert four.attributes is None and four.treat_as_withdraw  # 8 octets of ASes expected
    assert same(decode_update(data, ASN2, cache), decode_update(data, ASN2))
    assert same(decode_update(data, ASN4, cache), decode_update(data, ASN4))


def test_the_cache_is_bounded_and_starts_over() -> None:
    cache = AttributeCache(limit=3)
    for med in range(10):
        block = BASE + attr(0x80, 4, med.to_bytes(4, "big"))
        first = decode_update(body(block), ASN4, cache)
        assert len(cache) <= 3
        again = decode_update(body(block), ASN4, cache)
        assert first.attributes is not None and again.attributes is first.attributes
    cache.clear()
    assert len(cache) == 0


def test_layouts_are_cached_bounded_and_equal_to_the_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(packing, "LAYOUT_CACHE_LIMIT", 4)
    monkeypatch.setattr(packing, "_layouts", {})
    prefixes = [b"\x20\x0a\x00\x00\x01", b"\x18\x0a\x01\x02"]
    for med in range(8):
        attrs = PathAttributes(as_path=((2, (65001, 4200000001)),), med=med)
        for family, next_hop in ((IPV4_UNICAST, bytes(4)), (IPV6_UNICAST, bytes(16))):
            for asn4 in (True, False):
                fresh = packing._encode_layout(family, attrs, next_hop, asn4, 4096)
                assert packing._announce_layout(family, attrs, next_hop, asn4, 4096) == fresh
                assert packing._announce_layout(family, attrs, next_hop, asn4, 4096) == fresh
                assert len(packing._layouts) <= 4
                packed = packing.pack_announce(family, attrs, next_hop, prefixes, asn4)
                assert packed.messages and not packed.too_large
