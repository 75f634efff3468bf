"""The bulk fast paths (same-length NLRI runs, uniform packing, a single covering prefix rule,
one-path grouping) agree with the straightforward per-prefix forms they shortcut, on batches
built to hit them and on batches that just miss them."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpmux.core.peers import group_by_path
from bgpmux.policy.prefix_list import PrefixList, PrefixRule
from bgpmux.rib.paths import Path, Source
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, BGPError, Family, PathAttributes
from bgpmux.wire.packing import _chunks
from bgpmux.wire.prefix import decode_prefixes

from .wire_strategies import FAMILIES, prefix_of


def _decode_slow(data: bytes, family: Family) -> list[bytes] | str:
    """One prefix at a time, as RFC 4271 §4.3 reads; a string where it is malformed."""
    max_bits = 8 * family.address_len
    out, pos = [], 0
    while pos < len(data):
        plen = data[pos]
        stop = pos + 1 + (plen + 7) // 8
        if plen > max_bits or stop > len(data):
            return "error"
        raw = bytearray(data[pos:stop])
        if plen & 7:
            raw[-1] &= (0xFF << (8 - (plen & 7))) & 0xFF
        out.append(bytes(raw))
        pos = stop
    return out


def _decode_fast(data: bytes, family: Family) -> list[bytes] | str:
    try:
        return list(decode_prefixes(data, family))
    except BGPError:
        return "error"


@st.composite
def same_length_nlri(draw: st.DrawFn) -> tuple[Family, bytes]:
    """A run of NLRI of one length, host bits possibly set, maybe with a tail that breaks it."""
    family = draw(FAMILIES)
    plen = draw(st.integers(0, 8 * family.address_len + 1))
    size = (plen + 7) // 8
    body = b"".join(
        bytes((plen,)) + draw(st.binary(min_size=size, max_size=size))
        for _ in range(draw(st.integers(1, 30)))
    )
    return family, body + draw(st.sampled_from([b"", b"\x08", b"\x08\x0a", b"\x20\x0a"]))


@settings(max_examples=300)
@given(same_length_nlri())
def test_decode_same_length_runs_agree(case: tuple[Family, bytes]) -> None:
    family, data = case
    assert _decode_fast(data, family) == _decode_slow(data, family)


@settings(max_examples=200)
@given(FAMILIES, st.binary(max_size=60))
def test_decode_any_bytes_agree(family: Family, data: bytes) -> None:
    assert _decode_fast(data, family) == _decode_slow(data, family)


@pytest.mark.parametrize("count", [1024, 1025, 3000])
def test_decode_long_runs_agree(count: int) -> None:
    """Runs past what one cached struct cuts (an extended message's worth, RFC 8654)."""
    data = b"".join(b"\x19" + i.to_bytes(4, "big") for i in range(count))
    assert _decode_fast(data, IPV4_UNICAST) == _decode_slow(data, IPV4_UNICAST)
    data = b"".join(b"\x18" + i.to_bytes(3, "big") for i in range(count))
    assert _decode_fast(data, IPV4_UNICAST) == _decode_slow(data, IPV4_UNICAST)


def _chunks_slow(prefixes: list[bytes], room: int, path_id: bytes) -> tuple[list[bytes], list]:
    out: list[bytes] = []
    too_large: list[bytes] = []
    run: list[bytes] = []
    used = 0
    for prefix in prefixes:
        size = len(prefix) + len(path_id)
        if size > room:
            too_large.append(prefix)
            continue
        if used + size > room:
            out.append(b"".join(path_id + p for p in run))
            run, used = [], 0
        run.append(prefix)
        used += size
    if run:
        out.append(b"".join(path_id + p for p in run))
    return out, too_large


@st.composite
def batches(draw: st.DrawFn) -> list[bytes]:
    """Mostly one prefix length (the fast path), sometimes with a few others in it."""
    family = draw(FAMILIES)
    plen = draw(st.integers(0, 8 * family.address_len))
    bits = 8 * family.address_len
    addresses = st.integers(0, (1 << bits) - 1).map(lambda a: a >> (bits - plen) << (bits - plen))
    same = [
        bytes((plen,)) + address.to_bytes(bits // 8, "big")[: (plen + 7) // 8]
        for address in draw(st.lists(addresses, max_size=60))
    ]
    for odd in draw(st.lists(prefix_of(family), max_size=3)):  # lengths that may add up
        same.insert(draw(st.integers(0, len(same))), odd)
    return same


@settings(max_examples=300)
@given(batches(), st.integers(1, 120), st.sampled_from([b"", b"\x00\x00\x00\x07"]))
def test_chunks_agree(prefixes: list[bytes], room: int, path_id: bytes) -> None:
    too_large: list[bytes] = []
    out = _chunks(prefixes, room, too_large, path_id)
    assert (out, too_large) == _chunks_slow(prefixes, room, path_id)


RULES = st.sampled_from(
    [
        "10.128.0.0/9 le 32",
        "10.0.0.0/8 ge 24 le 32",
        "10.1.2.0/24 le 32",
        "0.0.0.0/0 le 32",
        "10.1.2.3/32",
        "2001:db8::/32 le 128",
        "2001:db8:8000::/33 ge 48",
    ]
)


@st.composite
def under_rule(draw: st.DrawFn) -> tuple[PrefixRule, Family, list[bytes]]:
    """A single rule and a batch of (mostly) one length drawn near (mostly inside) its network."""
    rule = PrefixRule.parse(draw(RULES))
    family = IPV4_UNICAST if rule.network.version == 4 else IPV6_UNICAST
    bits = rule.network.max_prefixlen
    plen = draw(st.integers(0, bits))
    base = int(rule.network.network_address)
    prefixes = []
    for _ in range(draw(st.integers(1, 40))):
        address = base | draw(st.integers(0, (1 << (bits - rule.network.prefixlen)) - 1))
        if draw(st.integers(0, 20)) == 0:
            address ^= 1 << draw(st.integers(0, bits - 1))
        length = plen if draw(st.integers(0, 10)) else draw(st.integers(0, bits))
        net = ipaddress.ip_network((address, length), strict=False)
        packed = net.network_address.packed[: (length + 7) // 8]
        prefixes.append(bytes((length,)) + packed)
    return rule, family, prefixes


@settings(max_examples=300)
@given(under_rule())
def test_split_single_rule_agrees_with_matches(case: tuple[PrefixRule, Family, list]) -> None:
    rule, family, prefixes = case
    plist = PrefixList([rule])
    expected = [p for p in prefixes if plist.matches(family, p)]
    assert plist.split(family, prefixes) == (
        expected,
        [p for p in prefixes if not plist.matches(family, p)],
    )


_SOURCE = Source("client", False, 0, 0)
_PATHS = [Path(_SOURCE, PathAttributes(med=i), b"\x0a\x00\x00\x01") for i in range(3)]


@pytest.mark.parametrize(
    "values",
    [[None] * 4, [_PATHS[0]] * 4, [_PATHS[0], None, _PATHS[1], _PATHS[0]], [None, _PATHS[2]]],
)
def test_group_by_path_agrees(values: list[Path | None]) -> None:
    changes = {bytes((32, i, 0, 0, 1)): v for i, v in enumerate(values)}
    by_path, withdrawn = group_by_path(changes)
    assert withdrawn == [p for p, v in changes.items() if v is None]
    expected: dict[Path, list[bytes]] = {}
    for prefix, path in changes.items():
        if path is not None:
            expected.setdefault(path, []).append(prefix)
    assert dict(by_path) == expected
    assert list(by_path) == list(expected)


def test_split_mixed_lengths_that_add_up_to_one_length() -> None:
    """A /16 and a /32 take as many octets as two /24s: not a batch of one length."""
    plist = PrefixList([PrefixRule.parse("0.0.0.0/0 le 24")])
    slash24, slash16, slash32 = b"\x18\x0a\x01\x02", b"\x10\x0a\x01", b"\x20\x0a\x01\x02\x03"
    assert plist.split(IPV4_UNICAST, [slash24, slash16, slash32]) == (
        [slash24, slash16],
        [slash32],
    )
