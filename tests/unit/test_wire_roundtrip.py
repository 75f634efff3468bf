"""value -> encode -> framer -> decode == value, for every message the codec speaks."""

from __future__ import annotations

import struct
from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bgpmux.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    CodecOptions,
    Family,
    Framer,
    Message,
    MpReach,
    MpUnreach,
    PathAttributes,
    Update,
    decode_body,
    encode_message,
)
from bgpmux.wire.constants import AS_TRANS, MAX_EXTENDED_MESSAGE_LEN, AttrFlag
from bgpmux.wire.packing import pack_announce, pack_end_of_rib, pack_withdraw

from .wire_strategies import (
    ASN4,
    PARTIAL_OPTIONAL_TRANSITIVE,
    end_of_ribs,
    keepalives,
    notifications,
    opens,
    path_attributes,
    prefixes_of,
    route_refreshes,
    updates,
)

OPTIONS = [CodecOptions(asn4=True), CodecOptions(asn4=False)]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def through_the_wire(msg: Message, options: CodecOptions) -> Message:
    try:
        data = encode_message(msg, options)
    except ValueError:  # bigger than the maximum message: not a value this test is about
        assume(False)
        raise
    frames = Framer(options.max_message_len).feed(data)
    assert len(frames) == 1
    kind, body = frames[0]
    return decode_body(kind, body, options)


@FAST
@given(msg=opens())
def test_open_round_trips(msg: Message) -> None:
    assert through_the_wire(msg, OPTIONS[0]) == msg


@FAST
@given(msg=updates(), options=st.sampled_from(OPTIONS))
def test_update_round_trips(msg: Update, options: CodecOptions) -> None:
    back = through_the_wire(msg, options)
    assert back == msg
    assert isinstance(back, Update)
    assert back.treat_as_withdraw is None
    assert back.notes == ()


@FAST
@given(msg=st.one_of(end_of_ribs(), notifications, keepalives, route_refreshes))
def test_small_messages_round_trip(msg: Message) -> None:
    assert through_the_wire(msg, OPTIONS[0]) == msg


@given(msg=end_of_ribs())
def test_end_of_rib_is_recognized(msg: Update) -> None:
    back = through_the_wire(msg, OPTIONS[0])
    assert isinstance(back, Update)
    expected = IPV6_UNICAST if msg.mp_unreach is not None else IPV4_UNICAST
    assert back.end_of_rib() == expected


@FAST
@given(attrs=path_attributes(next_hop=True), asn4=st.sampled_from(OPTIONS))
def test_four_octet_ases_survive_a_two_octet_session(
    attrs: PathAttributes, asn4: CodecOptions
) -> None:
    """With asn4=False the big ASes travel as AS_TRANS plus AS4_PATH / AS4_AGGREGATOR."""
    msg = Update(attributes=attrs, nlri=(b"\x18\x0a\x00\x01",))
    assert through_the_wire(msg, asn4) == msg


@given(big=ASN4)
def test_two_octet_encoding_uses_as_trans(big: int) -> None:
    attrs = PathAttributes(as_path=((2, (65001, big)),), next_hop=b"\x0a\x00\x00\x01")
    attrs = replace(attrs, aggregator=(big, b"\x0a\x00\x00\x02"))
    data = encode_message(Update(attributes=attrs, nlri=(b"\x00",)), OPTIONS[1])
    # The AS_PATH segment: type 2, count 2, 65001, AS_TRANS.
    assert bytes((2, 2)) + (65001).to_bytes(2, "big") + AS_TRANS.to_bytes(2, "big") in data
    assert big.to_bytes(4, "big") in data  # in AS4_PATH and AS4_AGGREGATOR


