"""RFC 7606 (revised UPDATE error handling) and RFC 4271 §6 as the codec applies them.

Three outcomes: a BGPError (the NOTIFICATION: session reset), treat-as-withdraw (the UPDATE's
NLRI become withdrawals), attribute-discard (the attribute is dropped with a note, routes kept).
"""

from __future__ import annotations

import struct

import pytest

from bgpmux.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    BGPError,
    CodecOptions,
    Update,
)
from bgpmux.wire.constants import AS_TRANS
from bgpmux.wire.messages import AttributeCache, decode_open, decode_update

ASN4 = CodecOptions(asn4=True)
ASN2 = CodecOptions(asn4=False)
NLRI = b"\x18\x0a\x01\x02"  # 10.1.2.0/24
V6_NLRI = b"\x40\x20\x01\x0d\xb8\x00\x01\x00\x02"  # 2001:db8:1:2::/64


def attr(flags: int, code: int, value: bytes) -> bytes:
    if flags & 0x10:
        return struct.pack("!BBH", flags, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def as_path(*asns: int, kind: int = 2, size: int = 4) -> bytes:
    fmt = "!I" if size == 4 else "!H"
    return attr(0x40, 2, bytes((kind, len(asns))) + b"".join(struct.pack(fmt, a) for a in asns))


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH = as_path(65001)
NEXT_HOP = attr(0x40, 3, b"\x0a\x00\x00\x01")
BASE = ORIGIN + AS_PATH + NEXT_HOP


def mp_reach_v6(nlri: bytes = V6_NLRI) -> bytes:
    value = struct.pack("!HBB", 2, 1, 16) + bytes.fromhex("20010db8" + "00" * 11 + "01")
    return attr(0x90, 14, value + b"\x00" + nlri)


def body(attrs: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"") -> bytes:
    return (
        struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri
    )


def decode(attrs: bytes, nlri: bytes = NLRI, options: CodecOptions = ASN4) -> Update:
    return decode_update(body(attrs, nlri), options)


def error(data: bytes, options: CodecOptions = ASN4) -> BGPError:
    with pytest.raises(BGPError) as info:
        decode_update(data, options)
    return info.value


# ---------------------------------------------------------------------------- treat-as-withdraw

TREAT_AS_WITHDRAW = {
    "ORIGIN value 3": attr(0x40, 1, b"\x03") + AS_PATH + NEXT_HOP,
    "ORIGIN length 2": attr(0x40, 1, b"\x00\x00") + AS_PATH + NEXT_HOP,
    "ORIGIN marked optional": attr(0xC0, 1, b"\x00") + AS_PATH + NEXT_HOP,
    "AS_PATH segment type 7": ORIGIN + as_path(65001, kind=7) + NEXT_HOP,
    "AS_PATH segment count 0": ORIGIN + attr(0x40, 2, b"\x02\x00") + NEXT_HOP,
    "AS_PATH segment overrun": ORIGIN + attr(0x40, 2, b"\x02\x02\x00\x00\xfd\xe9") + NEXT_HOP,
    "AS_PATH header cut": ORIGIN + attr(0x40, 2, b"\x02") + NEXT_HOP,
    "NEXT_HOP length 3": ORIGIN + AS_PATH + attr(0x40, 3, b"\x0a\x00\x00"),
    "NEXT_HOP length 16": ORIGIN + AS_PATH + attr(0x40, 3, bytes(16)),
    "COMMUNITIES length 5": BASE + attr(0xC0, 8, b"\x00\x01\x00\x02\x03"),
    "COMMUNITIES length 0": BASE + attr(0xC0, 8, b""),
    "LARGE_COMMUNITIES length 13": BASE + attr(0xC0, 32, bytes(13)),
    "MED length 3": BASE + attr(0x80, 4, b"\x00\x00\x01"),
    "MED length 8": BASE + attr(0x80, 4, bytes(8)),
    "LOCAL_PREF length 2": BASE + attr(0x40, 5, b"\x00\x64"),
    "missing ORIGIN": AS_PATH + NEXT_HOP,
    "missing AS_PATH": ORIGIN + NEXT_HOP,
    "missing NEXT_HOP": ORIGIN + AS_PATH,
}


@pytest.mark.parametrize("attrs", TREAT_AS_WITHDRAW.values(), ids=TREAT_AS_WITHDRAW.keys())
def test_treat_as_withdraw(attrs: bytes) -> None:
    update = decode(attrs, withdrawn_nlri := NLRI)
    assert update.treat_as_withdraw
    assert list(update.announcements()) == []
    assert (IPV4_UNICAST, (withdrawn_nlri,)) in list(update.withdrawals())
    assert update.end_of_rib() is None


@pytest.mark.parametrize(
    "attrs",
    [attr(0x40, 1, b"\x05") + AS_PATH, AS_PATH, ORIGIN + attr(0x80, 4, b"\x01")],
    ids=["bad ORIGIN", "missing ORIGIN", "bad MED"],
)
def test_treat_as_withdraw_covers_mp_reach(attrs: bytes) -> None:
    update = decode(mp_reach_v6() + attrs, nlri=b"")
    assert update.treat_as_withdraw
    assert list(update.announcements()) == []
    assert list(update.withdrawals()) == [(IPV6_UNICAST, (V6_NLRI,))]


def test_mp_reach_needs_no_next_hop_attribute() -> None:
    update = decode(mp_reach_v6() + ORIGIN + AS_PATH, nlri=b"")
    assert update.treat_as_withdraw is None
    assert [fam for fam, *_ in update.announcements()] == [IPV6_UNICAST]


def test_nlri_without_attributes() -> None:
    assert decode(b"").treat_as_withdraw
    assert decode(mp_reach_v6(), nlri=b"").treat_as_withdraw
    # IPv4 NLRI next to nothing but an MP_UNREACH: no attributes for them either.
    update = decode(attr(0x80, 15, b"\x00\x02\x01"))
    assert update.treat_as_withdraw
    assert list(update.withdrawals()) == [(IPV4_UNICAST, (NLRI,))]


def test_missing_attributes_do_not_matter_without_nlri() -> None:
    update = decode_update(body(ORIGIN, nlri=b"", withdrawn=NLRI))
    assert update.treat_as_withdraw is None
    assert list(update.withdrawals()) == [(IPV4_UNICAST, (NLRI,))]


def test_missing_next_hop_is_checked_even_when_the_set_is_cached() -> None:
    """The interned set first arrives with only withdrawals (no NEXT_HOP needed), then with
    NLRI: the second UPDATE must still be treat-as-withdraw."""
    attrs = ORIGIN + as_path(64999, 65432)
    first = decode_update(body(attrs, nlri=b"", withdrawn=NLRI))
    assert first.treat_as_withdraw is None and first.attributes is not None
    second = decode(attrs)
    assert second.treat_as_withdraw
    assert list(second.announcements()) == []


def test_unusable_attributes_are_not_end_of_rib() -> None:
    assert decode(attr(0x40, 1, b"\x09"), nlri=b"").end_of_rib() is None
    assert decode(b"", nlri=b"").end_of_rib() == IPV4_UNICAST


# ---------------------------------------------------------------------------- attribute discard

DISCARDED = {
    "ATOMIC_AGGREGATE with a value": (attr(0x40, 6, b"\x01"), ASN4, "atomic_aggregate", False),
    "ATOMIC_AGGREGATE marked optional": (attr(0xC0, 6, b""), ASN4, "atomic_aggregate", False),
    "AGGREGATOR length 7": (attr(0xC0, 7, bytes(7)), ASN4, "aggregator", None),
    "AGGREGATOR 8 octets on a 2-octet session": (attr(0xC0, 7, bytes(8)), ASN2, "aggregator", None),
    "AGGREGATOR not transitive": (attr(0x80, 7, bytes(8)), ASN4, "aggregator", None),
    "AS4_AGGREGATOR length 6": (attr(0xC0, 18, bytes(6)), ASN2, "aggregator", None),
    "AS4_PATH not transitive": (attr(0x80, 17, b"\x02\x01" + bytes(4)), ASN2, "as_path", None),
    "AS4_PATH malformed": (attr(0xC0, 17, b"\x02\x05\x00"), ASN2, "as_path", None),
    "AS4_PATH with a confederation": (
        attr(0xC0, 17, b"\x03\x01" + bytes(4)),
        ASN2,
        "as_path",
        None,
    ),
}


@pytest.mark.parametrize(("extra", "options", "field", "value"), DISCARDED.values(), ids=DISCARDED)
def test_attribute_discard(extra: bytes, options: CodecOptions, field: str, value: object) -> None:
    path = as_path(65001, size=4 if options.asn4 else 2)
    update = decode(ORIGIN + path + NEXT_HOP + extra, options=options)
    assert update.treat_as_withdraw is None
    assert update.notes, "the discard leaves a note"
    assert [p for *_, p in update.announcements()] == [(NLRI,)]
    assert update.attributes is not None
    if field == "as_path":
        assert update.attributes.as_path == ((2, (65001,)),)
    else:
        assert getattr(update.attributes, field) == value


def test_duplicate_attribute_keeps_the_first() -> None:
    update = decode(BASE + attr(0x40, 1, b"\x02"))
    assert update.treat_as_withdraw is None
    assert update.attributes is not None and update.attributes.origin == 0
    assert update.notes


def test_as4_path_merge_on_a_two_octet_session() -> None:
    big = 4_200_000_001
    path = as_path(65001, AS_TRANS, size=2)
    as4 = attr(0xC0, 17, b"\x02\x01" + struct.pack("!I", big))
    update = decode(ORIGIN + path + NEXT_HOP + as4, options=ASN2)
    assert update.attributes is not None
    assert update.attributes.as_path == ((2, (65001, big)),)
    # AS4_PATH longer than AS_PATH: ignored (RFC 6793 §4.2.3).
    longer = attr(0xC0, 17, b"\x02\x03" + struct.pack("!III", 1, 2, big))
    update = decode(ORIGIN + path + NEXT_HOP + longer, options=ASN2)
    assert update.attributes is not None
    assert update.attributes.as_path == ((2, (65001, AS_TRANS)),)
    # A 4-octet session ignores AS4_PATH altogether (RFC 6793 §4.1).
    update = decode(BASE + as4)
    assert update.attributes is not None
    assert update.attributes.as_path == ((2, (65001,)),) and update.attributes.other == ()


def test_as4_path_merge_keeps_a_leading_confederation_segment() -> None:
    """AS4_PATH never carries confederation segments (RFC 6793 §3), so AS_PATH's leading one
    stays in front of it (§4.2.3); once it was dropped with the ASes AS4_PATH covers (found by
    ``make fuzz``: ``tests/fuzz/found/update-*.txt``)."""
    big = 4_200_000_001
    confed = bytes((3, 2)) + struct.pack("!HH", 64601, 64602)
    path = attr(0x40, 2, confed + bytes((2, 2)) + struct.pack("!HH", 65001, AS_TRANS))
    as4 = attr(0xC0, 17, b"\x02\x02" + struct.pack("!II", 65001, big))
    update = decode(ORIGIN + path + NEXT_HOP + as4, options=ASN2)
    assert update.attributes is not None and update.notes == ()
    assert update.attributes.as_path == ((3, (64601, 64602)), (2, (65001, big)))


# ---------------------------------------------------------------------------- NOTIFICATIONs


def test_duplicate_mp_reach_is_malformed_attribute_list() -> None:
    err = error(body(mp_reach_v6() + BASE + mp_reach_v6(), nlri=b""))
    assert (err.code, err.subcode) == (3, 1)
    unreach = attr(0x80, 15, b"\x00\x02\x01")
    err = error(body(unreach + BASE + unreach, nlri=b""))
    assert (err.code, err.subcode) == (3, 1)


@pytest.mark.parametrize(
    "attrs",
    [
        BASE + b"\x40\x01\x05\x00",  # ORIGIN says 5 octets, 1 left
        BASE + b"\x50\x02\x01\x00\x02",  # extended length 256, 1 left
        BASE + b"\x40\x01",  # a header cut short
        BASE + b"\x50\x02\x00",  # an extended-length header cut short
    ],
    ids=["overrun", "extended overrun", "short header", "short extended header"],
)
def test_attribute_list_framing_is_malformed_attribute_list(attrs: bytes) -> None:
    """RFC 7606 §4 framing error. Treat-as-withdraw would need every MP_REACH/MP_UNREACH
    parsed (§3 b), and one may hide past the break: so session reset, with RFC 4271's
    Malformed Attribute List (Attribute Length Error is for a length that conflicts with the
    attribute's type, which this is not)."""
    err = error(body(attrs))
    assert (err.code, err.subcode) == (3, 1)


def test_length_overruns() -> None:
    # Withdrawn Routes Length past the end of the message.
    err = error(struct.pack("!H", 10) + NLRI + b"\x00\x00")
    assert (err.code, err.subcode) == (3, 1)
    # Total Path Attribute Length past the end of the message.
    err = error(b"\x00\x00" + struct.pack("!H", len(BASE) + 5) + BASE)
    assert (err.code, err.subcode) == (3, 1)
    err = error(b"\x00\x00\x00")
    assert (err.code, err.subcode) == (3, 1)


def test_bad_prefix_lengths() -> None:
    assert (error(body(BASE, nlri=b"\x21" + bytes(5))).subcode) == 10  # /33 in NLRI
    assert error(body(b"", nlri=b"", withdrawn=b"\x21" + bytes(5))).subcode == 10
    assert error(body(BASE, nlri=b"\x18\x0a\x01")).subcode == 10  # prefix cut short
    # In MP_REACH/MP_UNREACH it is an Optional Attribute Error (RFC 4760 §7).
    bad_v6 = mp_reach_v6(nlri=b"\x81" + bytes(17))
    assert error(body(bad_v6 + ORIGIN + AS_PATH, nlri=b"")).subcode == 9
    unreach = attr(0x80, 15, b"\x00\x01\x01\x21" + bytes(5))
    assert error(body(unreach, nlri=b"")).subcode == 9


def test_bad_mp_reach_next_hop_length() -> None:
    value = struct.pack("!HBB", 2, 1, 4) + bytes(4) + b"\x00"
    err = error(body(attr(0x80, 14, value) + ORIGIN + AS_PATH, nlri=b""))
    assert (err.code, err.subcode) == (3, 9)


def test_unrecognized_well_known_attribute() -> None:
    unknown = attr(0x40, 200, b"abc")
    err = error(body(BASE + unknown))
    assert (err.code, err.subcode, err.data) == (3, 2, unknown)


def test_unknown_optional_attributes() -> None:
    transitive = attr(0xC0, 200, b"keep me")
    non_transitive = attr(0x80, 201, b"drop me")
    update = decode(BASE + transitive + non_transitive)
    assert update.treat_as_withdraw is None and update.notes == ()
    assert update.attributes is not None
    assert update.attributes.other == ((0xE0, 200, b"keep me"),)  # PARTIAL set: see roundtrip


# ---------------------------------------------------------------------------- interning


def test_same_attributes_are_one_object() -> None:
    attrs = BASE + attr(0xC0, 8, b"\xfc\x00\x00\x64")
    cache = AttributeCache()
    first = decode_update(body(attrs, NLRI), ASN4, cache)
    second = decode_update(body(attrs, b"\x20\xc6\x33\x64\x0a"), ASN4, cache)
    assert first.attributes is not None and first.attributes is second.attributes
    # With MP_REACH too: the MP attributes (NLRI, next hop) are not part of the shared set.
    v6 = ORIGIN + as_path(65010) + attr(0xC0, 8, b"\xfc\x00\x00\x65")
    a = decode_update(body(mp_reach_v6() + v6, b""), ASN4, cache)
    b = decode_update(body(mp_reach_v6(b"\x30\x20\x01\x0d\xb8\x00\x09") + v6, b""), ASN4, cache)
    assert a.attributes is not None and a.attributes is b.attributes
    # Without a cache, equal values only.
    assert decode(attrs).attributes == first.attributes


def test_interning_depends_on_the_encoding_not_just_the_values() -> None:
    """The same attributes, one with an extended-length ORIGIN: equal values either way."""
    extended_origin = attr(0x50, 1, b"\x00") + AS_PATH
    plain = decode(mp_reach_v6() + ORIGIN + AS_PATH, nlri=b"")
    extended = decode(mp_reach_v6() + extended_origin, nlri=b"")
    assert plain.attributes == extended.attributes


# ---------------------------------------------------------------------------- OPEN


def open_body(params: bytes, plen: int | None = None, version: int = 4) -> bytes:
    head = struct.pack("!BHH4s", version, 64512, 90, bytes((10, 0, 0, 1)))
    return head + bytes((len(params) if plen is None else plen,)) + params


CAPS = b"\x41\x04\x00\x00\xfc\x00" + b"\x01\x04\x00\x02\x00\x01"  # 4-octet AS, IPv6 unicast


def test_open_errors() -> None:
    with pytest.raises(BGPError) as info:
        decode_open(open_body(b"\x02\x06" + CAPS[:6], version=3))
    assert (info.value.code, info.value.subcode) == (2, 1)
    with pytest.raises(BGPError) as info:
        decode_open(open_body(b"\x01\x02ab"))  # authentication parameter: gone since 4271
    assert (info.value.code, info.value.subcode) == (2, 4)
    with pytest.raises(BGPError) as info:
        decode_open(open_body(b"\x02\x06" + CAPS[:6], plen=9))
    assert (info.value.code, info.value.subcode) == (2, 4)


def test_open_extended_parameters() -> None:
    """RFC 9072: length 255, type 255, then a two-octet length and three-octet headers."""
    params = b"\x02" + struct.pack("!H", len(CAPS)) + CAPS
    extended = b"\xff" + struct.pack("!H", len(params)) + params
    msg = decode_open(open_body(extended, plen=255))
    assert msg.asn == 64512
    assert msg.capabilities.multiprotocol == (IPV6_UNICAST,)
    with pytest.raises(BGPError):
        decode_open(open_body(extended + b"\x00", plen=255))
