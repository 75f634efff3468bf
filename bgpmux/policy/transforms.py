"""Import and export transforms: ``attributes in, attributes out``, cached per attribute set.

Attribute sets are interned, so each transform runs once per distinct set, not once per prefix.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum

from ..wire.attributes import PathAttributes
from ..wire.constants import SegmentType


class RejectReason(Enum):
    """Why a client's prefix was refused (the ``reason`` label of bgpmux_prefixes_rejected)."""

    NOT_ACCEPTED = "not_in_accept_list"
    NO_IPV6_NEXT_HOP = "no_ipv6_node_address"
    NO_IPV4_NEXT_HOP = "no_ipv4_node_address"  # an IPv6-only node


class Tagger:
    """Adds a client's configured communities and large communities to what it announces
    (those it already carries are not repeated). Call with the route's attributes."""

    def __init__(
        self, communities: tuple[int, ...], large_communities: tuple[tuple[int, int, int], ...]
    ) -> None:
        self.communities = communities
        self.large_communities = large_communities
        self._cache: dict[PathAttributes, PathAttributes] = {}

    def __call__(self, attrs: PathAttributes) -> PathAttributes:
        if not self.communities and not self.large_communities:
            return attrs
        tagged = self._cache.get(attrs)
        if tagged is None:
            communities = attrs.communities + tuple(
                c for c in self.communities if c not in attrs.communities
            )
            large = attrs.large_communities + tuple(
                c for c in self.large_communities if c not in attrs.large_communities
            )
            tagged = replace(attrs, communities=communities, large_communities=large)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[attrs] = tagged
        return tagged


class UpstreamExport:
    """What the upstreams see of a client's route: the node as the origin of the announcement.

    eBGP: AS_PATH is ``[node AS]`` (or the node AS prepended to the client's path with
    ``keep_client_as_path``), LOCAL_PREF is not sent. iBGP upstream: AS_PATH is empty (the
    client's path as sent with ``keep_client_as_path``), LOCAL_PREF kept, or 100 when the
    client sent none. MED, communities, large communities, aggregator and unknown transitive
    attributes pass through. The NEXT_HOP attribute is cleared: the caller gives the next hop
    (the node address of the family). Call with (attributes, keep_client_as_path).
    """

    def __init__(self, node_asn: int, ebgp: bool) -> None:
        self.node_asn = node_asn
        self.ebgp = ebgp
        self._cache: dict[tuple[PathAttributes, bool], PathAttributes] = {}

    def __call__(self, attrs: PathAttributes, keep_client_as_path: bool) -> PathAttributes:
        key = (attrs, keep_client_as_path)
        out = self._cache.get(key)
        if out is None:
            if self.ebgp:
                path = attrs.as_path if keep_client_as_path else ()
                out = replace(
                    attrs, as_path=prepend(path, self.node_asn), local_pref=None, next_hop=None
                )
            else:
                local_pref = attrs.local_pref if attrs.local_pref is not None else 100
                path = attrs.as_path if keep_client_as_path else ()
                out = replace(attrs, as_path=path, local_pref=local_pref, next_hop=None)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = out
        return out


class ClientExport:
    """What a client receives of an upstream's route: next hop as received.

    To an iBGP client the AS path is as received and LOCAL_PREF is 100; to an eBGP client the
    node AS is prepended and LOCAL_PREF is not sent. Call with the upstream's attributes.
    """

    def __init__(self, node_asn: int, ibgp: bool) -> None:
        self.node_asn = node_asn
        self.ibgp = ibgp
        self._cache: dict[PathAttributes, PathAttributes] = {}

    def __call__(self, attrs: PathAttributes) -> PathAttributes:
        out = self._cache.get(attrs)
        if out is None:
            if self.ibgp:
                out = replace(attrs, local_pref=100)
            else:
                out = replace(attrs, as_path=prepend(attrs.as_path, self.node_asn), local_pref=None)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[attrs] = out
        return out


def prepend(
    as_path: tuple[tuple[int, tuple[int, ...]], ...], asn: int
) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """``as_path`` (segments of (type, ASNs)) with ``asn`` in front (RFC 4271 §5.1.2): into
    its first AS_SEQUENCE while that holds fewer than 255 ASNs, else as a new segment."""
    if as_path and as_path[0][0] == SegmentType.AS_SEQUENCE and len(as_path[0][1]) < 255:
        return ((SegmentType.AS_SEQUENCE, (asn, *as_path[0][1])), *as_path[1:])
    return ((SegmentType.AS_SEQUENCE, (asn,)), *as_path)
