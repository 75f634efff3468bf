"""The invariants one input must keep; each check returns a short outcome signature (what the
codec made of the input, numbers left out) or raises ``Finding``.

- The framer and the decoders either return a value or raise ``BGPError``; nothing else.
- Feeding a stream whole or in pieces gives the same frames and the same error, and the framer
  never holds a whole message's worth of octets after a ``feed``.
- What decodes survives its accessors (every prefix reads as text) and re-encodes (with the
  same 4-octet-AS setting and the extended maximum) to bytes that decode to an equal value,
  announcing and withdrawing the same prefixes, and that encode again to the same bytes; an
  encoder ``ValueError`` is accepted only when the message really does not fit. One value
  cannot come back the same, by RFC 6793: on a 2-octet session, an AS path with a
  confederation segment past its start and a 4-octet AS; what it comes back as must then
  round-trip exactly.
- An ``AttributeCache`` changes nothing but sharing.
"""

from __future__ import annotations

import re
import struct
import traceback
from collections.abc import Iterable
from itertools import pairwise

from bgpmux.wire import BGPError, CodecOptions, Framer, Message, Open, Update, prefix_to_str
from bgpmux.wire.capabilities import encode_capabilities
from bgpmux.wire.constants import (
    HEADER_LEN,
    MAX_EXTENDED_MESSAGE_LEN,
    MAX_MESSAGE_LEN,
    SegmentType,
)
from bgpmux.wire.messages import AttributeCache, decode_body, decode_open, decode_update
from bgpmux.wire.messages import encode_message as encode

ALL_OPTIONS = tuple(
    CodecOptions(asn4=asn4, max_message_len=most)
    for asn4 in (True, False)
    for most in (MAX_MESSAGE_LEN, MAX_EXTENDED_MESSAGE_LEN)
)
CUTS = (1, 3, 7, 19, 64, 1000)  # the framer is fed in pieces of these sizes
_DIGITS = re.compile(r"\d+|0x[0-9a-f]+")


class Finding(Exception):
    """An input broke an invariant; the text says which, and where for a stray exception.
    ``key`` names the kind of finding (the text up to its first colon unless given): inputs
    with the same key are taken as the same bug when findings are counted and shrunk."""

    def __init__(self, text: str, key: str | None = None) -> None:
        super().__init__(text)
        self.key = key if key is not None else text.split(":", 1)[0]


def unexpected(exc: BaseException, during: str) -> Finding:
    """A ``Finding`` for an exception that is not ``BGPError``, naming the line that raised it."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
    name = type(exc).__qualname__
    if type(exc).__module__ not in ("builtins", "bgpmux.wire.errors"):
        name = f"{type(exc).__module__}.{name}"
    key = f"{during.split(' of ', 1)[0]}: {name}{where}"
    return Finding(f"{during}: {name}{where}: {exc}", key)


def template(text: str) -> str:
    """``text`` with its numbers replaced by ``#``: the same reason for other values."""
    return _DIGITS.sub("#", text)


def error_signature(error: BGPError) -> str:
    return f"error {error.code}/{error.subcode} {template(error.reason)}"


def update_signature(msg: Update) -> str:
    shape = "".join(
        mark
        for mark, there in (
            ("W", msg.withdrawn),
            ("A", msg.attributes is not None),
            ("N", msg.nlri),
            ("R", msg.mp_reach is not None),
            ("U", msg.mp_unreach is not None),
        )
        if there
    )
    notes = ",".join(sorted({template(n) for n in msg.notes}))
    withdraw = template(msg.treat_as_withdraw or "")
    return f"update {shape} {withdraw} {notes}".rstrip()


