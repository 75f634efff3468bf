"""The single owner of routing state, sans-IO.

The core takes typed events (``events``) with the time they happened, keeps every peer's
channel and the two Loc-RIBs, and tells the receivers what changed: the upstreams through the
engine port, the clients through their links. It never reads a clock, sleeps or touches a
socket; ``runner`` is the asyncio glue that feeds it, in the manner of aioquic's connection
and its asyncio protocol.

The two Loc-RIBs are named for whom they serve: ``for_upstreams`` decides among the clients'
routes, ``for_clients`` among the upstreams'. Changes are collected per family and handed out
on ``flush``, batched by attribute set.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..policy.channels import ClientChannel, CutOff, LimitReached, UpstreamChannel
from ..rib.adj_rib_in import AdjRibIn
from ..rib.decision import explain
from ..rib.loc_rib import Changes, LocRib, merge_changes
from ..rib.paths import Path
from ..session.graceful import STALE_PATH_TIME
from ..session.states import DownReason
from ..wire.constants import Family
from ..wire.errors import CeaseSubcode, ErrorCode
from ..wire.messages import Notification
from ..wire.prefix import Prefix, prefix_to_str
from . import upstream_restart
from .add_path import ClientExport
from .client_import import client_imported
from .events import (
    UPSTREAM_EVENTS,
    ClientDown,
    ClientEstablished,
    ClientRouteRefresh,
    ClientUpdate,
    Event,
    PeersQuery,
    Reconfigure,
    RoutesQuery,
    UpstreamDown,
    UpstreamEndOfRib,
    UpstreamEstablished,
    UpstreamRouteRefresh,
    UpstreamRoutes,
    UpstreamWithdrawn,
)
from .export import Exporter
from .peers import ClientPeer, UpstreamPeer, by_family
from .port import Engine
from .reconfigure import reconfigure
from .refresh import Refresher
from .sync import SyncState
from .upstream_policy import upstream_channel, upstream_imported
from .views import peer_counts, routes_view
from .watch import Change, SessionChange, conflict_seen, route_changes

log = logging.getLogger("bgpmux.core")

LOG_LINES_PER_BATCH = 10  # per-prefix log lines per batch; the rest are summarised
COMPACT_AFTER_CHANGES = 1000  # a flush of this many changes compacts the tables; others do
COMPACT_INTERVAL = 1.0  # at most this often (s): a lone UPDATE does not look at every table


@dataclass
class _Batch:
    received_at: list[float] = field(default_factory=list)
    log_lines: int = 0
    suppressed: int = 0


class Core:
    """Routing state and its handlers. ``handle(event, now)`` for every event, ``flush(now)``
    after a batch of them, ``handle_timer(now)`` at ``get_timer()``; times are seconds on the
    runner's monotonic clock."""

    def __init__(self, config: Config, engine: Engine, now: float) -> None:
        self.config = config
        node = config.node
        self.node_asn = node.asn
        # A family is carried only where the node has an address for its next hop: an
        # IPv6-only node carries IPv6 routes only.
        self.next_hops = {family: address.packed for family, address in node.next_hops().items()}
        self.families = tuple(self.next_hops)
        self.clients: dict[str, ClientPeer] = {
            cfg.name: ClientPeer(ClientChannel(cfg, order, node.asn, self.families))
            for order, cfg in enumerate(config.clients)
        }
        self.upstreams: dict[str, UpstreamPeer] = {
            cfg.name: UpstreamPeer(upstream_channel(cfg, order, node.asn))
            for order, cfg in enumerate(config.upstreams)
        }
        self.upstreams_removed: set[str] = set()  # on reload: their late events are ignored
        # Derived from ``clients`` and ``upstreams`` by ``_peers_changed`` (and only there).
        self._client_list: list[ClientPeer] = []
        self._upstream_list: list[UpstreamPeer] = []
        self._channels: list[ClientChannel | UpstreamChannel] = []
        self.for_upstreams = LocRib([], True)
        self.for_clients = LocRib([])
        self.exporter = Exporter(engine, node.asn, self.next_hops, self.clients)
        self.client_export = ClientExport(self.exporter, [])
        self._peers_changed()
        self.sync = SyncState(self, now + node.initial_sync_timeout)
        self.refresh = Refresher(self)
        self._pending_up: dict[Family, Changes] = {}
        self._pending_down: dict[Family, Changes] = {}
        self.propagation_observer: Callable[[float], None] | None = None
        # Set only while someone watches (the API's event stream): see ``watch``.
        self.watcher: Callable[[Change], None] | None = None
        self._batch = _Batch()
        self._compact_at = now
        # changes flushed since the last compaction, and whether one is owed (``get_timer``)
        self._changed_since_compact = 0
        self._compact_owed = False
        self._handlers: dict[type, Callable[[Any, float], object]] = {
            ClientEstablished: self._client_established,
            ClientUpdate: self._client_update,
            ClientRouteRefresh: self.refresh.client,
            ClientDown: self._client_down,
            UpstreamEstablished: self._upstream_established,
            UpstreamDown: self._upstream_down,
            UpstreamRoutes: self._upstream_routes,
            UpstreamWithdrawn: self._upstream_withdrawn,
            UpstreamEndOfRib: self._upstream_end_of_rib,
            UpstreamRouteRefresh: self.refresh.upstream,
            Reconfigure: lambda event, now: reconfigure(self, event, now),
            RoutesQuery: lambda query, _now: routes_view(self, query),
            PeersQuery: lambda _query, _now: peer_counts(self),
        }

    @property
    def engine(self) -> Engine:
        """The engine that carries the changes to the upstreams."""
        return self.exporter.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        """Set by the daemon, which builds the engine after the core."""
        self.exporter.engine = engine

    def handle(self, event: Event, now: float) -> object:
        """Apply one event; returns the result of a request (``Reconfigure``, ``RoutesQuery``,
        ``PeersQuery``; None for other events). An upstream event (``UPSTREAM_EVENTS``) for an
        upstream removed by a reload is ignored: the engine had queued it before the removal.
        Raises KeyError for a peer name the configuration does not have (a request naming an
        unknown peer gets an ``{"error": ...}`` result instead)."""
        removed = self.upstreams_removed
        if removed and isinstance(event, UPSTREAM_EVENTS) and event.upstream in removed:
            return None
        return self._handlers[type(event)](event, now)

    # ------------------------------------------------------------------ clients

    def _client_established(self, event: ClientEstablished, now: float) -> None:
        client = self.clients[event.client]
        channel = client.channel
        client.link = event.link
        client.established_at = now
        client.last_update_at = None
        self.client_export.clients_changed(self._client_list)
        if channel.rib.stale_count():
            if not event.graceful_restart:  # came back without graceful restart: stale goes
                self._drop(channel, channel.sweep_stale())
            else:
                channel.stale_deadline = now + STALE_PATH_TIME
        # Every client's table counts as sent at its End-of-RIB (or a quiet moment: sync.py).
        channel.awaiting_eor = set(event.link.families)
        self._send_full_table(client, end_of_rib=True)
        if self.watcher is not None:
            self.watcher(SessionChange(client.name, "client", True))

    def _client_update(self, event: ClientUpdate, now: float) -> None:
        client = self.clients[event.client]
        channel = client.channel
        update = event.update
        self._batch.received_at.append(now)
        client.note_update(now)
        eor = update.end_of_rib()
        if eor is not None:
            swept = channel.end_of_rib(eor)
            if swept:
                log.info(
                    "End-of-RIB for %s: %d stale routes swept",
                    eor,
                    len(swept),
                    extra={"peer": client.name},
                )
                self._drop(channel, swept)
            return
        client_imported(self, client, channel.receive(update), update.treat_as_withdraw)

    def _client_down(self, event: ClientDown, now: float) -> None:
        client = self.clients[event.client]
        channel = client.channel
        self.sync.eor_owed.discard(client.name)
        self.exporter.forget(client.name)
        if client.link is not None:
            client.flaps += 1
        client.link = None
        client.established_at = None
        client.last_update_at = None
        self.client_export.clients_changed(self._client_list)
        channel.awaiting_eor.clear()
        if self.watcher is not None:
            self.watcher(SessionChange(client.name, "client", False, event.stale_time or 0.0))
        if event.stale_time and channel.rib.count():
            dropped = channel.keep_stale(event.stale_families, now + event.stale_time)
            if dropped:
                self._drop(channel, dropped)
            log.info(
                "session down, keeping %d routes as stale for %ds (graceful restart)",
                channel.rib.stale_count(),
                event.stale_time,
                extra={"peer": client.name},
            )
            return
        dropped = channel.clear()
        if dropped:
            log.info(
                "session down, withdrawing %d routes", len(dropped), extra={"peer": client.name}
            )
            self._drop(channel, dropped)

    def _cut_off(self, client: ClientPeer, cut_off: CutOff) -> None:
        log.error(
            "sent more than max_prefixes (%d): closing the session",
            cut_off.limit,
            extra={"peer": client.name},
        )
        link = client.link
        self._client_down(ClientDown(client.name), 0.0)
        if link is not None:
            # RFC 4486 §4: the data is the AFI, SAFI and upper bound of the family that overflowed.
            family = cut_off.family
            data = struct.pack("!HBI", family.afi, family.safi, min(cut_off.limit, 2**32 - 1))
            link.shutdown(
                Notification(ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, data),
                DownReason.MAX_PREFIXES,
            )

    def _limit_reached(self, client: ClientPeer, reached: LimitReached) -> None:
        what = {
            "block": "new prefixes over it are dropped",
            "warn": "routes are kept (max_prefixes_action: warn)",
        }.get(reached.action, reached.action)
        log.warning(
            "reached max_prefixes (%d) in %s: %s",
            reached.limit,
            reached.family,
            what,
            extra={"peer": client.name},
        )

    def _drop(
        self, channel: ClientChannel | UpstreamChannel, routes: list[tuple[Family, Prefix]]
    ) -> None:
        """Decide again the prefixes whose routes ``channel`` no longer has."""
        loc_rib = self.for_upstreams if isinstance(channel, ClientChannel) else self.for_clients
        for family, prefixes in by_family(routes).items():
            self._decide(loc_rib, family, prefixes, channel.rib, None)

    def _decide(
        self,
        loc_rib: LocRib,
        family: Family,
        prefixes: Sequence[Prefix],
        changed: AdjRibIn | None = None,
        path: Path | None = None,
        old: Mapping[Prefix, Path] | None = None,
    ) -> None:
        """``LocRib.decide``; what changed waits for ``flush``, new conflicts are logged."""
        changes = loc_rib.decide(family, prefixes, changed, path, old)
        if changes:
            pending = self._pending_up if loc_rib is self.for_upstreams else self._pending_down
            merge_changes(pending, family, changes)
        if self.client_export.multipath and loc_rib is self.for_clients:
            self.client_export.note(family, prefixes, None if old is not None else changed, path)
        for conflict in loc_rib.take_conflicts():
            best, losers = conflict.best, conflict.losers
            prefix_text = prefix_to_str(conflict.family, conflict.prefix)
            why = explain(best, losers[0]).value
            log.warning(
                "conflict on %s: %s wins over %s (%s)",
                prefix_text,
                best.source.name,
                ", ".join(p.source.name for p in losers),
                why,
                extra={"peer": best.source.name},
            )
            if self.watcher is not None:
                self.watcher(conflict_seen(conflict, prefix_text, why))

    # ------------------------------------------------------------------ peers

    def _peers_changed(self) -> None:
        """Rebuild everything derived from ``clients`` and ``upstreams`` (at start, and when a
        reload adds or removes a peer): the peer lists in their order, every channel (the
        clients' first), each Loc-RIB's sources, and the clients' export (which carries the
        changes it had noted)."""
        self._client_list[:] = self.clients.values()
        self._upstream_list[:] = self.upstreams.values()
        self._channels[:] = [
            *(c.channel for c in self._client_list),
            *(u.channel for u in self._upstream_list),
        ]
        self.for_upstreams.sources = [c.channel.rib for c in self._client_list]
        self.for_clients.sources = [u.channel.rib for u in self._upstream_list]
        self.client_export = self.client_export.with_upstreams(self._upstream_list)
        self.client_export.clients_changed(self._client_list)

    # ------------------------------------------------------------------ upstreams

    def _upstream_established(self, event: UpstreamEstablished, now: float) -> None:
        upstream = self.upstreams[event.upstream]
        upstream.up = True
        upstream.eor_sent = False
        upstream.established_at = None if event.table_first else now  # see sync._synced_at
        # Only what both sides negotiated: nothing of another family goes out (RFC 4760 §8).
        negotiated = self.families if event.families is None else event.families
        upstream.families = tuple(f for f in self.families if f in negotiated)
        self.exporter.forget(upstream.name)
        # table_first: no session yet; stale routes keep their restart time (RFC 4724 §4.2)
        if not event.table_first:
            log.info("upstream session established", extra={"peer": upstream.name})
            if self.watcher is not None:
                self.watcher(SessionChange(upstream.name, "upstream", True))
            self._drop(upstream.channel, upstream_restart.session_up(upstream.channel, event, now))
        for family in upstream.families:
            self.table_to_upstream(upstream, family)
        self.sync.maybe_send_eor(now)

    def table_to_upstream(self, upstream: UpstreamPeer, family: Family) -> None:
        """Everything exported to ``upstream`` for ``family``: at Established, and as the
        answer to its ROUTE-REFRESH (``refresh``)."""
        table = self.for_upstreams.table(family)
        self.exporter.table_to_upstream(upstream.name, upstream.channel.ebgp, family, table)

    def _upstream_end_of_rib(self, event: UpstreamEndOfRib, now: float) -> None:
        upstream = self.upstreams[event.upstream]
        upstream.eor_received.add(event.family)
        swept = upstream.channel.end_of_rib(event.family)
        if swept:
            log.info("End-of-RIB: %d stale routes swept", len(swept), extra={"peer": upstream.name})
            self._drop(upstream.channel, swept)
        self.sync.check_upstreams(now)

    def _upstream_down(self, event: UpstreamDown, now: float) -> None:
        upstream = self.upstreams[event.upstream]
        channel = upstream.channel
        if upstream.up and upstream.established_at is not None:  # not table_first: a flap
            upstream.flaps += 1
            log.warning("upstream session down", extra={"peer": upstream.name})
            if self.watcher is not None:
                stale_time = event.stale_time or 0.0
                self.watcher(SessionChange(upstream.name, "upstream", False, stale_time))
        upstream.up = False
        upstream.families = ()
        upstream.eor_sent = False
        upstream.eor_received.clear()
        upstream.last_update_at = None
        upstream.established_at = None
        self.exporter.forget(upstream.name)
        self._drop(channel, upstream_restart.session_down(channel, event, now))

    def _upstream_routes(self, event: UpstreamRoutes, now: float) -> None:
        upstream = self.upstreams[event.upstream]
        upstream.last_update_at = now
        imported = upstream.channel.receive(
            event.family, event.attributes, event.next_hop, event.prefixes
        )
        looped = imported.looped
        if looped:
            self._log_batch(
                logging.INFO,
                upstream.name,
                "ignoring %d routes whose AS path holds the node AS %d (a loop), e.g. %s",
                len(looped),
                self.node_asn,
                prefix_to_str(event.family, looped[0]),
            )
        upstream_imported(self, upstream, imported)

    def _upstream_withdrawn(self, event: UpstreamWithdrawn, now: float) -> None:
        upstream = self.upstreams[event.upstream]
        upstream.last_update_at = now
        family, prefixes, _none = upstream.channel.withdraw(event.family, event.prefixes)
        self._decide(self.for_clients, family, prefixes, upstream.channel.rib, None)

    # ------------------------------------------------------------------ time

    def get_timer(self) -> float | None:
        """The earliest time ``handle_timer`` must run (seconds, runner's clock), or None."""
        deadlines = [t for c in self._channels if (t := c.stale_deadline) is not None]
        if self._compact_owed:
            deadlines.append(self._compact_at)
        for extra in (self.sync.deadline(), self.refresh.deadline(self._channels)):
            if extra is not None:
                deadlines.append(extra)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Graceful-restart timers that ended sweep their stale routes (RFC 4724 §4.2); the
        initial sync may end (End-of-RIB to the upstreams and the clients); a compaction a
        flush put off runs."""
        if self._compact_owed and now >= self._compact_at:
            self._compact(now)
        for channel in self._channels:
            if channel.stale_deadline is not None and now >= channel.stale_deadline:
                swept = channel.sweep_stale()
                if swept:
                    log.warning(
                        "graceful-restart timer ended: %d stale routes withdrawn",
                        len(swept),
                        extra={"peer": channel.name},
                    )
                    self._drop(channel, swept)
        self.refresh.handle_timer(self._channels, now)
        self.sync.maybe_send_eor(now)
        self.sync.check_upstreams(now)

    # ------------------------------------------------------------------ output

    def flush(self, now: float) -> None:
        """Hand every pending change to the engine and the clients, grouped by attribute set."""
        if self.watcher is not None:
            for change in route_changes(self._pending_up, self._pending_down):
                self.watcher(change)
        changed = 0
        if self._pending_up:
            pending_up, self._pending_up = self._pending_up, {}
            for family, changes in pending_up.items():
                changed += len(changes)
                upstream_groups = self._upstream_groups(family)
                if upstream_groups:
                    self.exporter.to_upstreams(upstream_groups, family, changes)
        if self._pending_down or self.client_export.multipath:
            pending_down, self._pending_down = self._pending_down, {}
            changed += sum(len(changes) for changes in pending_down.values())
            self.client_export.flush(self._client_list, pending_down)
        batch, self._batch = self._batch, _Batch()
        if batch.suppressed:
            log.warning("... and %d more such log lines in this batch", batch.suppressed)
        if self.propagation_observer is not None:
            for received in batch.received_at:
                self.propagation_observer(now - received)
        if not self.sync.initial_sync_done:
            self.sync.maybe_send_eor(now)
        self._changed_since_compact += changed
        if changed >= COMPACT_AFTER_CHANGES or now >= self._compact_at:
            self._compact(now)
        elif self._changed_since_compact >= COMPACT_AFTER_CHANGES:
            # small flushes added up (a mass withdrawal): compact once the time comes, even if
            # nothing else happens by then; fewer changes cannot have emptied a table much
            self._compact_owed = True

    def _compact(self, now: float) -> None:
        """Give back the memory of tables that mass withdrawals left mostly empty."""
        self._compact_at = now + COMPACT_INTERVAL
        self._compact_owed = False
        self._changed_since_compact = 0
        self.for_upstreams.compact()
        self.for_clients.compact()
        for channel in self._channels:
            channel.rib.compact()

    def _upstream_groups(self, family: Family) -> dict[bool, list[str]]:
        """The names of the upstreams that are up and negotiated ``family``, keyed by eBGP."""
        groups: dict[bool, list[str]] = {}
        for upstream in self._upstream_list:
            if upstream.up and family in upstream.families:
                groups.setdefault(upstream.channel.ebgp, []).append(upstream.name)
        return groups

    def _send_full_table(self, client: ClientPeer, end_of_rib: bool) -> None:
        """The upstreams' routes to a client that receives them; End-of-RIB to every client."""
        link = client.link
        if link is None:
            return
        if client.channel.policy.receive_upstream_routes:
            self.client_export.send_table(client, self.for_clients)
        if end_of_rib:
            self.sync.end_of_rib_to(client)

    def _log_batch(self, level: int, peer: str, msg: str, *args: object) -> None:
        batch = self._batch
        if batch.log_lines >= LOG_LINES_PER_BATCH:
            batch.suppressed += 1
            return
        batch.log_lines += 1
        log.log(level, msg, *args, extra={"peer": peer})
