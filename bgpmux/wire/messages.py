"""BGP messages as immutable values, and their codec (RFC 4271 §4, RFC 4760, RFC 2918)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from .attribute_cache import AttributeCache as AttributeCache  # re-exported
from .attributes import (
    MISSING_NEXT_HOP,
    PathAttributes,
    TreatAsWithdraw,
    decode_attributes,
    encode_attributes,
    missing_mandatory,
    split_attributes,
)
from .capabilities import Capabilities, decode_capabilities, encode_capabilities
from .constants import (
    AS_TRANS,
    BGP_VERSION,
    HEADER_LEN,
    IPV4_UNICAST,
    MARKER,
    MAX_MESSAGE_LEN,
    AttrFlag,
    AttrType,
    Family,
    MessageType,
)
from .errors import (
    BGPError,
    ErrorCode,
    HeaderSubcode,
    OpenSubcode,
    UpdateSubcode,
    header_error,
    open_error,
    update_error,
)
from .prefix import Prefix, decode_prefixes


@dataclass(frozen=True, slots=True)
class CodecOptions:
    """What a session negotiated that the codec needs: 4-octet AS numbers (RFC 6793), the longest
    message (4096 octets; 65535, RFC 8654), the families we send path ids in (RFC 7911)."""

    asn4: bool = True
    max_message_len: int = MAX_MESSAGE_LEN
    add_path_send: frozenset[Family] = frozenset()


DEFAULT_OPTIONS = CodecOptions()


@dataclass(frozen=True, slots=True)
class Open:
    """An OPEN (RFC 4271 §4.2): ``hold_time`` in seconds, ``router_id`` as dotted IPv4."""

    asn: int  # the real AS (from the 4-octet capability when present)
    hold_time: int
    router_id: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    version: int = BGP_VERSION


@dataclass(frozen=True, slots=True)
class MpReach:
    """MP_REACH_NLRI (RFC 4760 §3): one family's next hop and announced prefixes."""

    family: Family
    next_hop: bytes  # 4, 16, or 32 octets (IPv6 global + link-local)
    nlri: tuple[Prefix, ...]


@dataclass(frozen=True, slots=True)
class MpUnreach:
    """MP_UNREACH_NLRI (RFC 4760 §4): one family's withdrawn prefixes."""

    family: Family
    withdrawn: tuple[Prefix, ...]


