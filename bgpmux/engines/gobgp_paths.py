"""Routes between bgpmux and GoBGP's gRPC API (package ``apipb``, 3.10): path attributes and
prefixes to ``apipb.Path`` for ``AddPathStream``, and the paths ``WatchEvent`` reports back.

Paths go down as serialized ``apipb.Path`` messages built by concatenation: protobuf's wire
format lets the part shared by every prefix of an attribute set (family, attributes as
``google.protobuf.Any``) be serialized once, each prefix adding only its NLRI (and, for IPv6,
its MP_REACH_NLRI, which carries it). The attributes are sent typed, not as
``pattrs_binary``: gobgpd guesses the AS number size of a binary AS_PATH.

gobgpd prepends its own AS on eBGP sessions (``UpdatePathAttrs``), so the node AS that the
core's export put first in the AS_PATH is taken off again (``for_gobgp``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

from google.protobuf import any_pb2

from ..wire.attributes import PathAttributes
from ..wire.constants import AFI, IPV4_UNICAST, IPV6_UNICAST, Family, SegmentType
from ..wire.prefix import Prefix, prefix_to_str
from .gobgp_api import attribute_pb2, gobgp_pb2

TYPE_URL = "type.googleapis.com/apipb."
_FAMILIES = {
    IPV4_UNICAST: gobgp_pb2.Family(afi=gobgp_pb2.Family.AFI_IP, safi=gobgp_pb2.Family.SAFI_UNICAST),
    IPV6_UNICAST: gobgp_pb2.Family(
        afi=gobgp_pb2.Family.AFI_IP6, safi=gobgp_pb2.Family.SAFI_UNICAST
    ),
}


def api_family(family: Family) -> gobgp_pb2.Family:
    """``apipb.Family`` of ``family``; raises KeyError for one bgpmux does not carry."""
    return _FAMILIES[family]


def family_of(api: gobgp_pb2.Family) -> Family | None:
    """The ``Family`` of an ``apipb.Family``; None for one bgpmux does not carry."""
    try:
        return Family(AFI(api.afi), api.safi)
    except ValueError:
        return None


def for_gobgp(attributes: PathAttributes, node_asn: int, ebgp: bool) -> PathAttributes:
    """The attributes to give gobgpd for the core's ``attributes``: on eBGP, without the node
    AS the core put first (gobgpd prepends it itself, RFC 4271 §5.1.2)."""
    path = attributes.as_path
    if not ebgp or not path or path[0][0] != SegmentType.AS_SEQUENCE or not path[0][1]:
        return attributes
    kind, asns = path[0]
    if asns[0] != node_asn:
        return attributes
    rest = ((kind, asns[1:]), *path[1:]) if len(asns) > 1 else path[1:]
    return replace(attributes, as_path=rest)


# ------------------------------------------------------------------ protobuf wire format


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _any(message: Any) -> bytes:
    """A serialized ``google.protobuf.Any`` holding ``message``."""
    name = message.DESCRIPTOR.name
    return _field(1, (TYPE_URL + name).encode()) + _field(2, message.SerializeToString())


_PATH_NLRI, _PATH_PATTRS, _PATH_IS_WITHDRAW, _PATH_FAMILY = 1, 2, 5, 9
_MP_NLRIS = 3
_REQUEST_TABLE_TYPE, _REQUEST_PATHS = 1, 3


def _nlri(family: Family, prefix: Prefix) -> bytes:
    text = prefix_to_str(family, prefix)
    address, _, length = text.partition("/")
    return _any(attribute_pb2.IPAddressPrefix(prefix_len=int(length), prefix=address))


def attribute_messages(attributes: PathAttributes) -> list[Any]:
    """The ``apipb`` messages of ``attributes`` but the next hop, in type-code order."""
    out: list[Any] = [attribute_pb2.OriginAttribute(origin=attributes.origin)]
    segments = [
        attribute_pb2.AsSegment(type=cast(Any, kind), numbers=list(asns))
        for kind, asns in attributes.as_path
        if asns
    ]
    out.append(attribute_pb2.AsPathAttribute(segments=segments))
    if attributes.med is not None:
        out.append(attribute_pb2.MultiExitDiscAttribute(med=attributes.med))
    if attributes.local_pref is not None:
        out.append(attribute_pb2.LocalPrefAttribute(local_pref=attributes.local_pref))
    if attributes.atomic_aggregate:
        out.append(attribute_pb2.AtomicAggregateAttribute())
    if attributes.aggregator is not None:
        asn, address = attributes.aggregator
        text = str(ipaddress.IPv4Address(address))
        out.append(attribute_pb2.AggregatorAttribute(asn=asn, address=text))
    if attributes.communities:
        out.append(attribute_pb2.CommunitiesAttribute(communities=list(attributes.communities)))
    if attributes.large_communities:
        large = [
            attribute_pb2.LargeCommunity(global_admin=g, local_data1=a, local_data2=b)
            for g, a, b in attributes.large_communities
        ]
        out.append(attribute_pb2.LargeCommunitiesAttribute(communities=large))
    for flags, code, value in attributes.other:
        out.append(attribute_pb2.UnknownAttribute(flags=flags, type=code, value=value))
    return out


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """The serialized part of an ``apipb.Path`` shared by every prefix of one attribute set
    and next hop in one family; ``path(prefix)`` completes it."""

    family: Family
    head: bytes  # family and the attributes but MP_REACH_NLRI
    mp_reach: bytes | None  # IPv6: MP_REACH_NLRI without its NLRI

    def path(self, prefix: Prefix) -> bytes:
        """The serialized ``apipb.Path`` announcing ``prefix``."""
        nlri = _nlri(self.family, prefix)
        body = self.head + _field(_PATH_NLRI, nlri)
        if self.mp_reach is not None:
            mp = self.mp_reach + _field(_MP_NLRIS, nlri)
            url = _field(1, (TYPE_URL + "MpReachNLRIAttribute").encode())
            body += _field(_PATH_PATTRS, url + _field(2, mp))
        return body


def path_template(family: Family, attributes: PathAttributes, next_hop: bytes) -> PathTemplate:
    """The template of the paths announcing prefixes of ``family`` with ``attributes`` and
    ``next_hop`` (packed address). Raises KeyError for a family bgpmux does not carry."""
    head = _field(_PATH_FAMILY, api_family(family).SerializeToString())
    hop = socket.inet_ntop(socket.AF_INET if len(next_hop) == 4 else socket.AF_INET6, next_hop)
    messages = attribute_messages(attributes)
    mp_reach = None
    if family == IPV4_UNICAST and len(next_hop) == 4:
        messages.insert(2, attribute_pb2.NextHopAttribute(next_hop=hop))
    else:
        mp = attribute_pb2.MpReachNLRIAttribute(family=api_family(family), next_hops=[hop])
        mp_reach = mp.SerializeToString()
    for message in messages:
        head += _field(_PATH_PATTRS, _any(message))
    return PathTemplate(family, head, mp_reach)


def withdrawal(family: Family, prefix: Prefix) -> bytes:
    """The serialized ``apipb.Path`` withdrawing ``prefix``."""
    head = _field(_PATH_FAMILY, api_family(family).SerializeToString())
    return head + _field(_PATH_NLRI, _nlri(family, prefix)) + bytes((_PATH_IS_WITHDRAW << 3, 1))


def add_path_stream_request(paths: Iterable[bytes]) -> bytes:
    """A serialized ``AddPathStreamRequest`` for the global table (``TableType.GLOBAL``, 0,
    the default) carrying ``paths``."""
    return b"".join(_field(_REQUEST_PATHS, path) for path in paths)


# ------------------------------------------------------------------ from WatchEvent


@dataclass(frozen=True, slots=True)
class ReceivedPath:
    """One path of a ``WatchEvent`` table event, in bgpmux's terms: from the neighbor at
    ``neighbor`` (its address as gobgpd writes it), announced (``attributes`` and
    ``next_hop``, packed) or withdrawn (``attributes`` None)."""

    neighbor: str
    family: Family
    prefix: Prefix
    attributes: PathAttributes | None
    next_hop: bytes


def _unpack(item: any_pb2.Any) -> Any | None:
    name = item.type_url.rpartition(".")[2]
    cls = getattr(attribute_pb2, name, None)
    if cls is None:
        return None
    message = cls()
    item.Unpack(message)
    return message


def _packed(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def received_path(path: gobgp_pb2.Path) -> ReceivedPath | None:
    """``path`` of a table event in bgpmux's terms; None for a family bgpmux does not carry
    or an NLRI that is not an IP prefix. Raises ValueError for an address gobgpd should not
    have written."""
    family = family_of(path.family)
    if family is None:
        return None
    nlri = _unpack(path.nlri)
    if not isinstance(nlri, attribute_pb2.IPAddressPrefix):
        return None
    prefix = _prefix(family, nlri)
    if path.is_withdraw:
        return ReceivedPath(path.neighbor_ip, family, prefix, None, b"")
    attributes, next_hop = path_attributes(path.pattrs)
    return ReceivedPath(path.neighbor_ip, family, prefix, attributes, next_hop)


def _prefix(family: Family, nlri: attribute_pb2.IPAddressPrefix) -> Prefix:
    packed = _packed(nlri.prefix)
    if (len(packed) == 4) != (family.afi == AFI.IPV4):
        raise ValueError(f"prefix {nlri.prefix} in {family}")
    plen = nlri.prefix_len
    significant = bytearray(packed[: (plen + 7) >> 3])
    if plen & 7:
        significant[-1] &= (0xFF << (8 - (plen & 7))) & 0xFF
    return bytes((plen,)) + bytes(significant)


def path_attributes(pattrs: Iterable[any_pb2.Any]) -> tuple[PathAttributes, bytes]:
    """(attributes, next hop) of a path's ``pattrs``: the IPv4 NEXT_HOP is both in the
    attributes and the next hop, an MP_REACH_NLRI's first next hop is the next hop (a second,
    link-local one is left out). Attributes bgpmux does not model but gobgpd decoded
    (extended communities, ...) are left out; those it did not know come as unknown."""
    fields: dict[str, Any] = {}
    other: list[tuple[int, int, bytes]] = []
    next_hop = b""
    for message in filter(None, map(_unpack, pattrs)):
        for key, value in _attribute_fields(message):
            if key == "next_hop":
                next_hop = value or next_hop
                if isinstance(message, attribute_pb2.NextHopAttribute):
                    fields["next_hop"] = value
            elif key == "other":
                other.append(value)
            else:
                fields[key] = value
    return PathAttributes(**fields, other=tuple(other)), next_hop


def _attribute_fields(message: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(message, attribute_pb2.OriginAttribute):
        yield "origin", message.origin
    elif isinstance(message, attribute_pb2.AsPathAttribute):
        yield "as_path", tuple((s.type, tuple(s.numbers)) for s in message.segments)
    elif isinstance(message, attribute_pb2.NextHopAttribute):
        yield "next_hop", _packed(message.next_hop)
    elif isinstance(message, attribute_pb2.MpReachNLRIAttribute):
        yield "next_hop", _packed(message.next_hops[0]) if message.next_hops else b""
    elif isinstance(message, attribute_pb2.MultiExitDiscAttribute):
        yield "med", message.med
    elif isinstance(message, attribute_pb2.LocalPrefAttribute):
        yield "local_pref", message.local_pref
    elif isinstance(message, attribute_pb2.AtomicAggregateAttribute):
        yield "atomic_aggregate", True
    elif isinstance(message, attribute_pb2.AggregatorAttribute):
        yield "aggregator", (message.asn, _packed(message.address or "0.0.0.0"))
    elif isinstance(message, attribute_pb2.CommunitiesAttribute):
        yield "communities", tuple(message.communities)
    elif isinstance(message, attribute_pb2.LargeCommunitiesAttribute):
        large = tuple((c.global_admin, c.local_data1, c.local_data2) for c in message.communities)
        yield "large_communities", large
    elif isinstance(message, attribute_pb2.UnknownAttribute):
        yield "other", (message.flags, message.type, bytes(message.value))
