"""Just enough pcap to time BGP UPDATEs: read a capture, reassemble each TCP direction, split it
into BGP messages stamped with the time of the packet that completed them, and find, per prefix,
the first UPDATE that announces it."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bgpmux.wire import CodecOptions, decode_body, prefix_to_str

MARKER = b"\xff" * 16
UPDATE = 2
_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL = 1, 113


@dataclass(frozen=True)
class Segment:
    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    payload: bytes


def read_segments(path: Path) -> Iterator[Segment]:
    """TCP segments with a payload, from an Ethernet (or Linux cooked) pcap file."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        return
    if data[:4] not in _MAGIC:
        raise ValueError(f"{path}: not a pcap file (pcapng is not supported)")
    endian, unit = _MAGIC[data[:4]]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = record.unpack_from(data, pos)
        pos += 16
        frame = data[pos : pos + incl]
        pos += incl
        segment = _parse_frame(frame, linktype, sec + frac * unit)
        if segment is not None:
            yield segment


def _parse_frame(frame: bytes, linktype: int, ts: float) -> Segment | None:
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        ethertype, offset = struct.unpack_from("!H", frame, 12)[0], 14
        while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 4:  # VLAN tags
            ethertype, offset = struct.unpack_from("!H", frame, offset + 2)[0], offset + 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        ethertype, offset = struct.unpack_from("!H", frame, 14)[0], 16
    else:
        raise ValueError(f"unsupported pcap link type {linktype}")
    if ethertype == 0x0800:
        if len(frame) < offset + 20:
            return None
        ihl = (frame[offset] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, offset + 2)[0]
        proto = frame[offset + 9]
        src = str(ipaddress.IPv4Address(frame[offset + 12 : offset + 16]))
        dst = str(ipaddress.IPv4Address(frame[offset + 16 : offset + 20]))
        end = offset + total
        offset += ihl
    elif ethertype == 0x86DD:
        if len(frame) < offset + 40:
            return None
        plen = struct.unpack_from("!H", frame, offset + 4)[0]
        proto = frame[offset + 6]  # extension headers are not expected on these sessions
        src = str(ipaddress.IPv6Address(frame[offset + 8 : offset + 24]))
        dst = str(ipaddress.IPv6Address(frame[offset + 24 : offset + 40]))
        offset += 40
        end = offset + plen
    else:
        return None
    if proto != 6 or len(frame) < offset + 20:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", frame, offset)
    data_offset = (frame[offset + 12] >> 4) * 4
    payload = frame[offset + data_offset : end]
    if not payload:
        return None
    return Segment(ts, src, dst, sport, dport, seq, payload)


@dataclass
class _Stream:
    next_seq: int | None = None
    buf: bytearray = field(default_factory=bytearray)
    synced: bool = False


@dataclass(frozen=True)
class BgpMessage:
    ts: float  # of the packet that completed the message
    src: str
    dst: str
    kind: int
    body: bytes


def bgp_messages(path: Path) -> Iterator[BgpMessage]:
    """BGP messages per TCP direction, in capture order. A gap in the capture drops the partial
    message and resynchronises on the next marker; retransmitted bytes are skipped."""
    streams: dict[tuple[str, int, str, int], _Stream] = {}
    for seg in read_segments(path):
        stream = streams.setdefault((seg.src, seg.sport, seg.dst, seg.dport), _Stream())
        payload = seg.payload
        if stream.next_seq is not None:
            delta = (seg.seq - stream.next_seq) & 0xFFFFFFFF
            if delta >= 0x80000000:  # starts before what we have: a retransmission
                overlap = (stream.next_seq - seg.seq) & 0xFFFFFFFF
                if overlap >= len(payload):
                    continue
                payload = payload[overlap:]
            elif delta:  # bytes missing from the capture
                stream.buf.clear()
                stream.synced = False
        stream.next_seq = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
        stream.buf += payload
        yield from _split(stream, seg)


def _split(stream: _Stream, seg: Segment) -> Iterator[BgpMessage]:
    buf = stream.buf
    if not stream.synced:
        start = buf.find(MARKER)
        if start < 0:
            del buf[: max(0, len(buf) - 15)]
            return
        del buf[:start]
        stream.synced = True
    while len(buf) >= 19:
        if buf[:16] != MARKER:
            stream.synced = False
            del buf[:1]
            yield from _split(stream, seg)
            return
        length = struct.unpack_from("!H", buf, 16)[0]
        if length < 19:
            stream.synced = False
            del buf[:1]
            yield from _split(stream, seg)
            return
        if len(buf) < length:
            return
        yield BgpMessage(seg.ts, seg.src, seg.dst, buf[18], bytes(buf[19:length]))
        del buf[:length]


def announced_prefixes(message: BgpMessage) -> list[str]:
    """The prefixes an UPDATE announces (IPv4 NLRI and MP_REACH), as strings."""
    if message.kind != UPDATE:
        return []
    try:
        update = decode_body(UPDATE, message.body, CodecOptions())
    except Exception:
        return []
    out = []
    for family, _attrs, _nh, prefixes in update.announcements():  # type: ignore[union-attr]
        out += [prefix_to_str(family, p) for p in prefixes]
    return out


def first_announcements(
    path: Path, wanted: set[str], *, src: str | None = None, dst: str | None = None
) -> dict[str, float]:
    """Per wanted prefix, the time of the first UPDATE (from `src` / to `dst`) announcing it."""
    found: dict[str, float] = {}
    for message in bgp_messages(path):
        if message.kind != UPDATE or (src and message.src != src) or (dst and message.dst != dst):
            continue
        for prefix in announced_prefixes(message):
            if prefix in wanted and prefix not in found:
                found[prefix] = message.ts
    return found
