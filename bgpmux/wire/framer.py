"""Turns a byte stream into (type, body) frames, with a bounded buffer (RFC 4271 §4.1, §6.1)."""

from __future__ import annotations

import struct

from .constants import HEADER_LEN, MARKER, MAX_MESSAGE_LEN, MessageType
from .errors import HeaderSubcode, header_error

# Minimum length of each message type, header included (RFC 4271 §6.1).
_MIN_LEN = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}


class Framer:
    """Feed bytes in, take whole frames out. Header errors raise ``BGPError``."""

    def __init__(self, max_message_len: int = MAX_MESSAGE_LEN) -> None:
        self.max_message_len = max_message_len
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Append ``data``; return every complete frame as (type, body)."""
        buf = self._buffer
        if self._pos:
            del buf[: self._pos]
            self._pos = 0
        buf += data
        frames: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        max_len = self.max_message_len
        view = bytes(buf) if end else b""
        while end - pos >= HEADER_LEN:
            if view[pos : pos + 16] != MARKER:
                raise header_error(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, reason="bad marker")
            length, kind = struct.unpack_from("!HB", view, pos + 16)
            minimum = _MIN_LEN.get(kind)  # type: ignore[call-overload]
            if minimum is None:
                raise header_error(HeaderSubcode.BAD_MESSAGE_TYPE, bytes((kind,)), f"type {kind}")
            if length < minimum or length > max_len or (
                kind == MessageType.KEEPALIVE and length != HEADER_LEN
            ):
                raise header_error(
                    HeaderSubcode.BAD_MESSAGE_LENGTH, struct.pack("!H", length), f"length {length}"
                )
            if end - pos < length:
                break
            frames.append((kind, view[pos + HEADER_LEN : pos + length]))
            pos += length
        if pos == end:
            buf.clear()
        else:
            self._pos = pos
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._pos
