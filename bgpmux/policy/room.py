"""The ``block`` side of a prefix limit, shared by the client and the upstream channels."""

from __future__ import annotations

from collections.abc import Container

from ..rib.adj_rib_in import AdjRibIn
from ..wire.constants import Family
from ..wire.prefix import Prefix


def keep_within(
    room: int,
    rib: AdjRibIn,
    rejected: Container[tuple[Family, Prefix]],
    family: Family,
    accepted: list[Prefix],
    refused: list[Prefix],
) -> tuple[list[Prefix], list[Prefix], int]:
    """Of ``accepted`` and ``refused`` (prefixes of ``family`` in one UPDATE), keep those already
    held (in ``rib`` or ``rejected``) and, in order, as many new ones as ``room`` (a count of
    prefixes) leaves. Returns (accepted kept, refused kept, new prefixes dropped)."""
    if len(accepted) + len(refused) <= room:  # held prefixes take no room: an upper bound
        return accepted, refused, 0
    dropped = 0

    def fits(prefix: Prefix) -> bool:
        nonlocal room, dropped
        if rib.get(family, prefix) is not None or (family, prefix) in rejected:
            return True
        if room > 0:
            room -= 1
            return True
        dropped += 1
        return False

    kept_accepted = [p for p in accepted if fits(p)]
    kept_refused = [p for p in refused if fits(p)]
    return kept_accepted, kept_refused, dropped
