"""The framer: any chunking of a stream gives the same frames; headers are checked early."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpmux.wire import KEEPALIVE, BGPError, CodecOptions, Framer, encode_message
from bgpmux.wire.constants import MARKER, MAX_MESSAGE_LEN

from .wire_strategies import messages

Frames = list[tuple[int, bytes]]
STREAM = st.lists(messages(), min_size=1, max_size=6)


def encode_all(msgs: list[object]) -> bytes:
    out = b""
    for msg in msgs:
        try:
            out += encode_message(msg, CodecOptions())  # type: ignore[arg-type]
        except ValueError:  # too big for 4096: leave it out
            continue
    return out


def frames_of(data: bytes) -> Frames:
    """Reference split, straight from the headers."""
    out: Frames = []
    pos = 0
    while pos < len(data):
        length = struct.unpack_from("!H", data, pos + 16)[0]
        out.append((data[pos + 18], data[pos + 19 : pos + length]))
        pos += length
    return out


def feed_in(chunks: list[bytes]) -> tuple[Frames, Framer]:
    framer = Framer()
    frames: Frames = []
    for chunk in chunks:
        frames += framer.feed(chunk)
    return frames, framer


@settings(max_examples=60, deadline=None)
@given(msgs=STREAM)
def test_whole_and_byte_at_a_time_agree(msgs: list[object]) -> None:
    data = encode_all(msgs)
    expected = frames_of(data)
    assert feed_in([data])[0] == expected
    frames, framer = feed_in([data[i : i + 1] for i in range(len(data))])
    assert frames == expected
    assert framer.buffered == 0


@settings(max_examples=100, deadline=None)
@given(msgs=STREAM, cuts=st.lists(st.integers(0, 10_000), max_size=12), trail=st.data())
def test_random_chunkings_and_trailing_bytes(
    msgs: list[object], cuts: list[int], trail: st.DataObject
) -> None:
    data = encode_all(msgs)
    expected = frames_of(data)
    # Trailing bytes: the start of one more message, never complete.
    extra = encode_message(KEEPALIVE) + encode_all([trail.draw(messages())])
    partial = extra[: trail.draw(st.integers(0, len(extra) - 1))]
    stream = data + partial
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    frames, framer = feed_in(chunks)
    keepalive_done = len(partial) >= 19
    assert frames == expected + ([(4, b"")] if keepalive_done else [])
    assert framer.buffered == len(partial) - (19 if keepalive_done else 0)


def header(length: int, kind: int, marker: bytes = MARKER) -> bytes:
    return marker + struct.pack("!HB", length, kind)


def error_of(data: bytes, framer: Framer | None = None) -> BGPError:
    with pytest.raises(BGPError) as info:
        (framer or Framer()).feed(data)
    return info.value


@pytest.mark.parametrize("length", [MAX_MESSAGE_LEN + 1, 0xFFFF])
def test_too_long_is_refused_from_the_header_alone(length: int) -> None:
    """The buffer is bounded: the 19th octet of the header is enough to refuse it."""
    framer = Framer()
    data = header(length, 2)
    for octet in data[:-1]:
        assert framer.feed(bytes((octet,))) == []
    err = error_of(data[-1:], framer)
    assert (err.code, err.subcode, err.data) == (1, 2, struct.pack("!H", length))
    assert framer.buffered <= MAX_MESSAGE_LEN


def test_extended_framer_takes_what_the_default_refuses() -> None:
    body = b"\x00\x00\x00\x00" + b"\x00" * 5000  # not a valid UPDATE, but a valid frame
    data = header(19 + len(body), 2) + body
    assert error_of(data).subcode == 2
    assert Framer(65535).feed(data) == [(2, body)]


def test_bad_marker() -> None:
    err = error_of(header(19, 4, b"\xff" * 15 + b"\xfe"))
    assert (err.code, err.subcode) == (1, 1)


@pytest.mark.parametrize("kind", [0, 6, 255])
def test_bad_type(kind: int) -> None:
    err = error_of(header(23, kind) + b"\x00" * 4)
    assert (err.code, err.subcode, err.data) == (1, 3, bytes((kind,)))


@pytest.mark.parametrize(
    ("length", "kind"),
    [
        (0, 4),
        (18, 4),  # shorter than a header
        (20, 4),  # KEEPALIVE with a body
        (28, 1),  # OPEN shorter than 29
        (22, 2),  # UPDATE shorter than 23
        (20, 3),  # NOTIFICATION shorter than 21
        (22, 5),  # ROUTE-REFRESH shorter than 23
        (4097, 2),
    ],
)
def test_bad_lengths(length: int, kind: int) -> None:
    err = error_of(header(length, kind) + b"\x00" * 10)
    assert (err.code, err.subcode, err.data) == (1, 2, struct.pack("!H", length))


def test_error_after_good_frames_still_raises() -> None:
    good = encode_message(KEEPALIVE)
    framer = Framer()
    assert framer.feed(good) == [(4, b"")]
    assert error_of(good[:-1] + b"\x00", framer).code == 1
