"""TCP-MD5 (RFC 2385) on Linux sockets: the kernel signs and checks every segment."""

from __future__ import annotations

import ipaddress
import socket
import struct

TCP_MD5SIG = 14  # linux/tcp.h
_KEY_MAX = 80


def set_md5_key(sock: socket.socket, peer: str, key: bytes) -> None:
    """Install ``key`` (at most 80 octets) for segments to and from ``peer`` (an IP address)
    on ``sock``, before connect or listen. Raises ValueError for a longer key or a bad
    address, OSError when the kernel refuses it."""
    if len(key) > _KEY_MAX:
        raise ValueError(f"TCP-MD5 key longer than {_KEY_MAX} octets")
    addr = ipaddress.ip_address(peer)
    if addr.version == 4:
        sockaddr = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s", 0, addr.packed)
    else:
        sockaddr = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI16sI", 0, 0, addr.packed, 0)
    # struct tcp_md5sig: sockaddr_storage (128), flags, prefixlen, keylen, ifindex, key[80]
    value = sockaddr.ljust(128, b"\x00") + struct.pack("=BBHI", 0, 0, len(key), 0)
    value += key.ljust(_KEY_MAX, b"\x00")
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, value)
