"""GR helper towards the upstreams (RFC 4724 §4.2, bgpmux the Receiving Speaker), sans-IO.

When an upstream that negotiated graceful restart drops without a NOTIFICATION (TCP lost,
hold timer, bgpmux's ExaBGP child dying), its routes stay in its Adj-RIB-In, marked stale:
the Loc-RIB that serves the clients does not change, so nothing is withdrawn from them. The
engine says how long (the restart time the upstream's capability gave) and for which
families. Then:

* the session is not back within the restart time: every stale route goes;
* it is back: the families its new capability no longer covers are swept at once; the
  others wait. A route the upstream sends again is live once more; at its End-of-RIB for a
  family the routes still stale are swept; without an End-of-RIB they go
  ``STALE_PATH_TIME`` seconds after the session came back;
* it drops again before that: routes still stale from the previous restart go at once
  (RFC 4724 §4.2, consecutive restarts), the live ones become stale.
"""

from __future__ import annotations

import logging

from ..policy.channels import UpstreamChannel
from ..session.graceful import STALE_PATH_TIME
from ..wire.constants import Family
from ..wire.prefix import Prefix
from .events import UpstreamDown, UpstreamEstablished

log = logging.getLogger("bgpmux.core")

Routes = list[tuple[Family, Prefix]]


def session_down(channel: UpstreamChannel, event: UpstreamDown, now: float) -> Routes:
    """The upstream's session ended: keep its routes stale when ``event`` says it may restart
    gracefully, else remove them. Returns the routes removed (to decide again)."""
    if not event.stale_time or not channel.rib.count():
        return channel.clear()
    # A restart during the last one's recovery: what is still stale from it goes. Routes a BoRR
    # marked stale (RFC 7313) are not from a restart: they are kept like the live ones.
    dropped = channel.sweep_stale() if channel.stale_deadline is not None else []
    dropped += channel.keep_stale(event.stale_families, now + event.stale_time)
    kept = channel.rib.stale_count()
    if not kept:
        channel.stale_deadline = None
    removed = f", {len(dropped)} removed (still stale, or of no kept family)" if dropped else ""
    log.info(
        "keeping %d routes as stale for %gs (graceful restart)%s",
        kept,
        event.stale_time,
        removed,
        extra={"peer": channel.name},
    )
    return dropped


def session_up(channel: UpstreamChannel, event: UpstreamEstablished, now: float) -> Routes:
    """The upstream's session is back: stale routes of the families ``event`` does not keep
    go at once; the others wait for its End-of-RIB, at most ``STALE_PATH_TIME`` seconds.
    Returns the routes removed."""
    stale = [family for family, table in channel.rib.stale.items() if table]
    if not stale:
        return []
    kept = event.stale_kept
    swept: Routes = []
    for family in stale:
        if kept is not None and family not in kept:
            swept += channel.rib.sweep(family)
    waiting = channel.rib.stale_count()
    channel.stale_deadline = now + STALE_PATH_TIME if waiting else None
    if swept:
        log.warning(
            "%d stale routes removed: the new session keeps no graceful restart for their family",
            len(swept),
            extra={"peer": channel.name},
        )
    if waiting:
        log.info(
            "%d stale routes wait for End-of-RIB (at most %gs)",
            waiting,
            STALE_PATH_TIME,
            extra={"peer": channel.name},
        )
    return swept
