"""The shortcuts a lone UPDATE takes (one prefix, one message, the collector settled after
start-up) give what the general paths give."""

from __future__ import annotations

import gc

import pytest

from bgpmux import daemon
from bgpmux.wire import BGPError
from bgpmux.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpmux.wire.prefix import decode_prefixes


@pytest.mark.parametrize(
    "data",
    [
        b"\x20\x0a\x00\x00\x01",  # /32
        b"\x18\x0a\x01\x02",  # /24
        b"\x00",  # the default route
        b"\x1b\x0a\x01\x02\xe0",  # /27
        b"\x40\x20\x01\x0d\xb8\x00\x01\x00\x02",  # an IPv6 /64
    ],
)
def test_a_lone_prefix_is_taken_as_it_is(data: bytes) -> None:
    family = IPV6_UNICAST if data[0] == 0x40 else IPV4_UNICAST
    assert decode_prefixes(data, family) == (data,)
    # the general path (two prefixes) agrees on each
    assert decode_prefixes(data + data, family) == (data, data)


def test_a_lone_prefix_with_host_bits_is_masked() -> None:
    assert decode_prefixes(b"\x1b\x0a\x01\x02\xe7", IPV4_UNICAST) == (b"\x1b\x0a\x01\x02\xe0",)


@pytest.mark.parametrize(
    "data",
    [b"\x21\x0a\x00\x00\x01\x00", b"\x20\x0a\x00\x00", b"\x81" + bytes(17)],
)
def test_a_bad_lone_prefix_is_an_error(data: bytes) -> None:
    with pytest.raises(BGPError):
        decode_prefixes(data, IPV4_UNICAST if data[0] != 0x81 else IPV6_UNICAST)


def test_settle_gc_freezes_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        daemon.settle_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (daemon.GC_YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
