"""TCP-MD5 (RFC 2385) on Linux sockets: the kernel signs and checks every segment."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping

from ..config import Client, Endpoint

TCP_MD5SIG = 14  # linux/tcp.h
MD5_KEY_MAX = 80  # octets: Linux's TCP_MD5SIG_MAXKEYLEN


def set_md5_key(sock: socket.socket, peer: str, key: bytes) -> None:
    """Install ``key`` (at most 80 octets) for segments to and from ``peer`` (an IP address)
    on ``sock``, before connect or listen. Raises ValueError for a longer key or a bad
    address, OSError when the kernel refuses it."""
    if len(key) > MD5_KEY_MAX:
        raise ValueError(f"TCP-MD5 key longer than {MD5_KEY_MAX} octets")
    addr = ipaddress.ip_address(peer)
    if addr.version == 4:
        sockaddr = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s", 0, addr.packed)
    else:
        sockaddr = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI16sI", 0, 0, addr.packed, 0)
    # struct tcp_md5sig: sockaddr_storage (128), flags, prefixlen, keylen, ifindex, key[80]
    value = sockaddr.ljust(128, b"\x00") + struct.pack("=BBHI", 0, 0, len(key), 0)
    value += key.ljust(MD5_KEY_MAX, b"\x00")
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, value)


def md5_keys(clients: Iterable[Client]) -> dict[str, bytes]:
    """The TCP-MD5 key of each client that has a ``password_file``, by its ``peer_address``
    as text (config validation makes one required with the other). Raises OSError when a
    file cannot be read."""
    keys: dict[str, bytes] = {}
    for client in clients:
        if client.password_file is not None and client.peer_address is not None:
            keys[str(client.peer_address)] = client.password_file.read_bytes().strip()
    return keys


def md5_listening_socket(listen: Endpoint, keys: Mapping[str, bytes]) -> socket.socket:
    """A non-blocking TCP socket listening on ``listen`` that the kernel lets connect from
    each address in ``keys`` only with segments signed with its key (RFC 2385; on a listener
    Linux keeps one key per remote address, and the accepted sockets inherit it). Connections
    from other addresses are not checked. Raises OSError (or ValueError for a bad key)."""
    family = socket.AF_INET6 if listen.host.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as create_server does
        for peer, key in keys.items():
            set_md5_key(sock, peer, key)
        sock.bind((str(listen.host), listen.port))
        sock.listen(100)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
