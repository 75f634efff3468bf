"""OPEN capabilities (RFC 5492) as one immutable value, with their codec."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .constants import CapabilityCode, Family
from .errors import OpenSubcode, open_error

# ADD-PATH send/receive bits (RFC 7911 §4).
ADD_PATH_RECEIVE = 1
ADD_PATH_SEND = 2


@dataclass(frozen=True, slots=True)
class GracefulRestart:
    """RFC 4724 §3 capability: restart time (seconds, 12 bits), the R bit (``restarting``) and,
    per family, whether forwarding state was kept (the F bit)."""

    restart_time: int = 0
    restarting: bool = False
    notification: bool = False  # the N bit, RFC 8538
    families: tuple[tuple[Family, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The capabilities of one OPEN (RFC 5492): multiprotocol families (RFC 4760 §8), route
    refresh (RFC 2918; also set by the pre-standard code 128) and enhanced route refresh
    (RFC 7313), the 4-octet AS (RFC 6793 §3), graceful restart, ADD-PATH as (family,
    ``ADD_PATH_*`` bits) (RFC 7911 §4), extended message (RFC 8654), and others as (code, value)."""

    multiprotocol: tuple[Family, ...] = ()
    route_refresh: bool = False
    enhanced_route_refresh: bool = False
    four_octet_as: int | None = None
    graceful_restart: GracefulRestart | None = None
    add_path: tuple[tuple[Family, int], ...] = ()
    extended_message: bool = False
    unknown: tuple[tuple[int, bytes], ...] = field(default=())


def encode_capabilities(caps: Capabilities) -> bytes:
    """The capabilities as TLVs (RFC 5492 §4), without the optional-parameter wrapper. Raises
    ValueError for a value over 255 octets or a restart time over 4095 seconds."""
    out = bytearray()

    def tlv(code: int, value: bytes = b"") -> None:
        if len(value) > 255:
            raise ValueError(f"capability {code} value of {len(value)} octets does not fit")
        out.extend((code, len(value)))
        out.extend(value)

    for fam in caps.multiprotocol:
        tlv(CapabilityCode.MULTIPROTOCOL, struct.pack("!HBB", fam.afi, 0, fam.safi))
    if caps.route_refresh:
        tlv(CapabilityCode.ROUTE_REFRESH)
    if caps.enhanced_route_refresh:
        tlv(CapabilityCode.ENHANCED_ROUTE_REFRESH)
    if caps.extended_message:
        tlv(CapabilityCode.EXTENDED_MESSAGE)
    gr = caps.graceful_restart
    if gr is not None:
        if not 0 <= gr.restart_time <= 0x0FFF:
            raise ValueError(f"graceful-restart time {gr.restart_time} does not fit 12 bits")
        flags = (0x8 if gr.restarting else 0) | (0x4 if gr.notification else 0)
        gr_value = struct.pack("!H", (flags << 12) | gr.restart_time) + b"".join(
            struct.pack("!HBB", fam.afi, fam.safi, 0x80 if forwarding else 0)
            for fam, forwarding in gr.families
        )
        tlv(CapabilityCode.GRACEFUL_RESTART, gr_value)
    if caps.four_octet_as is not None:
        tlv(CapabilityCode.FOUR_OCTET_AS, struct.pack("!I", caps.four_octet_as))
    if caps.add_path:
        value = b"".join(struct.pack("!HBB", f.afi, f.safi, mode) for f, mode in caps.add_path)
        tlv(CapabilityCode.ADD_PATH, value)
    for code, value in caps.unknown:
        tlv(code, value)
    return bytes(out)


def _bad(reason: str) -> Exception:
    return open_error(OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER, reason=reason)


def decode_capabilities(data: bytes) -> Capabilities:
    """Parse capability TLVs (RFC 5492 §4). Unknown codes are kept. A truncated TLV or a known
    one of the wrong length raises ``BGPError``, OPEN Message Error/Unsupported Optional
    Parameter."""
    multiprotocol: list[Family] = []
    unknown: list[tuple[int, bytes]] = []
    route_refresh = enhanced = extended = False
    four_octet: int | None = None
    gr: GracefulRestart | None = None
    add_path: list[tuple[Family, int]] = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + 2 > end:
            raise _bad("truncated capability header")
        code, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if len(value) != length:
            raise _bad(f"capability {code} overruns its parameter")
        pos += 2 + length
        if code == CapabilityCode.MULTIPROTOCOL:
            if length != 4:
                raise _bad("multiprotocol capability length is not 4")
            afi, _reserved, safi = struct.unpack("!HBB", value)
            multiprotocol.append(Family(afi, safi))
        elif code in (CapabilityCode.ROUTE_REFRESH, CapabilityCode.ROUTE_REFRESH_CISCO):
            route_refresh = True
        elif code == CapabilityCode.ENHANCED_ROUTE_REFRESH:
            enhanced = True
        elif code == CapabilityCode.EXTENDED_MESSAGE:
            extended = True
        elif code == CapabilityCode.FOUR_OCTET_AS:
            if length != 4:
                raise _bad("4-octet AS capability length is not 4")
            (four_octet,) = struct.unpack("!I", value)
        elif code == CapabilityCode.GRACEFUL_RESTART:
            if length < 2 or (length - 2) % 4:
                raise _bad("graceful-restart capability has a bad length")
            (head,) = struct.unpack("!H", value[:2])
            fams = tuple(
                (Family(afi, safi), bool(flags & 0x80))
                for afi, safi, flags in struct.iter_unpack("!HBB", value[2:])
            )
            gr = GracefulRestart(head & 0x0FFF, bool(head & 0x8000), bool(head & 0x4000), fams)
        elif code == CapabilityCode.ADD_PATH:
            if length % 4:
                raise _bad("ADD-PATH capability length is not a multiple of 4")
            add_path.extend(
                (Family(afi, safi), mode) for afi, safi, mode in struct.iter_unpack("!HBB", value)
            )
        else:
            unknown.append((code, bytes(value)))
    return Capabilities(
        multiprotocol=tuple(multiprotocol),
        route_refresh=route_refresh,
        enhanced_route_refresh=enhanced,
        four_octet_as=four_octet,
        graceful_restart=gr,
        add_path=tuple(add_path),
        extended_message=extended,
        unknown=tuple(unknown),
    )
