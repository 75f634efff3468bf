"""Daemon-independent descriptions of sessions, announcements and received routes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


def family_of(address_or_prefix: str) -> str:
    """ "ipv4" or "ipv6" for an address or a prefix."""
    return f"ipv{ipaddress.ip_network(address_or_prefix, strict=False).version}"


@dataclass(frozen=True)
class Neighbor:
    """A BGP peer as one daemon's config sees it.

    `families` defaults to the family of `address`. `port` is the peer's port we dial; `passive`
    means we never dial. `source` is our local address for the session.
    """

    address: str
    asn: int
    port: int = 179
    passive: bool = False
    source: str | None = None
    password: str | None = None
    hold_time: int | None = None
    graceful_restart: int | None = None
    # ADD-PATH (RFC 7911): True offers send and receive where the daemon can; BIRD also takes
    # its own mode here ("rx": receive only, as Calico takes ECMP; "tx": send only).
    add_path: bool | str = False
    families: tuple[str, ...] = ()
    ttl_security: bool = False  # GTSM (RFC 5082) for a directly connected peer

    @property
    def afis(self) -> tuple[str, ...]:
        return self.families or (family_of(self.address),)


@dataclass(frozen=True)
class Announce:
    """A prefix a daemon originates. next_hop None means the daemon's own session address."""

    prefix: str
    next_hop: str | None = None
    communities: tuple[tuple[int, int], ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    med: int | None = None

    @property
    def family(self) -> str:
        return family_of(self.prefix)


@dataclass
class Route:
    """The best path of one prefix as a daemon reports it."""

    next_hop: str | None
    as_path: list[int] = field(default_factory=list)
    communities: set[tuple[int, int]] = field(default_factory=set)
    large_communities: set[tuple[int, int, int]] = field(default_factory=set)
    med: int | None = None
    local_pref: int | None = None
    origin: str | None = None  # "igp" | "egp" | "incomplete"


def announcements_for(neighbor: Neighbor, announce: list[Announce]) -> list[Announce]:
    return [a for a in announce if a.family in neighbor.afis]
