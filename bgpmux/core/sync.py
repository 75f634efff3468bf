"""End-of-RIB around a (re)start: nobody sees a partial table (RFC 4724 §4.1, §4.2).

- To the upstreams: End-of-RIB waits until every client, with or without graceful restart, has
  sent its table, or ``node.initial_sync_timeout`` passed. A client's table is complete at its
  End-of-RIB for every family it negotiated, or ``CLIENT_QUIET_TIME`` after its last UPDATE
  once it has sent one (a client that sends no End-of-RIB). After a bgpmux restart the ToR
  keeps our stale routes until then, instead of flushing what has not come back yet.
- To the clients that receive upstream routes: End-of-RIB waits until the upstreams have sent
  their tables (End-of-RIB, or a quiet ``UPSTREAM_QUIET_TIME`` after their last UPDATE: GoBGP
  and FRR send none to a peer without graceful restart), or the same timeout (longer by
  ``TABLE_FIRST_GRACE`` while an engine that wants the table before the session has none
  yet). A gracefully restarting Calico keeps the ToR's routes until then.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..wire.packing import pack_end_of_rib
from .peers import ClientPeer, UpstreamPeer

if TYPE_CHECKING:
    from .routing import Core

log = logging.getLogger("bgpmux.core")

UPSTREAM_QUIET_TIME = 1.0  # seconds after an upstream's last UPDATE that count as its End-of-RIB
# The same for a client. Local speakers send their whole table in one burst right after
# Established (FRR's first UPDATE may wait for its 1 s coalesce timer, hence "after the first
# UPDATE", not after Established); a second of silence after that is the end of the table.
CLIENT_QUIET_TIME = 1.0
# Seconds more the clients' End-of-RIB may wait, past the timeout, while an upstream's engine
# has the table but no session yet (``table_first``: gobgpd dials 5-10 s after it has it).
TABLE_FIRST_GRACE = 15.0


class SyncState:
    """The initial-sync state of one ``Core``; the ``deadline`` argument is when the initial
    sync times out (seconds, runner's clock)."""

    def __init__(self, core: Core, deadline: float) -> None:
        self.core = core
        self.sync_deadline = deadline
        self.initial_sync_done = False  # End-of-RIB may go to the upstreams
        self.upstreams_synced = False  # End-of-RIB may go to the clients
        self.eor_owed: set[str] = set()  # clients that wait for their End-of-RIB

    def deadline(self) -> float | None:
        """When the sync state must be looked at again (seconds, runner's clock), or None."""
        deadlines = []
        if not self.initial_sync_done:
            deadlines.append(self.sync_deadline)
        if not self.upstreams_synced:
            deadlines.append(self._upstreams_deadline())
        if not self.initial_sync_done:
            deadlines += [
                t
                for c in self.core.clients.values()
                if c.link is not None and c.channel.awaiting_eor and (t := self._quiet_at(c))
            ]
        if not self.upstreams_synced and self.eor_owed:
            deadlines += [
                t for u in self.core.upstreams.values() if u.up and (t := self._synced_at(u))
            ]
        return min(deadlines) if deadlines else None

    def end_of_rib_to(self, client: ClientPeer) -> None:
        """End-of-RIB to a client that just came up: at once, or owed until the upstreams'
        tables are in (when it receives them)."""
        link = client.link
        if link is None:
            return
        if client.channel.policy.receive_upstream_routes and not self.upstreams_synced:
            self.eor_owed.add(client.name)
        else:
            link.send([pack_end_of_rib(f) for f in link.families])

    def maybe_send_eor(self, now: float) -> None:
        """End-of-RIB to every established upstream that has not had it, once the clients have
        synced (or the timeout passed); the pending changes go out first."""
        core = self.core
        if not self.initial_sync_done:
            waiting = [c.name for c in core.clients.values() if not self.client_synced(c, now)]
            if waiting and now < self.sync_deadline:
                return
            if waiting:
                log.warning(
                    "initial sync timeout: sending End-of-RIB without %s", ", ".join(waiting)
                )
            self.initial_sync_done = True
        for upstream in core.upstreams.values():
            if upstream.up and not upstream.eor_sent:
                core.flush(now)  # the table goes out before End-of-RIB
                for family in upstream.families:  # never one the session did not negotiate
                    core.engine.end_of_rib(upstream.name, family)
                upstream.eor_sent = True
                log.info("End-of-RIB sent", extra={"peer": upstream.name})

    def check_upstreams(self, now: float) -> None:
        """Once every established upstream has sent its table (or the timeout passed), the
        clients that were owed End-of-RIB get it."""
        if self.upstreams_synced:
            return
        up = [self._synced_at(u) for u in self.core.upstreams.values() if u.up]
        done = bool(up) and all(t is not None and t <= now for t in up)
        if not done and now < self._upstreams_deadline():
            return
        self.upstreams_synced = True
        for name in sorted(self.eor_owed):
            link = self.core.clients[name].link
            if link is not None:
                link.send([pack_end_of_rib(f) for f in link.families])
        self.eor_owed.clear()

    def _upstreams_deadline(self) -> float:
        """When the clients' End-of-RIB stops waiting for the upstreams' tables: the timeout,
        plus ``TABLE_FIRST_GRACE`` while an upstream is up without a session yet, or got its
        session only after the timeout (its table is still on its way: without the grace the
        clients would get End-of-RIB the moment its session opens, and a gracefully restarting
        Calico would flush the ToR's routes it kept, RFC 4724 §4.2)."""
        late = any(
            u.up and (u.established_at is None or u.established_at > self.sync_deadline)
            for u in self.core.upstreams.values()
        )
        return self.sync_deadline + (TABLE_FIRST_GRACE if late else 0.0)

    def client_synced(self, client: ClientPeer, now: float) -> bool:
        """Whether ``client`` has sent its table: Established, and its End-of-RIB came for
        every family it negotiated, or ``CLIENT_QUIET_TIME`` passed since its last UPDATE."""
        if client.link is None:
            return False
        if not client.channel.awaiting_eor:
            return True
        quiet_at = self._quiet_at(client)
        return quiet_at is not None and now >= quiet_at

    def _quiet_at(self, client: ClientPeer) -> float | None:
        """When a client that sent UPDATEs but no End-of-RIB counts as synced; None before
        its first UPDATE."""
        last = client.last_update_at
        return None if last is None else last + CLIENT_QUIET_TIME

    def _synced_at(self, upstream: UpstreamPeer) -> float | None:
        """When an established upstream's table counts as complete: its End-of-RIB for every
        family it negotiated, or a quiet moment after its last UPDATE."""
        if upstream.established_at is None:
            return None
        if set(upstream.families) <= upstream.eor_received:
            return upstream.established_at
        last = max(upstream.established_at, upstream.last_update_at or 0.0)
        return last + UPSTREAM_QUIET_TIME