@dataclass(frozen=True, slots=True)
class Update:
    """An UPDATE (RFC 4271 §4.3); ``withdrawn`` and ``nlri`` are IPv4 unicast. ``attributes`` is
    None when absent or unusable; ``notes`` name attributes discarded under RFC 7606."""

    withdrawn: tuple[Prefix, ...] = ()
    attributes: PathAttributes | None = None
    nlri: tuple[Prefix, ...] = ()
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    # RFC 7606: the reason the attributes were unusable; then every NLRI is a withdrawal.
    treat_as_withdraw: str | None = field(default=None, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    def end_of_rib(self) -> Family | None:
        """The family this UPDATE marks End-of-RIB for (RFC 4724 §2), if it is one."""
        if self.attributes is not None or self.withdrawn or self.nlri or self.mp_reach:
            return None
        if self.treat_as_withdraw is not None:  # it carried attributes, only unusable ones
            return None
        if self.mp_unreach is None:
            return IPV4_UNICAST
        if not self.mp_unreach.withdrawn:
            return self.mp_unreach.family
        return None

    def announcements(self) -> Iterator[tuple[Family, PathAttributes, bytes, tuple[Prefix, ...]]]:
        """(family, attributes, next hop, prefixes) for every reachable NLRI group."""
        if self.treat_as_withdraw is not None or self.attributes is None:
            return
        if self.nlri:
            yield IPV4_UNICAST, self.attributes, self.attributes.next_hop or b"", self.nlri
        if self.mp_reach is not None and self.mp_reach.nlri:
            mp = self.mp_reach
            yield mp.family, self.attributes, mp.next_hop, mp.nlri

    def withdrawals(self) -> Iterator[tuple[Family, tuple[Prefix, ...]]]:
        """(family, prefixes) withdrawn, with the NLRI of a treat-as-withdraw UPDATE."""
        if self.withdrawn:
            yield IPV4_UNICAST, self.withdrawn
        if self.mp_unreach is not None and self.mp_unreach.withdrawn:
            yield self.mp_unreach.family, self.mp_unreach.withdrawn
        if self.treat_as_withdraw is not None:
            if self.nlri:
                yield IPV4_UNICAST, self.nlri
            if self.mp_reach is not None and self.mp_reach.nlri:
                yield self.mp_reach.family, self.mp_reach.nlri


@dataclass(frozen=True, slots=True)
class Notification:
    """A NOTIFICATION (RFC 4271 §4.5): error code, subcode and data."""

    code: int
    subcode: int = 0
    data: bytes = b""

    @classmethod
    def from_error(cls, error: BGPError) -> Notification:
        """The NOTIFICATION that answers ``error``."""
        return cls(error.code, error.subcode, error.data)

    def describe(self) -> str:
        """``error_name``, then the RFC 8203 message of a Cease/Administrative Shutdown or Reset,
        or else any data in hex."""
        from .errors import error_name

        text = error_name(self.code, self.subcode)
        if self.code == ErrorCode.CEASE and self.subcode in (2, 4) and self.data:
            # RFC 8203 shutdown communication: one length octet, then UTF-8.
            message = self.data[1 : 1 + self.data[0]].decode("utf-8", "replace")
            return f'{text} "{message}"'
        return f"{text} data={self.data.hex()}" if self.data else text


@dataclass(frozen=True, slots=True)
class Keepalive:
    """A KEEPALIVE (RFC 4271 §4.4): header only. ``KEEPALIVE`` is the shared instance."""


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    """A ROUTE-REFRESH (RFC 2918 §3) for one family; ``subtype`` as RFC 7313 defines it."""

    family: Family
    subtype: int = 0  # RFC 7313: 0 request, 1 BoRR, 2 EoRR


Message = Open | Update | Notification | Keepalive | RouteRefresh
KEEPALIVE = Keepalive()

# ---------------------------------------------------------------------------------- encode


def _frame(kind: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", HEADER_LEN + len(body), kind) + body


def encode_open(msg: Open) -> bytes:
    """The OPEN; an AS over 65535 goes as AS_TRANS (RFC 6793). Raises ValueError when the
    capabilities need RFC 9072 lengths (not sent) or ``router_id`` is not IPv4."""
    caps = encode_capabilities(msg.capabilities)
    params = bytes((2, len(caps))) + caps if caps else b""
    if len(params) > 255:
        raise ValueError("capabilities do not fit an OPEN without RFC 9072")
    my_as = msg.asn if msg.asn <= 0xFFFF else AS_TRANS
    rid = ipaddress.IPv4Address(msg.router_id).packed
    body = struct.pack("!BHH4sB", msg.version, my_as, msg.hold_time, rid, len(params)) + params
    return _frame(MessageType.OPEN, body)


def encode_mp_reach(mp: MpReach) -> bytes:
    """The MP_REACH_NLRI attribute, header included (RFC 4760 §3)."""
    value = struct.pack("!HBB", mp.family.afi, mp.family.safi, len(mp.next_hop))
    value += mp.next_hop + b"\x00" + b"".join(mp.nlri)
    return _mp_attr(AttrType.MP_REACH_NLRI, value)


def encode_mp_unreach(mp: MpUnreach) -> bytes:
    """The MP_UNREACH_NLRI attribute, header included (RFC 4760 §4)."""
    value = struct.pack("!HB", mp.family.afi, mp.family.safi) + b"".join(mp.withdrawn)
    return _mp_attr(AttrType.MP_UNREACH_NLRI, value)


def _mp_attr(code: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"attribute {code} of {len(value)} octets does not fit any UPDATE")
    if len(value) > 255:
        return (
            struct.pack("!BBH", AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH, code, len(value))
            + value
        )
    return struct.pack("!BBB", AttrFlag.OPTIONAL, code, len(value)) + value


def encode_update(msg: Update, options: CodecOptions = DEFAULT_OPTIONS) -> bytes:
    """The UPDATE (RFC 4271 §4.3) encoded with ``options``. Raises ValueError when it would be
    over ``options.max_message_len`` octets."""
    mp = b""
    if msg.mp_unreach is not None:
        mp += encode_mp_unreach(msg.mp_unreach)
    if msg.mp_reach is not None:
        mp += encode_mp_reach(msg.mp_reach)
    if msg.attributes is not None:
        attrs = encode_attributes(msg.attributes, options.asn4, mp)
    else:
        attrs = mp
    withdrawn = b"".join(msg.withdrawn)
    nlri = b"".join(msg.nlri)
    size = HEADER_LEN + 4 + len(withdrawn) + len(attrs) + len(nlri)
    if size > options.max_message_len:  # checked first: the lengths may not fit their fields
        raise ValueError(f"UPDATE of {size} octets exceeds the maximum")
    body = struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs
    return _frame(MessageType.UPDATE, body + nlri)


def encode_notification(msg: Notification) -> bytes:
    """The NOTIFICATION (RFC 4271 §4.5); its length is not checked against any maximum."""
    return _frame(MessageType.NOTIFICATION, bytes((msg.code, msg.subcode)) + msg.data)


def encode_keepalive() -> bytes:
    """The 19-octet KEEPALIVE (RFC 4271 §4.4)."""
    return _KEEPALIVE_BYTES


_KEEPALIVE_BYTES = _frame(MessageType.KEEPALIVE, b"")


def encode_route_refresh(msg: RouteRefresh) -> bytes:
    """The ROUTE-REFRESH (RFC 2918 §3; the subtype octet is RFC 7313's)."""
    body = struct.pack("!HBB", msg.family.afi, msg.subtype, msg.family.safi)
    return _frame(MessageType.ROUTE_REFRESH, body)


def encode_message(msg: Message, options: CodecOptions = DEFAULT_OPTIONS) -> bytes:
    """Any message as bytes, header included; ``options`` matter to UPDATEs only."""
    if isinstance(msg, Update):
        return encode_update(msg, options)
    if isinstance(msg, Keepalive):
        return _KEEPALIVE_BYTES
    if isinstance(msg, Open):
        return encode_open(msg)
    if isinstance(msg, Notification):
        return encode_notification(msg)
    return encode_route_refresh(msg)


# ---------------------------------------------------------------------------------- decode


_BAD_PARAMETER = OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER


def decode_open(body: bytes) -> Open:
    """An OPEN body (RFC 4271 §4.2; RFC 9072 lengths); ``asn`` from the 4-octet AS capability
    if any. Raises ``BGPError``: Unsupported Version Number, or Unsupported Optional Parameter
    for a non-capability parameter or bad parameter or capability framing. AS, hold time and
    BGP identifier are left to the session (RFC 4271 §6.2)."""
    if len(body) < 10:
        raise header_error(HeaderSubcode.BAD_MESSAGE_LENGTH, struct.pack("!H", len(body) + 19))
    version, my_as, hold, rid, plen = struct.unpack("!BHH4sB", body[:10])
    if version != BGP_VERSION:
        raise open_error(OpenSubcode.UNSUPPORTED_VERSION, struct.pack("!H", BGP_VERSION))
    params = body[10:]
    # RFC 9072: a length of 255 and a first type of 255 announce extended parameters, whose
    # real length is the two octets that follow; the 255 is then not the parameters' length.
    extended = plen == 255 and params[:1] == b"\xff"
    if extended:
        if len(params) < 3 or len(params) != 3 + int.from_bytes(params[1:3], "big"):
            raise open_error(_BAD_PARAMETER, reason="extended parameter length")
        params = params[3:]
    elif len(params) != plen:
        raise open_error(_BAD_PARAMETER, reason="parameter length")
    caps_data = bytearray()
    pos = 0
    head = 3 if extended else 2
    while pos < len(params):
        if pos + head > len(params):
            raise open_error(_BAD_PARAMETER, reason="truncated parameter")
        ptype = params[pos]
        length = int.from_bytes(params[pos + 1 : pos + head], "big")
        value = params[pos + head : pos + head + length]
        if len(value) != length:
            raise open_error(_BAD_PARAMETER, reason="parameter overrun")
        if ptype != 2:
            raise open_error(_BAD_PARAMETER, reason=f"parameter {ptype}")
        caps_data += value
        pos += head + length
    caps = decode_capabilities(bytes(caps_data))
    asn = caps.four_octet_as if caps.four_octet_as is not None else my_as
    router_id = str(ipaddress.IPv4Address(rid))
    return Open(asn=asn, hold_time=hold, router_id=router_id, capabilities=caps, version=version)


def _decode_mp_reach(value: bytes) -> MpReach:
    if len(value) < 5:
        raise update_error(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, reason="MP_REACH_NLRI too short")
    afi, safi, nh_len = struct.unpack("!HBB", value[:4])
    family = Family(afi, safi)
    if len(value) < 5 + nh_len:
        raise update_error(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, reason="MP_REACH_NLRI next hop overrun"
        )
    next_hop = value[4 : 4 + nh_len]
    if nh_len not in (family.address_len, 2 * family.address_len):
        raise update_error(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, reason=f"MP_REACH_NLRI next hop length {nh_len}"
        )
    nlri = decode_prefixes(value[5 + nh_len :], family, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR)
    return MpReach(family, next_hop, nlri)


def _decode_mp_unreach(value: bytes) -> MpUnreach:
    if len(value) < 3:
        raise update_error(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, reason="MP_UNREACH_NLRI too short"
        )
    afi, safi = struct.unpack("!HB", value[:3])
    family = Family(afi, safi)
    withdrawn = decode_prefixes(value[3:], family, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR)
    return MpUnreach(family, withdrawn)


def decode_update(
    body: bytes, options: CodecOptions = DEFAULT_OPTIONS, cache: AttributeCache | None = None
) -> Update:
    """An UPDATE body (RFC 4271 §4.3, RFC 4760) decoded with the negotiated ``options``.

    Raises ``BGPError`` where the message cannot be parsed, or carries an unrecognized well-known
    attribute (RFC 4271 §6.3); where RFC 7606 allows it, returns the Update with
    ``treat_as_withdraw`` set instead. ``cache``, if given, shares attribute sets between
    UPDATEs that carry the same attribute bytes.
    """
    end = len(body)
    if end < 4:
        raise update_error(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason="UPDATE too short")
    wlen = (body[0] << 8) | body[1]
    if 2 + wlen + 2 > end:
        raise update_error(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason="withdrawn length overrun"
        )
    alen_at = 2 + wlen
    alen = (body[alen_at] << 8) | body[alen_at + 1]
    attr_start = alen_at + 2
    if attr_start + alen > end:
        raise update_error(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason="attribute length overrun"
        )
    withdrawn = decode_prefixes(body[2:alen_at], IPV4_UNICAST) if wlen else ()
    nlri_at = attr_start + alen
    nlri = decode_prefixes(body[nlri_at:], IPV4_UNICAST) if nlri_at < end else ()
    if alen == 0:
        if nlri:
            return Update(
                withdrawn=withdrawn,
                nlri=nlri,
                treat_as_withdraw="NLRI without path attributes",
            )
        return Update(withdrawn=withdrawn)
    raw = body[attr_start : attr_start + alen]
    if cache is not None:
        # The fast path of a block seen before: no framing, no mandatory-attribute walk.
        hit = cache.get_plain((options.asn4, raw))
        if hit is not None:
            if nlri and not hit[1]:
                return Update(withdrawn, None, nlri, None, None, MISSING_NEXT_HOP)
            return Update(withdrawn, hit[0], nlri)
    tlvs = split_attributes(raw)
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    rest: list[tuple[int, int, bytes]] = []
    for tlv in tlvs:
        code = tlv[1]
        if code == AttrType.MP_REACH_NLRI:
            if mp_reach is not None:
                raise update_error(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason="two MP_REACH_NLRI"
                )
            mp_reach = _decode_mp_reach(tlv[2])
        elif code == AttrType.MP_UNREACH_NLRI:
            if mp_unreach is not None:
                raise update_error(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason="two MP_UNREACH_NLRI"
                )
            mp_unreach = _decode_mp_unreach(tlv[2])
        else:
            rest.append(tlv)
    reachable = bool(nlri) or (mp_reach is not None and bool(mp_reach.nlri))
    if not rest:
        unusable = "no path attributes" if reachable else None
        return Update(withdrawn, None, nlri, mp_reach, mp_unreach, unusable)
    # RFC 7606 §3 d: a missing mandatory attribute matters only when something is announced.
    # Checked on every UPDATE, not only on a cache miss: the same attribute bytes may first
    # arrive with no NLRI (nothing missing that matters) and later with some.
    missing = missing_mandatory(rest, need_next_hop=bool(nlri)) if reachable else None
    if missing is not None:
        return Update(withdrawn, None, nlri, mp_reach, mp_unreach, missing)
    # The key is attribute bytes in their received encoding, so equal keys parse to equal TLVs.
    key = (options.asn4, b"".join(_reencode(t) for t in rest) if mp_reach or mp_unreach else raw)
    attrs = cache.get(key) if cache is not None else None
    notes: list[str] = []
    reason: str | None = None
    if attrs is None:
        try:
            attrs = decode_attributes(rest, options.asn4, notes)
        except TreatAsWithdraw as exc:
            reason = str(exc)
        else:
            if not notes and cache is not None:
                if mp_reach is None and mp_unreach is None:
                    codes = {tlv[1] for tlv in rest}
                    if AttrType.ORIGIN in codes and AttrType.AS_PATH in codes:
                        cache.put_plain(key, attrs, AttrType.NEXT_HOP in codes)
                cache.put(key, attrs)
    return Update(withdrawn, attrs, nlri, mp_reach, mp_unreach, reason, tuple(notes))


def _reencode(tlv: tuple[int, int, bytes]) -> bytes:
    """A TLV exactly as ``split_attributes`` found it (flags say how long the length is)."""
    flags, code, value = tlv
    if flags & AttrFlag.EXTENDED_LENGTH:
        return bytes((flags, code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags, code, len(value))) + value


def decode_notification(body: bytes) -> Notification:
    """A NOTIFICATION body (RFC 4271 §4.5); under 2 octets raises a Bad Message Length error."""
    if len(body) < 2:
        raise header_error(HeaderSubcode.BAD_MESSAGE_LENGTH, struct.pack("!H", len(body) + 19))
    return Notification(body[0], body[1], body[2:])


def decode_route_refresh(body: bytes) -> RouteRefresh:
    """A ROUTE-REFRESH body (RFC 2918 §3). A length other than 4 octets raises ``BGPError``:
    ROUTE-REFRESH Message Error/Invalid Message Length, the whole message as data (RFC 7313 §5)."""
    if len(body) != 4:
        whole = _frame(MessageType.ROUTE_REFRESH, body)
        raise BGPError(ErrorCode.ROUTE_REFRESH, 1, whole, "ROUTE-REFRESH length is not 4")
    afi, subtype, safi = struct.unpack("!HBB", body)
    return RouteRefresh(Family(afi, safi), subtype)


def decode_body(
    kind: int,
    body: bytes,
    options: CodecOptions = DEFAULT_OPTIONS,
    cache: AttributeCache | None = None,
) -> Message:
    """Decode a message body whose header the framer has checked (RFC 4271 §4).

    Raises ``BGPError``, the NOTIFICATION to send, for a body that cannot be parsed, and for an
    unknown type (Message Header Error/Bad Message Type, RFC 4271 §6.1).
    """
    if kind == MessageType.UPDATE:
        return decode_update(body, options, cache)
    if kind == MessageType.KEEPALIVE:
        return KEEPALIVE
    if kind == MessageType.OPEN:
        return decode_open(body)
    if kind == MessageType.NOTIFICATION:
        return decode_notification(body)
    if kind == MessageType.ROUTE_REFRESH:
        return decode_route_refresh(body)
    raise header_error(HeaderSubcode.BAD_MESSAGE_TYPE, bytes((kind,)))
