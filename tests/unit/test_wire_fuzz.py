"""The fuzz invariant (as h11's): any input either decodes or raises ``BGPError``.

IndexError, struct.error, ValueError, UnicodeError... escaping from the decoder are bugs.
Whatever decodes must also survive the accessors and re-encode to bytes that decode the same.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgpmux.wire import (
    BGPError,
    CodecOptions,
    Framer,
    Message,
    Open,
    Update,
    decode_body,
    encode_message,
)
from bgpmux.wire.constants import MARKER, MAX_EXTENDED_MESSAGE_LEN
from bgpmux.wire.messages import decode_open, decode_update

from .wire_strategies import messages, opens, updates

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
OPTIONS = st.sampled_from([CodecOptions(asn4=True), CodecOptions(asn4=False)])
BIG = CodecOptions(max_message_len=MAX_EXTENDED_MESSAGE_LEN)


def check_decoded(msg: Message, options: CodecOptions) -> None:
    """What decodes is usable, and re-encodes to something that decodes to the same value."""
    if isinstance(msg, Update):
        list(msg.announcements())
        list(msg.withdrawals())
        msg.end_of_rib()
        if msg.treat_as_withdraw is not None:
            return
    again = BIG if options.asn4 else CodecOptions(asn4=False, max_message_len=65535)
    try:
        data = encode_message(msg, again)
    except ValueError:
        assert isinstance(msg, Open)  # capabilities beyond 255 octets (RFC 9072 input)
        return
    frames = Framer(65535).feed(data)
    assert len(frames) == 1
    assert decode_body(*frames[0], again) == msg


def decode_stream(data: bytes, options: CodecOptions) -> None:
    try:
        for kind, body in Framer().feed(data):
            msg = decode_body(kind, body, options)
            check_decoded(msg, options)
    except BGPError:
        pass


def decode_or_error(kind: int, body: bytes, options: CodecOptions) -> None:
    try:
        msg = decode_body(kind, body, options)
    except BGPError:
        return
    check_decoded(msg, options)


@FUZZ
@given(data=st.binary(max_size=300), options=OPTIONS)
def test_any_bytes_through_the_framer(data: bytes, options: CodecOptions) -> None:
    decode_stream(data, options)


@FUZZ
@given(body=st.binary(max_size=300), kind=st.integers(1, 5), options=OPTIONS)
def test_any_body_of_any_type(body: bytes, kind: int, options: CodecOptions) -> None:
    decode_or_error(kind, body, options)


@FUZZ
@given(body=st.binary(max_size=400), options=OPTIONS)
def test_decode_update_on_random_bodies(body: bytes, options: CodecOptions) -> None:
    try:
        msg = decode_update(body, options)
    except BGPError:
        return
    check_decoded(msg, options)


@FUZZ
@given(body=st.binary(max_size=300))
def test_decode_open_on_random_bodies(body: bytes) -> None:
    # Mostly plausible OPEN heads, so the parameter parser is reached.
    for candidate in (body, b"\x04" + body[:9].ljust(9, b"\x00") + body[9:]):
        try:
            msg = decode_open(candidate)
        except BGPError:
            continue
        check_decoded(msg, CodecOptions())


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A valid message, then damaged: octets flipped or overwritten, cut, extended, lengths
    (of the header, or any two octets that may be an inner length) rewritten. With ``fix``
    the header length is made right again so the damage reaches the body decoders."""
    msg = draw(st.one_of(updates(), opens(), messages()))
    try:
        data = bytearray(encode_message(msg, CodecOptions()))  # type: ignore[arg-type]
    except ValueError:
        data = bytearray(encode_message(Update()))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "set", "cut", "extend", "length", "u16"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[pos:]
        elif action == "extend":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
        elif action == "length" and len(data) >= 18:
            data[16:18] = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
        elif action == "u16" and len(data) >= pos + 2:
            data[pos : pos + 2] = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
    fix = draw(st.booleans())
    if fix and len(data) >= 19:
        data[:16] = MARKER
        data[16:18] = struct.pack("!H", min(len(data), 0xFFFF))
    return bytes(data), fix


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutated(), options=OPTIONS)
def test_mutated_valid_messages(case: tuple[bytes, bool], options: CodecOptions) -> None:
    data, fix = case
    decode_stream(data, options)
    if fix and len(data) >= 19:
        decode_or_error(data[18], data[19:], options)
