"""GTSM, the Generalized TTL Security Mechanism (RFC 5082), for a directly connected peer:
send with TTL 255 and have the kernel drop whatever arrives with less, so that a packet from
further than one hop away (whose TTL a router has lowered) never reaches the session."""

from __future__ import annotations

import socket

GTSM_TTL = 255  # RFC 5082 §3: sent with the maximum; for one hop, the minimum accepted too
IP_MINTTL = getattr(socket, "IP_MINTTL", 21)  # linux/in.h; CPython does not export it
IPV6_MINHOPCOUNT = getattr(socket, "IPV6_MINHOPCOUNT", 73)  # linux/in6.h


def gtsm_options(version: int) -> list[tuple[int, int, int]]:
    """The ``(level, option, value)`` socket options that give a socket of IP ``version`` (4
    or 6) GTSM for one hop (RFC 5082 §3): the TTL (IPv6: hop limit) it sends with and the
    smallest it accepts, both 255. Raises ValueError for another version."""
    if version == 4:
        return [
            (socket.IPPROTO_IP, socket.IP_TTL, GTSM_TTL),
            (socket.IPPROTO_IP, IP_MINTTL, GTSM_TTL),
        ]
    if version == 6:
        return [
            (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, GTSM_TTL),
            (socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, GTSM_TTL),
        ]
    raise ValueError(f"IP version {version}")


def set_gtsm(sock: socket.socket, version: int) -> None:
    """Set ``gtsm_options(version)`` on ``sock`` (before connect, so that the SYN already
    carries TTL 255). Raises OSError when the kernel refuses one."""
    for level, option, value in gtsm_options(version):
        sock.setsockopt(level, option, value)
