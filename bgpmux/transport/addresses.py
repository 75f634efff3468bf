"""Peer addresses as the listeners see them: normalised to the configuration's spelling, and
whether one belongs to this host."""

from __future__ import annotations

import ipaddress
import socket


def normalize_ip(address: str) -> str:
    """``address`` as the configuration spells it: an IPv4-mapped IPv6 address (a listener on
    ``::`` sees IPv4 peers so) becomes the IPv4 address; anything unparsable is kept."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def is_host_address(address: str) -> bool:
    """Whether ``address`` belongs to this host (binding a socket to it succeeds). Raises
    nothing; False for anything that is not an IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError:
            return False
    return True
