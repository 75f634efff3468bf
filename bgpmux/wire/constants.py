"""Numbers from RFC 4271, 4760, 5492, 6793, 4724, 7911, 8654, 2918/7313 and friends."""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import NamedTuple

# Header and message sizes are in octets (RFC 4271 §4.1; the extended maximum is RFC 8654).
MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE_LEN = 4096
MAX_EXTENDED_MESSAGE_LEN = 65535
BGP_VERSION = 4
AS_TRANS = 23456  # stands in for a 4-octet AS where only 2 octets fit (RFC 6793)


class MessageType(IntEnum):
    """Message type codes of the header (RFC 4271 §4.1; ROUTE_REFRESH is RFC 2918 §3)."""

    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class AttrType(IntEnum):
    """Path attribute type codes (RFC 4271 §4.3, 1997, 4456, 4760, 6793, 8092)."""

    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITIES = 32


class AttrFlag(IntFlag):
    """Bits of the attribute flags octet (RFC 4271 §4.3)."""

    EXTENDED_LENGTH = 0x10
    PARTIAL = 0x20
    TRANSITIVE = 0x40
    OPTIONAL = 0x80


class Origin(IntEnum):
    """Values of the ORIGIN attribute (RFC 4271 §4.3)."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegmentType(IntEnum):
    """AS_PATH segment types (RFC 4271 §4.3; the confederation ones RFC 5065)."""

    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class AFI(IntEnum):
    """The Address Family Identifiers this codec knows (IANA registry; RFC 4760 §3)."""

    IPV4 = 1
    IPV6 = 2


class SAFI(IntEnum):
    """The Subsequent Address Family Identifiers this codec knows (RFC 4760 §6)."""

    UNICAST = 1


class Family(NamedTuple):
    """An (AFI, SAFI) pair (RFC 4760 §3); ``str()`` gives e.g. ``ipv4-unicast``."""

    afi: int
    safi: int

    def __str__(self) -> str:
        names = {IPV4_UNICAST: "ipv4-unicast", IPV6_UNICAST: "ipv6-unicast"}
        return names.get(self, f"afi{self.afi}-safi{self.safi}")

    @property
    def address_len(self) -> int:
        """Octets in one address: 4 for AFI 1 (IPv4), 16 for any other AFI."""
        return 4 if self.afi == AFI.IPV4 else 16


IPV4_UNICAST = Family(AFI.IPV4, SAFI.UNICAST)
IPV6_UNICAST = Family(AFI.IPV6, SAFI.UNICAST)
SUPPORTED_FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)


class CapabilityCode(IntEnum):
    """Capability codes of OPEN (RFC 5492 §4; values from the IANA registry)."""

    MULTIPROTOCOL = 1
    ROUTE_REFRESH = 2
    EXTENDED_NEXT_HOP = 5
    EXTENDED_MESSAGE = 6
    GRACEFUL_RESTART = 64
    FOUR_OCTET_AS = 65
    ADD_PATH = 69
    ENHANCED_ROUTE_REFRESH = 70
    LONG_LIVED_GRACEFUL_RESTART = 71
    FQDN = 73
    ROUTE_REFRESH_CISCO = 128


class RefreshSubtype(IntEnum):
    """The ROUTE-REFRESH subtype octet (RFC 7313 §3); others are ignored (§5)."""

    REQUEST = 0  # re-send the family (RFC 2918)
    BORR = 1  # Beginning of Route Refresh: the sender's routes of the family go stale
    EORR = 2  # End of Route Refresh: those still stale are swept


# Type codes of the well-known attributes (RFC 4271 §5); every other known type is optional.
# Only a reference: the codec checks flags per type (``attributes._EXPECTED_FLAGS``).
WELL_KNOWN = {
    AttrType.ORIGIN,
    AttrType.AS_PATH,
    AttrType.NEXT_HOP,
    AttrType.LOCAL_PREF,
    AttrType.ATOMIC_AGGREGATE,
}