def test_as4_path_leaves_confederation_segments_out() -> None:
    """RFC 6793 §3: AS4_PATH must not carry confederation segments. It once did, and a
    receiver (this codec too) then discarded it and kept AS_TRANS for every 4-octet AS (found
    by ``make fuzz``: ``tests/fuzz/found/update-*.txt``)."""
    big = 4_200_000_001
    path = ((3, (64601,)), (2, (65001, big)), (1, (big, 65002)))
    msg = Update(attributes=PathAttributes(as_path=path, next_hop=b"\x0a\x00\x00\x01"))
    data = encode_message(msg, OPTIONS[1])
    as4_path = bytes((2, 2)) + struct.pack("!II", 65001, big) + bytes((1, 2))
    assert bytes((0xC0, 17, 2 + 8 + 2 + 8)) + as4_path in data
    assert through_the_wire(msg, OPTIONS[1]) == msg


def test_partial_is_set_on_resend_and_is_stable() -> None:
    """Equality of ``other``: the decoder records PARTIAL (we did not recognize the attribute,
    so we forward it marked partial); a value built without it comes back with it, and from
    then on it round-trips unchanged."""
    plain = PathAttributes(other=((AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, 99, b"x"),))
    msg = Update(attributes=plain)
    once = through_the_wire(msg, OPTIONS[0])
    assert isinstance(once, Update) and once.attributes is not None
    assert once.attributes.other == ((PARTIAL_OPTIONAL_TRANSITIVE, 99, b"x"),)
    assert once != msg
    assert through_the_wire(once, OPTIONS[0]) == once


@settings(max_examples=20, deadline=None)
@given(tail=prefixes_of(IPV6_UNICAST, max_size=3), extra=st.integers(460, 5000))
def test_extended_messages_round_trip(tail: tuple[bytes, ...], extra: int) -> None:
    """RFC 8654: past 4096 octets once extended messages are negotiated."""
    options = CodecOptions(max_message_len=MAX_EXTENDED_MESSAGE_LEN)
    many = tuple(bytes((64,)) + (i).to_bytes(8, "big") for i in range(extra)) + tail
    msg = Update(
        attributes=PathAttributes(as_path=((2, (64512,)),)),
        mp_reach=MpReach(IPV6_UNICAST, bytes(16), many),
        mp_unreach=MpUnreach(IPV6_UNICAST, many[:100]),
    )
    data = encode_message(msg, options)
    assert len(data) > 4096
    assert through_the_wire(msg, options) == msg


@settings(max_examples=40, deadline=None)
@given(
    attrs=path_attributes(next_hop=False),
    family=st.sampled_from([IPV4_UNICAST, IPV6_UNICAST]),
    count=st.integers(1, 1500),
    options=st.sampled_from(OPTIONS),
)
def test_packed_updates_decode_to_what_was_packed(
    attrs: PathAttributes, family: Family, count: int, options: CodecOptions
) -> None:
    """``packing``: many prefixes, one attribute set, split to fit 4096 octets each."""
    bits = 32 if family == IPV4_UNICAST else 128
    prefixes = [bytes((bits,)) + i.to_bytes(bits // 8, "big") for i in range(count)]
    next_hop = bytes(range(1, 1 + family.address_len))
    announced: list[bytes] = []
    packed, too_large = pack_announce(family, attrs, next_hop, prefixes, options.asn4)
    assume(not too_large)  # attributes too big to leave room for NLRI: see test_packing
    for data in packed:
        assert len(data) <= 4096
        [(kind, body)] = Framer().feed(data)
        msg = decode_body(kind, body, options)
        assert isinstance(msg, Update)
        [(fam, got, hop, nlri)] = list(msg.announcements())
        assert (fam, hop) == (family, next_hop)
        expected = replace(attrs, next_hop=next_hop if family == IPV4_UNICAST else None)
        assert got == expected
        announced += nlri
    assert announced == prefixes
    withdrawn: list[bytes] = []
    for data in pack_withdraw(family, prefixes):
        [(kind, body)] = Framer().feed(data)
        msg = decode_body(kind, body, options)
        assert isinstance(msg, Update)
        withdrawn += [p for _fam, nlri in msg.withdrawals() for p in nlri]
    assert withdrawn == prefixes
    eor = decode_body(2, pack_end_of_rib(family)[19:], options)
    assert isinstance(eor, Update) and eor.end_of_rib() == family
