"""Packing sized against the peer's maximum: no message over it, no UPDATE that carries nothing,
and every prefix either announced or reported as too large (the failing inputs in
``shared/cases/D1*`` are instances of these properties)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, CodecOptions, Family, Framer, PathAttributes
from bgpmux.wire.constants import MAX_EXTENDED_MESSAGE_LEN, AttrFlag
from bgpmux.wire.messages import Update, decode_body, encode_update
from bgpmux.wire.packing import nlri_room, pack_announce, pack_withdraw, split_too_large

from .wire_strategies import FAMILIES, as_paths, prefix_of

UNKNOWN_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE | AttrFlag.PARTIAL


@st.composite
def large_attributes(draw: st.DrawFn) -> PathAttributes:
    """Attribute sets around and past what one 4096-octet UPDATE can carry."""
    communities = draw(st.integers(0, 1300))
    large = draw(st.integers(0, 400))
    other = draw(st.one_of(st.just(0), st.integers(0, 4100)))
    return PathAttributes(
        as_path=draw(as_paths()),
        med=draw(st.none() | st.integers(0, 2**32 - 1)),
        communities=tuple(range(communities)),
        large_communities=tuple((1, 2, i) for i in range(large)),
        other=((UNKNOWN_TRANSITIVE, 200, b"\x00" * other),) if other else (),
    )


def _decode(messages: list[bytes], options: CodecOptions) -> list[Update]:
    out = []
    for data in messages:
        [(kind, body)] = Framer(max_message_len=options.max_message_len).feed(data)
        msg = decode_body(kind, body, options)
        assert isinstance(msg, Update)
        out.append(msg)
    return out


@settings(max_examples=300, deadline=None)
@given(
    family=FAMILIES,
    data=st.data(),
    attrs=large_attributes(),
    max_len=st.sampled_from([4096, MAX_EXTENDED_MESSAGE_LEN]),
    asn4=st.booleans(),
)
def test_every_message_fits_and_every_prefix_is_accounted_for(
    family: Family,
    data: st.DataObject,
    attrs: PathAttributes,
    max_len: int,
    asn4: bool,
) -> None:
    prefixes = data.draw(st.lists(prefix_of(family), max_size=40, unique=True))
    next_hop = bytes(range(1, 1 + family.address_len))
    options = CodecOptions(asn4=asn4, max_message_len=max_len)
    messages, too_large = pack_announce(family, attrs, next_hop, prefixes, asn4, max_len)
    assert all(len(m) <= max_len for m in messages)
    announced = []
    for update in _decode(messages, options):
        nlri = [p for _f, _a, _nh, ps in update.announcements() for p in ps]
        assert nlri, "an UPDATE that carries nothing"
        announced += nlri
    assert sorted(announced + too_large) == sorted(prefixes)
    room = nlri_room(family, attrs, next_hop, asn4, max_len)
    assert all(len(p) > room for p in too_large)
    assert all(len(p) <= room for p in announced)
    fit, unfit = split_too_large(prefixes, room)
    assert sorted(fit) == sorted(announced) and sorted(unfit) == sorted(too_large)


def test_attributes_that_fill_the_message_leave_every_prefix_too_large() -> None:
    """1100 communities (4400 octets) cannot go in a 4096-octet UPDATE at all."""
    attrs = PathAttributes(as_path=((2, (64512,)),), communities=tuple(range(1100)))
    prefixes = [bytes((24, 10, 244, 5))]
    messages, too_large = pack_announce(IPV4_UNICAST, attrs, b"\x0a\x00\x00\x02", prefixes)
    assert messages == [] and too_large == prefixes


def test_a_prefix_longer_than_the_room_left_is_too_large_alone() -> None:
    """1011 communities and ATOMIC_AGGREGATE leave 2 octets: a /8 fits there, a /24 not."""
    attrs = PathAttributes(
        as_path=((2, (64512,)),), communities=tuple(range(1011)), atomic_aggregate=True
    )
    nh = b"\x0a\x00\x00\x02"
    room = nlri_room(IPV4_UNICAST, attrs, nh)
    assert 2 <= room < 4
    slash8, slash24 = bytes((8, 10)), bytes((24, 10, 244, 5))
    messages, too_large = pack_announce(IPV4_UNICAST, attrs, nh, [slash8, slash24])
    assert too_large == [slash24]
    assert len(messages) == 1 and len(messages[0]) <= 4096


def test_withdrawals_always_fit() -> None:
    prefixes = [bytes((128,)) + i.to_bytes(16, "big") for i in range(1000)]
    for family, max_len in ((IPV6_UNICAST, 4096), (IPV4_UNICAST, 4096)):
        messages = pack_withdraw(family, prefixes if family == IPV6_UNICAST else [], max_len)
        assert all(len(m) <= max_len for m in messages)


@pytest.mark.parametrize("family", [IPV4_UNICAST, IPV6_UNICAST])
@pytest.mark.parametrize(
    "attrs",
    [
        # one attribute past 65535 octets: its length field cannot say it
        PathAttributes(communities=tuple(range(16_384))),
        # each attribute fits, the attribute list does not (40000 + 36000 octets)
        PathAttributes(communities=tuple(range(10_000)), large_communities=((1, 2, 3),) * 3000),
    ],
    ids=["one-attribute", "all-attributes"],
)
def test_attributes_past_65535_octets_leave_every_prefix_too_large(
    family: Family, attrs: PathAttributes
) -> None:
    """Once these raised struct.error out of the packer (the exporter's caller), instead of
    reporting the routes as too large (found by ``make fuzz``: ``tests/fuzz/found/export-*``)."""
    prefixes = [bytes((8, 10)), bytes((0,))]
    next_hop = bytes(range(1, 1 + family.address_len))
    messages, too_large = pack_announce(
        family, attrs, next_hop, prefixes, True, MAX_EXTENDED_MESSAGE_LEN
    )
    assert messages == [] and too_large == prefixes
    assert nlri_room(family, attrs, next_hop, True, MAX_EXTENDED_MESSAGE_LEN) < 0
    with pytest.raises(ValueError):
        encode_update(
            Update(attributes=attrs), CodecOptions(max_message_len=MAX_EXTENDED_MESSAGE_LEN)
        )