def check_update_body(body: bytes, options: CodecOptions, cache: AttributeCache | None) -> str:
    """``decode_update`` on ``body``; with ``cache``, decoded twice more through it (a miss,
    then maybe a hit), each time equal to the plain decode."""
    try:
        msg = decode_update(body, options)
    except BGPError as error:
        return error_signature(error)
    except Exception as exc:
        raise unexpected(exc, "decode_update") from exc
    if cache is not None:
        for _ in range(2):
            try:
                cached = decode_update(body, options, cache)
            except Exception as exc:
                raise unexpected(exc, "decode_update with a cache") from exc
            if cached != msg or (cached.treat_as_withdraw, cached.notes) != (
                msg.treat_as_withdraw,
                msg.notes,
            ):
                raise Finding(f"the attribute cache changed the result: {cached!r} != {msg!r}")
    round_trip(msg, options)
    return update_signature(msg)


def check_open_body(body: bytes) -> str:
    """``decode_open`` on ``body``."""
    try:
        msg = decode_open(body)
    except BGPError as error:
        return error_signature(error)
    except Exception as exc:
        raise unexpected(exc, "decode_open") from exc
    round_trip(msg, ALL_OPTIONS[0])
    caps = msg.capabilities
    shape = "".join(
        mark
        for mark, there in (
            ("M", caps.multiprotocol),
            ("R", caps.route_refresh),
            ("E", caps.enhanced_route_refresh),
            ("4", caps.four_octet_as is not None),
            ("G", caps.graceful_restart is not None),
            ("P", caps.add_path),
            ("X", caps.extended_message),
            ("U", caps.unknown),
        )
        if there
    )
    return f"open {shape}"


