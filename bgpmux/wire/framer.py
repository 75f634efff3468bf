"""Turns a byte stream into (type, body) frames, with a bounded buffer (RFC 4271 §4.1, §6.1)."""

from __future__ import annotations

import struct

from .constants import HEADER_LEN, MARKER, MAX_MESSAGE_LEN, MessageType
from .errors import HeaderSubcode, header_error

# Minimum length of each message type, header included (RFC 4271 §6.1).
_MIN_LEN: dict[int, int] = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}


def _bad_length(length: int) -> Exception:
    return header_error(
        HeaderSubcode.BAD_MESSAGE_LENGTH, struct.pack("!H", length), f"length {length}"
    )


class Framer:
    """Feed bytes in, take whole frames out. Header errors raise ``BGPError``.

    A header is checked as soon as its 19 octets are in, so the buffer never holds more than
    one message (of at most ``max_message_len`` octets, header included) beyond what the last
    ``feed`` brought. The owner may raise ``max_message_len`` once RFC 8654 is agreed.
    """

    def __init__(self, max_message_len: int = MAX_MESSAGE_LEN) -> None:
        self.max_message_len = max_message_len
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Append ``data``; return every complete frame as (type code, body without the header).

        Raises ``BGPError``, a Message Header Error (RFC 4271 §6.1), at the first bad header;
        frames before it in the same call are lost with the exception.
        """
        buf = self._buffer
        if not buf and len(data) >= HEADER_LEN:
            # One whole message and nothing held: the common read of a quiet session.
            length, kind = self._check_header(data, 0)
            if length == len(data):
                return [(kind, data[HEADER_LEN:])]
        buf += data
        frames: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        try:
            while end - pos >= HEADER_LEN:
                length, kind = self._check_header(buf, pos)
                if end - pos < length:
                    break
                frames.append((kind, bytes(buf[pos + HEADER_LEN : pos + length])))
                pos += length
        finally:
            if pos:
                del buf[:pos]
        return frames

    def _check_header(self, buf: bytes | bytearray, pos: int) -> tuple[int, int]:
        """(length, type) of the header at ``pos``, in the order RFC 4271 §6.1 lists the checks."""
        if buf[pos : pos + 16] != MARKER:
            raise header_error(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, reason="bad marker")
        length, kind = struct.unpack_from("!HB", buf, pos + 16)
        if length < HEADER_LEN or length > self.max_message_len:
            raise _bad_length(length)
        minimum = _MIN_LEN.get(kind)
        if minimum is None:
            raise header_error(HeaderSubcode.BAD_MESSAGE_TYPE, bytes((kind,)), f"type {kind}")
        if length < minimum or (kind == MessageType.KEEPALIVE and length != HEADER_LEN):
            raise _bad_length(length)
        return length, kind

    @property
    def buffered(self) -> int:
        """Octets held that are not yet part of a returned frame."""
        return len(self._buffer)
