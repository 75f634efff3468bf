"""Upstreams added and removed on reload, without touching the other sessions.

- Added: the core builds its channel (ranked after every upstream it has: the order at start
  keeps ranking the others' routes, and ADD-PATH path identifiers stay unique) and the engine
  dials it. Once Established it gets the current table, then End-of-RIB, as any upstream does
  after its session comes up (``Core._upstream_established``, ``sync.maybe_send_eor``).
- Removed: the engine ends the session (Cease/Peer De-configured, RFC 4486 §3, where the
  engine lets us choose); its routes are withdrawn at once (no graceful restart: it is gone),
  from the clients that receive upstream routes, and its record goes, with its metrics series.
  Events the engine had already queued for it are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..config import Upstream
from .events import UpstreamDown
from .peers import UpstreamPeer
from .upstream_policy import upstream_channel

if TYPE_CHECKING:
    from .routing import Core

log = logging.getLogger("bgpmux.core")

ENGINE_ERRORS = (NotImplementedError, OSError, ValueError)


def add_upstreams(core: Core, configs: Sequence[Upstream]) -> list[str]:
    """Add each upstream of ``configs`` (as this node runs it) to the core and the engine;
    returns what could not be added, in words (the engine refused: that needs a restart)."""
    failed = []
    for config in configs:
        try:
            core.engine.add_upstream(config)
        except ENGINE_ERRORS as e:
            failed.append(f"upstreams: {config.name} added ({e})")
            continue
        order = 1 + max((u.channel.source.order for u in core.upstreams.values()), default=-1)
        core.upstreams[config.name] = UpstreamPeer(upstream_channel(config, order, core.node_asn))
        core.upstreams_removed.discard(config.name)
        core._peers_changed()
        where = f"{config.address} port {config.port}"
        log.info("upstream added: dialling %s", where, extra={"peer": config.name})
    return failed


def remove_upstreams(core: Core, names: Sequence[str], now: float) -> list[str]:
    """Remove each upstream of ``names`` from the engine and the core, its routes withdrawn;
    returns what could not be removed, in words."""
    failed = []
    for name in names:
        try:
            core.engine.remove_upstream(name)
        except ENGINE_ERRORS as e:
            failed.append(f"upstreams: {name} removed ({e})")
            continue
        upstream = core.upstreams[name]
        routes = upstream.channel.rib.count()
        core.handle(UpstreamDown(name), now)  # no stale time: its routes go now
        del core.upstreams[name]
        core.upstreams_removed.add(name)
        core._peers_changed()
        what = f"session ended, {routes} routes withdrawn"
        log.info("upstream removed: %s", what, extra={"peer": name})
    return failed