def _pieces(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def _feed(framer: Framer, piece: bytes) -> tuple[list[tuple[int, bytes]], BGPError | None]:
    try:
        return framer.feed(piece), None
    except BGPError as error:
        return [], error
    except Exception as exc:
        raise unexpected(exc, "Framer.feed") from exc


def check_stream(data: bytes, options: CodecOptions, cuts: Iterable[int] = ()) -> str:
    """The framer (of ``options.max_message_len``) over ``data`` fed whole and cut at ``cuts``,
    then every frame decoded with ``options``."""
    most = options.max_message_len
    whole, error = _feed(Framer(most), data)
    framer = Framer(most)
    frames: list[tuple[int, bytes]] = []
    piece_error: BGPError | None = None
    for piece in _pieces(data, cuts):
        got, piece_error = _feed(framer, piece)
        if piece_error is not None:
            break
        frames += got
        if framer.buffered >= most:
            raise Finding(f"the framer holds {framer.buffered} octets after a feed")
    if piece_error != error or (error is None and frames != whole):
        raise Finding(f"fed in pieces: {len(frames)} frames, {piece_error!r}; whole: {error!r}")
    out = [error_signature(error)] if error is not None else []
    for kind, body in frames:
        if not 0 <= len(body) <= most - HEADER_LEN:
            raise Finding(f"a frame of {len(body)} octets under a maximum of {most}")
        try:
            msg = decode_body(kind, body, options)
        except BGPError as err:
            out.append(error_signature(err))
            continue
        except Exception as exc:
            raise unexpected(exc, f"decode_body of type {kind}") from exc
        round_trip(msg, options)
        out.append(update_signature(msg) if isinstance(msg, Update) else type(msg).__name__)
    return "stream " + " ".join(sorted(set(out)))


def _too_big(msg: Message, options: CodecOptions) -> bool:
    """Whether ``msg`` truly does not fit: an UPDATE over the extended maximum, or an OPEN whose
    capabilities overflow the one-octet parameter length (RFC 9072 is not sent)."""
    if isinstance(msg, Open):
        try:
            return len(encode_capabilities(msg.capabilities)) + 2 > 255
        except ValueError:
            return True
    if isinstance(msg, Update):
        huge = CodecOptions(asn4=options.asn4, max_message_len=1 << 30)
        try:
            return len(encode(msg, huge)) > MAX_EXTENDED_MESSAGE_LEN
        except (ValueError, struct.error):  # an attribute, or all of them, past 65535 octets
            return True
    return False


def round_trip(msg: Message, options: CodecOptions) -> None:
    """``msg`` through its accessors, encoded, framed, decoded and encoded again."""
    try:
        _round_trip(msg, options)
    except Finding:
        raise
    except Exception as exc:
        raise unexpected(exc, f"round trip of {msg!r}"[:400]) from exc


def _confederation_inside(msg: Message, options: CodecOptions) -> bool:
    """Whether ``msg`` cannot come back the same over a 2-octet session: a confederation
    segment after a plain one, with a 4-octet AS in the path. AS4_PATH cannot carry the
    segment (RFC 6793 §3), and only leading ones are put back in front of it (§4.2.3)."""
    if options.asn4 or not isinstance(msg, Update) or msg.attributes is None:
        return False
    plain, inside, big = False, False, False
    for kind, asns in msg.attributes.as_path:
        if kind in (SegmentType.AS_SET, SegmentType.AS_SEQUENCE):
            plain = True
            big = big or any(asn > 0xFFFF for asn in asns)
        else:
            inside = inside or plain
    return inside and big


def _round_trip(msg: Message, options: CodecOptions, lossy: bool = True) -> None:
    if isinstance(msg, Update):
        for family, _attrs, _next_hop, prefixes in msg.announcements():
            for prefix in prefixes:  # as the RIB, policy and logs will read it
                prefix_to_str(family, prefix)
        for family, prefixes in msg.withdrawals():
            for prefix in prefixes:
                prefix_to_str(family, prefix)
        msg.end_of_rib()
        if msg.treat_as_withdraw is not None:  # its NLRI are withdrawals; nothing to re-send
            return
    again_with = wide(options.asn4)
    try:
        data = encode(msg, again_with)
    except ValueError:
        if _too_big(msg, options):
            return
        raise
    framer = Framer(MAX_EXTENDED_MESSAGE_LEN)
    frames = framer.feed(data)
    if len(frames) != 1 or framer.buffered:
        raise Finding(f"{msg!r} encoded to {len(frames)} frames")
    again = decode_body(*frames[0], again_with)
    if lossy and _confederation_inside(msg, options):
        _round_trip(again, options, lossy=False)  # what came back must now come back the same
        return
    if again != msg:
        raise Finding(f"round trip changed the value: {msg!r} became {again!r}")
    if isinstance(msg, Update) and isinstance(again, Update):
        if again.treat_as_withdraw is not None or again.notes:
            raise Finding(f"our encoding of {msg!r} decodes with {again.treat_as_withdraw!r}")
        same = (
            list(msg.announcements()) == list(again.announcements())
            and list(msg.withdrawals()) == list(again.withdrawals())
            and msg.end_of_rib() == again.end_of_rib()
        )
        if not same:
            raise Finding(f"round trip changed what {msg!r} announces or withdraws")
    if encode(again, again_with) != data:
        raise Finding(f"encoding is not stable for {msg!r}")


def check_value(msg: Message, options: CodecOptions) -> None:
    """A canonical value (from ``values``) must come back exactly through the codec."""
    round_trip(msg, options)


def wide(asn4: bool) -> CodecOptions:
    return CodecOptions(asn4=asn4, max_message_len=MAX_EXTENDED_MESSAGE_LEN)


def check_bytes(data: bytes) -> list[str]:
    """Every check, with every option, on ``data`` as a stream (fed whole and in pieces of
    each size of ``CUTS``) and on ``data[19:]`` as an OPEN body and as an UPDATE body (what the
    replay test runs on the corpus and the findings)."""
    out = [
        check_stream(data, o, range(0, len(data), step))
        for o in ALL_OPTIONS
        for step in CUTS
        if step > 1 or len(data) <= 2048
    ]
    body = data[HEADER_LEN:]
    out.append(check_open_body(body))
    out += [check_update_body(body, o, AttributeCache()) for o in ALL_OPTIONS]
    return out
