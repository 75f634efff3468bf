"""Connection collision resolution (RFC 4271 §6.8, RFC 6286 §2.3), for the glue to apply."""

from __future__ import annotations

import ipaddress


def collision_keeps_existing(
    local_router_id: str,
    remote_router_id: str,
    existing_is_ours: bool,
    *,
    local_asn: int = 0,
    remote_asn: int = 0,
) -> bool:
    """True if the existing connection survives a collision with a new one to the same peer.

    The connection dialled by the speaker with the higher BGP identifier (compared as unsigned
    32-bit integers) is kept. With equal identifiers (legal between ASes, RFC 6286) the one
    dialled by the speaker with the higher AS wins; if the ASes are equal too, or unknown,
    the existing connection stays.
    """
    local = int(ipaddress.IPv4Address(local_router_id))
    remote = int(ipaddress.IPv4Address(remote_router_id))
    if local == remote:
        if local_asn == remote_asn:
            return True
        local, remote = local_asn, remote_asn
    keep_ours = local > remote
    return keep_ours == existing_is_ours
