"""Byte-level mutations of whole messages: bit flips, interesting octets, insertions, deletions,
duplicated runs, cuts, splices with another input, and tweaks of the length fields that a
tolerant walk of the message finds (header, UPDATE lengths, attribute lengths, OPEN parameter
and capability lengths, AS_PATH segment counts, MP next hop lengths, prefix lengths)."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

from bgpmux.wire.constants import HEADER_LEN, AttrType, MessageType

Field = tuple[int, int]  # (offset, width in octets) of a length field
_INTERESTING = (0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 32, 33, 64, 127, 128, 129, 254, 255)


def _prefix_lengths(data: bytes, pos: int, end: int, out: list[Field]) -> None:
    while pos < end:
        out.append((pos, 1))
        pos += 1 + ((data[pos] + 7) >> 3)


def _update_fields(data: bytes, out: list[Field]) -> None:
    base = HEADER_LEN
    end = len(data)
    if base + 4 > end:
        return
    out.append((base, 2))
    wlen = int.from_bytes(data[base : base + 2], "big")
    _prefix_lengths(data, base + 2, min(base + 2 + wlen, end), out)
    alen_at = base + 2 + wlen
    if alen_at + 2 > end:
        return
    out.append((alen_at, 2))
    pos = alen_at + 2
    attrs_end = min(pos + int.from_bytes(data[alen_at : alen_at + 2], "big"), end)
    while pos + 3 <= attrs_end:
        flags, code = data[pos], data[pos + 1]
        width = 2 if flags & 0x10 else 1
        out.append((pos + 2, width))
        start = pos + 2 + width
        stop = min(start + int.from_bytes(data[pos + 2 : start], "big"), attrs_end)
        if code in (AttrType.AS_PATH, AttrType.AS4_PATH):
            seg = start
            while seg + 2 <= stop:
                out.append((seg + 1, 1))
                seg += 2 + data[seg + 1] * 4
        elif code == AttrType.MP_REACH_NLRI and start + 4 <= stop:
            out.append((start + 3, 1))
            _prefix_lengths(data, start + 5 + data[start + 3], stop, out)
        elif code == AttrType.MP_UNREACH_NLRI:
            _prefix_lengths(data, start + 3, stop, out)
        pos = stop
    _prefix_lengths(data, attrs_end, end, out)


def _open_fields(data: bytes, out: list[Field]) -> None:
    pos = HEADER_LEN + 9
    if pos >= len(data):
        return
    out.append((pos, 1))
    pos += 1
    while pos + 2 <= len(data):
        out.append((pos + 1, 1))
        stop = min(pos + 2 + data[pos + 1], len(data))
        cap = pos + 2
        while cap + 2 <= stop:
            out.append((cap + 1, 1))
            cap += 2 + data[cap + 1]
        pos = stop


def length_fields(data: bytes) -> list[Field]:
    """The length fields of a whole message, as far as its own lengths can be followed."""
    out: list[Field] = [(16, 2)] if len(data) >= HEADER_LEN else []
    if len(data) >= HEADER_LEN:
        if data[18] == MessageType.UPDATE:
            _update_fields(data, out)
        elif data[18] == MessageType.OPEN:
            _open_fields(data, out)
    return out


def _tweak_length(rng: random.Random, data: bytearray, start: int) -> None:
    fields = [f for f in length_fields(bytes(data)) if f[0] >= start and f[0] + f[1] <= len(data)]
    if not fields:
        return
    pos, width = rng.choice(fields)
    old = int.from_bytes(data[pos : pos + width], "big")
    top = (1 << (8 * width)) - 1
    roll = rng.random()
    if roll < 0.6:
        new = old + rng.choice((-3, -2, -1, 1, 2, 3, 4, -4, 8, -8))
    elif roll < 0.8:
        new = rng.choice((0, 1, top, top - 1, len(data) - start, len(data)))
    else:
        new = rng.randint(0, top)
    data[pos : pos + width] = (new & top).to_bytes(width, "big")


def _fix_header(data: bytearray) -> None:
    if len(data) >= HEADER_LEN:
        data[:16] = b"\xff" * 16
        data[16:18] = struct.pack("!H", min(len(data), 0xFFFF))


def mutate(
    rng: random.Random, data: bytes, others: Sequence[bytes], start: int = 0, fix: bool = True
) -> bytes:
    """``data`` damaged 1 to 5 times, never before ``start``; with ``fix``, the header's marker
    and length are made right again (so that the damage reaches the body decoders)."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 5))):
        op = rng.choice(_OPS)
        op(rng, out, start, others)
    if fix and rng.random() < 0.8:
        _fix_header(out)
    return bytes(out)


def _pos(rng: random.Random, data: bytearray, start: int, extra: int = 0) -> int | None:
    top = len(data) - 1 + extra
    return None if top < start else rng.randint(start, top)


def _flip(rng: random.Random, data: bytearray, start: int, _others: Sequence[bytes]) -> None:
    pos = _pos(rng, data, start)
    if pos is not None:
        data[pos] ^= 1 << rng.randrange(8)


def _octet(rng: random.Random, data: bytearray, start: int, _others: Sequence[bytes]) -> None:
    pos = _pos(rng, data, start)
    if pos is not None:
        data[pos] = rng.choice(_INTERESTING) if rng.random() < 0.6 else rng.randrange(256)


def _insert(rng: random.Random, data: bytearray, start: int, _others: Sequence[bytes]) -> None:
    pos = _pos(rng, data, start, extra=1)
    if pos is not None:
        data[pos:pos] = rng.randbytes(rng.choice((1, 1, 2, 4, 8, 17)))


def _delete(rng: random.Random, data: bytearray, start: int, _others: Sequence[bytes]) -> None:
    pos = _pos(rng, data, start)
    if pos is not None:
        del data[pos : pos + rng.choice((1, 1, 2, 3, 4, 8, 16))]


def _duplicate(rng: random.Random, data: bytearray, start: int, _others: Sequence[bytes]) -> None:
    pos = _pos(rng, data, start)
    if pos is not None:
        size = rng.randint(1, 32)
        data[pos:pos] = data[pos : pos + size]


def _cut(rng: random.Random, data: bytearray, start: int, _others: Sequence[bytes]) -> None:
    pos = _pos(rng, data, start, extra=1)
    if pos is not None:
        del data[pos:]


def _length(rng: random.Random, data: bytearray, start: int, _others: Sequence[bytes]) -> None:
    _tweak_length(rng, data, start)


def _splice(rng: random.Random, data: bytearray, start: int, others: Sequence[bytes]) -> None:
    pos = _pos(rng, data, start, extra=1)
    if pos is None or not others:
        return
    other = rng.choice(others)
    cut = rng.randint(min(start, len(other)), len(other))
    data[pos:] = other[cut:]


_OPS: tuple[Callable[[random.Random, bytearray, int, Sequence[bytes]], None], ...] = (
    _flip,
    _flip,
    _octet,
    _insert,
    _delete,
    _duplicate,
    _cut,
    _length,
    _length,
    _length,
    _splice,
)
