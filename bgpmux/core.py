"""The single owner of routing state.

Sessions and engines never touch the RIBs: they post calls to the core (``Core.post``), which
runs them one at a time on its own task and then flushes the changes they caused, batched by
attribute set, to the engine (upstream direction) and to the clients (downstream direction).
The handlers themselves are plain synchronous methods with ``now`` passed in, so unit tests
drive them without asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import reload
from .config import Client, Config
from .engines.base import Engine
from .export import Exporter
from .peers import ClientLink, ClientState, UpstreamState, group_by_path
from .policy.prefix_list import PrefixList
from .policy.transforms import ClientExport, RejectReason, Tagger
from .rib.adj_rib_in import AdjRibIn, compacted
from .rib.decision import best_path, explain
from .rib.paths import Path, PathInterner, Source
from .wire.attributes import PathAttributes
from .wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family
from .wire.errors import CeaseSubcode, ErrorCode
from .wire.messages import Notification, Update
from .wire.packing import pack_end_of_rib, pack_withdraw
from .wire.prefix import Prefix, prefix_to_str

log = logging.getLogger("bgpmux.core")

STALE_PATH_TIME = 360.0  # how long stale routes may wait for End-of-RIB once a client is back
LOG_LINES_PER_BATCH = 10  # per-prefix log lines per batch; the rest are summarised
UPSTREAM_QUIET_TIME = 1.0  # an upstream that sends no End-of-RIB is taken as synced this long
# after its last UPDATE (ToRs without graceful restart, e.g. GoBGP and FRR by default, send none)
QUEUE_HIGH_WATER = 512  # queued calls above which sessions stop reading until the core catches up


@dataclass
class _Batch:
    received_at: list[float] = field(default_factory=list)
    log_lines: int = 0
    suppressed: int = 0


class Core:
    def __init__(self, config: Config, engine: Engine, now: float) -> None:
        self.config = config
        node = config.node
        self.node_asn = node.asn
        self.next_hops: dict[Family, bytes] = {IPV4_UNICAST: node.address.packed}
        if node.address_v6 is not None:
            self.next_hops[IPV6_UNICAST] = node.address_v6.packed
        self.families = tuple(self.next_hops)
        self.interner = PathInterner()
        self.clients: dict[str, ClientState] = {}
        for order, cfg in enumerate(config.clients):
            self.clients[cfg.name] = ClientState(
                config=cfg,
                source=Source(cfg.name, False, cfg.priority, order),
                accept=PrefixList(cfg.accept),
                tag=Tagger(tuple(cfg.add_communities), tuple(cfg.add_large_communities)),
                export=ClientExport(node.asn, ibgp=cfg.asn == node.asn),
            )
        self._client_list = list(self.clients.values())
        self.upstreams: dict[str, UpstreamState] = {}
        for order, ucfg in enumerate(config.upstreams):
            source = Source(ucfg.name, True, -order, order)
            self.upstreams[ucfg.name] = UpstreamState(
                ucfg.name, source, ebgp=ucfg.asn != node.asn, allow_node_as=ucfg.allow_node_as
            )
        self._upstream_list = list(self.upstreams.values())
        self.exporter = Exporter(engine, node.asn, self.next_hops, self.clients)
        # Loc-RIB: the best client path per prefix (what the upstreams get), and the best
        # upstream path per prefix (what the clients get).
        self.loc_rib: dict[Family, dict[Prefix, Path]] = {
            f: {} for f in (IPV4_UNICAST, IPV6_UNICAST)
        }
        self.down_rib: dict[Family, dict[Prefix, Path]] = {
            f: {} for f in (IPV4_UNICAST, IPV6_UNICAST)
        }
        self._pending_up: dict[Family, dict[Prefix, Path | None]] = defaultdict(dict)
        self._pending_down: dict[Family, dict[Prefix, Path | None]] = defaultdict(dict)
        self.conflicts: set[tuple[Family, Prefix]] = set()
        self.conflicts_total = 0
        self.sync_deadline = now + config.node.initial_sync_timeout
        self.initial_sync_done = False
        # Clients that receive upstream routes get End-of-RIB once the upstreams have sent their
        # tables (or the sync timeout passed): a gracefully restarting Calico keeps the ToR's
        # routes until then, instead of flushing them when bgpmux itself restarts.
        self.upstreams_synced = False
        self._eor_owed: set[str] = set()
        self.propagation_observer: Callable[[float], None] | None = None
        self._batch = _Batch()
        self._queue: asyncio.Queue[tuple[Callable[..., None], tuple[Any, ...]]] | None = None
        self._drain_waiters: list[Callable[[], None]] = []
        self._timer_fired = False

    @property
    def engine(self) -> Engine:
        return self.exporter.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:  # the daemon builds the engine after the core
        self.exporter.engine = engine

    # ------------------------------------------------------------------ clients

    def client_up(self, name: str, link: ClientLink, graceful_restart: bool, now: float) -> None:
        client = self.clients[name]
        client.link = link
        client.established_at = now
        if client.rib.stale_count():
            if not graceful_restart:
                self._drop(client.rib, client.rib.sweep())  # came back without GR: stale is gone
                client.stale_deadline = None
            else:
                client.stale_deadline = now + STALE_PATH_TIME
        client.awaiting_eor = set(link.families) if graceful_restart else set()
        self._send_full_table(client, end_of_rib=True)

    def client_refresh(self, name: str, now: float) -> None:
        """ROUTE-REFRESH from a client: send it our table again."""
        self._send_full_table(self.clients[name], end_of_rib=False)

    def client_update(self, name: str, update: Update, now: float) -> None:
        client = self.clients[name]
        client.updates_received += 1
        self._batch.received_at.append(now)
        eor = update.end_of_rib()
        if eor is not None:
            self._client_end_of_rib(client, eor)
            return
        # (family, prefixes, the path they now have from this client, or None: removed)
        changes: list[tuple[Family, list[Prefix], Path | None]] = []
        rejected = client.rejected
        for family, withdrawn in update.withdrawals():
            changes.append((family, client.rib.remove_many(family, withdrawn), None))
            if rejected:
                for prefix in withdrawn:
                    rejected.pop((family, prefix), None)
        for family, attrs, next_hop, prefixes in update.announcements():
            changes += self._import(client, family, attrs, next_hop, prefixes)
        if update.treat_as_withdraw is not None:
            self._log_batch(
                logging.WARNING,
                client.source.name,
                "malformed UPDATE treated as withdraw: %s",
                update.treat_as_withdraw,
            )
        if client.rib.count() + len(rejected) > client.config.max_prefixes:
            self._cut_off(client)
            return
        for family, changed_prefixes, path in changes:
            if changed_prefixes:
                self._recompute_clients(family, changed_prefixes, client.rib, path)

    def _import(
        self,
        client: ClientState,
        family: Family,
        attrs: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> list[tuple[Family, list[Prefix], Path | None]]:
        """Run the import policy; returns the prefixes removed (None) and set (their path)."""
        path = self.interner.get(client.source, attrs, next_hop)
        removed: list[Prefix] = []
        if family not in self.next_hops:
            for prefix in prefixes:
                if client.rib.remove(family, prefix) is not None:
                    removed.append(prefix)
                self._reject(client, family, prefix, RejectReason.NO_IPV6_NEXT_HOP, path)
            return [(family, removed, None)]
        accepted, refused = client.accept.split(family, prefixes)
        for prefix in refused:
            if client.rib.remove(family, prefix) is not None:
                removed.append(prefix)
            self._reject(client, family, prefix, RejectReason.NOT_ACCEPTED, path)
        if client.rejected:
            for prefix in accepted:
                client.rejected.pop((family, prefix), None)
        client.rib.set_many(family, accepted, path)
        return [(family, removed, None), (family, accepted, path)]

    def _reject(
        self,
        client: ClientState,
        family: Family,
        prefix: Prefix,
        reason: RejectReason,
        path: Path | None = None,
    ) -> None:
        key = (family, prefix)
        previous = client.rejected.get(key)
        client.rejected[key] = (reason, path)
        if previous is not None and previous[0] is reason:
            return  # logged once per prefix and reason
        self._log_batch(
            logging.WARNING,
            client.source.name,
            "rejected %s: %s",
            PrefixText(family, prefix),  # formatted only if the line is logged
            reason.value,
        )

    def _client_end_of_rib(self, client: ClientState, family: Family) -> None:
        client.awaiting_eor.discard(family)
        swept = client.rib.sweep(family)
        if swept:
            log.info(
                "End-of-RIB for %s: %d stale routes swept",
                family,
                len(swept),
                extra={"peer": client.source.name},
            )
            self._drop(client.rib, swept)
        if not client.rib.stale_count():
            client.stale_deadline = None

    def client_down(
        self,
        name: str,
        stale_time: float | None,
        now: float,
        stale_families: Collection[Family] | None = None,
    ) -> None:
        """The client's session ended. With ``stale_time`` it may come back gracefully: its
        routes of ``stale_families`` (default: all) stay, stale; the others are withdrawn."""
        client = self.clients[name]
        self._eor_owed.discard(name)
        self.exporter.forget(name)
        if client.link is not None:
            client.flaps += 1
        client.link = None
        client.established_at = None
        client.awaiting_eor.clear()
        if stale_time and client.rib.count():
            dropped = client.rib.mark_stale(stale_families)
            if dropped:
                self._drop(client.rib, dropped)
            count = client.rib.stale_count()
            client.stale_deadline = now + stale_time
            log.info(
                "session down, keeping %d routes as stale for %ds (graceful restart)",
                count,
                stale_time,
                extra={"peer": name},
            )
            return
        dropped = client.rib.clear()
        client.rejected.clear()
        client.stale_deadline = None
        if dropped:
            log.info("session down, withdrawing %d routes", len(dropped), extra={"peer": name})
            self._drop(client.rib, dropped)

    def _cut_off(self, client: ClientState) -> None:
        limit = client.config.max_prefixes
        log.error(
            "sent more than max_prefixes (%d): closing the session",
            limit,
            extra={"peer": client.source.name},
        )
        client.cutoffs += 1
        link = client.link
        self.client_down(client.source.name, None, 0.0)
        if link is not None:
            # RFC 4486 §4: the data is AFI, SAFI and the upper bound.
            data = struct.pack("!HBI", IPV4_UNICAST.afi, IPV4_UNICAST.safi, min(limit, 2**32 - 1))
            link.shutdown(
                Notification(ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, data)
            )

    def _drop(self, rib: AdjRibIn, routes: list[tuple[Family, Prefix]]) -> None:
        """Re-decide prefixes whose routes ``rib`` (a client's) no longer has."""
        for family, prefixes in by_family(routes).items():
            self._recompute_clients(family, prefixes, rib, None)

    def _recompute_clients(
        self,
        family: Family,
        prefixes: Sequence[Prefix],
        source: AdjRibIn | None = None,
        path: Path | None = None,
    ) -> None:
        ribs = [c.rib for c in self._client_list]
        self._redecide(
            family,
            prefixes,
            ribs,
            self.loc_rib[family],
            self._pending_up[family],
            True,
            source,
            path,
        )

    def _redecide(
        self,
        family: Family,
        prefixes: Sequence[Prefix],
        ribs: list[AdjRibIn],
        best_table: dict[Prefix, Path],
        pending: dict[Prefix, Path | None],
        clients: bool,
        source: AdjRibIn | None = None,
        path: Path | None = None,
    ) -> None:
        """Decide ``prefixes`` again among ``ribs``; changed winners go to ``best_table`` and
        ``pending``. Clients' prefixes held by more than one client are conflicts.

        With ``source``: these prefixes were just set to ``path`` in that RIB (or removed from
        it, ``path`` None). When no other RIB holds this family (the common case: one client
        holds the pod blocks, another the LB addresses) that settles them in bulk.
        """
        holders = [r for r in ribs if r.count_family(family)]
        conflicts = self.conflicts if clients else None
        best: Path | None
        if source is not None and (not holders or holders == [source]):
            if conflicts:
                conflicts.difference_update([(family, p) for p in prefixes])
            if path is not None:
                best_get = best_table.get
                changed = [p for p in prefixes if best_get(p) is not path]
                best_table.update(dict.fromkeys(changed, path))
                pending.update(dict.fromkeys(changed, path))
            else:
                best_pop = best_table.pop
                pending.update(dict.fromkeys(p for p in prefixes if best_pop(p, None) is not None))
            return
        for prefix in prefixes:
            candidates = [p for r in holders if (p := r.get(family, prefix)) is not None]
            if len(candidates) > 1:
                best = best_path(candidates)
                if clients:
                    self._note_conflict(family, prefix, candidates, best)
            else:
                best = candidates[0] if candidates else None
                if conflicts:
                    conflicts.discard((family, prefix))
            if best is best_table.get(prefix):
                continue
            if best is None:
                del best_table[prefix]
            else:
                best_table[prefix] = best
            pending[prefix] = best

    def _note_conflict(
        self, family: Family, prefix: Prefix, candidates: list[Path], best: Path | None
    ) -> None:
        key = (family, prefix)
        if key in self.conflicts or best is None:
            return
        self.conflicts.add(key)
        self.conflicts_total += 1
        losers = [p for p in candidates if p is not best]
        reason = explain(best, losers[0]).value
        log.warning(
            "conflict on %s: %s wins over %s (%s)",
            prefix_to_str(family, prefix),
            best.source.name,
            ", ".join(p.source.name for p in losers),
            reason,
            extra={"peer": best.source.name},
        )

    # ------------------------------------------------------------------ reload

    def reconfigure(self, config: Config, now: float) -> list[str]:
        """Apply a new configuration's client policies without touching any session.

        Policy fields (accept, max_prefixes, priority, receive_upstream_routes, tagging,
        keep_client_as_path) take effect at once: every route the client sent, accepted or
        not, is judged again. Anything else (node, engine, upstreams, listeners, a client's AS
        or address, clients added or removed) is a session's identity: returned as needing a
        restart, and not applied.
        """
        pending, policies = reload.diff(self.config, config)
        for new in policies:
            client = self.clients[new.name]
            if new != client.config:
                self._apply_policy(client, new, now)
        return pending

    def _apply_policy(self, client: ClientState, new: Client, now: float) -> None:
        log.info("applying the new import policy", extra={"peer": new.name})
        routes = list(client.rib.items())
        refused = [(f, p, path) for (f, p), (_r, path) in client.rejected.items() if path]
        was_receiving = client.config.receive_upstream_routes
        client.config = new
        client.source = Source(new.name, False, new.priority, client.source.order)
        client.accept = PrefixList(new.accept)
        client.tag = Tagger(tuple(new.add_communities), tuple(new.add_large_communities))
        client.rib = AdjRibIn()
        client.rejected = {}
        touched: dict[Family, list[Prefix]] = defaultdict(list)
        groups: dict[tuple[Family, PathAttributes, bytes, bool], list[Prefix]] = defaultdict(list)
        for family, prefix, path, stale in routes:
            groups[(family, path.attributes, path.next_hop, stale)].append(prefix)
            touched[family].append(prefix)
        for family, prefix, path in refused:
            groups[(family, path.attributes, path.next_hop, False)].append(prefix)
        for (family, attrs, next_hop, stale), prefixes in groups.items():
            if stale:  # still waiting for the client to send them again
                keep, _drop = client.accept.split(family, prefixes)
                path = self.interner.get(client.source, attrs, next_hop)
                client.rib.stale.setdefault(family, {}).update(dict.fromkeys(keep, path))
            else:
                for _family, changed, _path in self._import(
                    client, family, attrs, next_hop, prefixes
                ):
                    touched[family] += changed
        if client.rib.count() + len(client.rejected) > new.max_prefixes:
            self._cut_off(client)
            return
        for family, changed in touched.items():
            self._recompute_clients(family, changed)
        if client.link is not None and new.receive_upstream_routes != was_receiving:
            if new.receive_upstream_routes:
                self._send_full_table(client, end_of_rib=False)
            else:
                for family in client.link.families:
                    withdrawn = list(self.down_rib.get(family, {}))
                    client.link.send(
                        pack_withdraw(family, withdrawn, client.link.options.max_message_len)
                    )

    # ------------------------------------------------------------------ upstreams

    def upstream_up(self, name: str, now: float) -> None:
        upstream = self.upstreams[name]
        upstream.up = True
        upstream.eor_sent = False
        upstream.established_at = now
        self.exporter.forget(name)
        log.info("upstream session established", extra={"peer": name})
        for family in self.families:
            self.exporter.table_to_upstream(
                upstream.name, upstream.ebgp, family, self.loc_rib[family]
            )
        self._maybe_send_eor(now)

    def upstream_end_of_rib(self, name: str, family: Family, now: float) -> None:
        upstream = self.upstreams[name]
        upstream.eor_received.add(family)
        self._check_upstream_sync(now)

    def _upstream_synced_at(self, upstream: UpstreamState) -> float | None:
        """When an established upstream's table counts as complete: its End-of-RIB, or a quiet
        moment after its last UPDATE."""
        if upstream.established_at is None:
            return None
        if set(self.families) <= upstream.eor_received:
            return upstream.established_at
        last = max(upstream.established_at, upstream.last_update_at or 0.0)
        return last + UPSTREAM_QUIET_TIME

    def _check_upstream_sync(self, now: float) -> None:
        if self.upstreams_synced:
            return
        up = [self._upstream_synced_at(u) for u in self._upstream_list if u.up]
        done = bool(up) and all(t is not None and t <= now for t in up)
        if not done and now < self.sync_deadline:
            return
        self.upstreams_synced = True
        for name in sorted(self._eor_owed):
            client = self.clients[name]
            if client.link is not None:
                client.link.send([pack_end_of_rib(f) for f in client.link.families])
        self._eor_owed.clear()

    def upstream_down(self, name: str, now: float) -> None:
        upstream = self.upstreams[name]
        if upstream.up:
            upstream.flaps += 1
            log.warning("upstream session down", extra={"peer": name})
        upstream.up = False
        upstream.eor_sent = False
        upstream.eor_received.clear()
        upstream.looped.clear()
        upstream.last_update_at = None
        upstream.established_at = None
        self.exporter.forget(name)
        for family, prefixes in by_family(upstream.rib.clear()).items():
            self._recompute_upstreams(family, prefixes, upstream.rib, None)

    def upstream_announce(
        self,
        name: str,
        family: Family,
        attrs: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
        now: float,
    ) -> None:
        upstream = self.upstreams[name]
        upstream.last_update_at = now
        if upstream.ebgp and not upstream.allow_node_as and self.node_asn in attrs.as_path_flat():
            new = [p for p in prefixes if (family, p) not in upstream.looped]
            if new:
                upstream.looped.update((family, p) for p in new)
                self._log_batch(
                    logging.INFO,
                    name,
                    "ignoring %d routes whose AS path holds the node AS %d (a loop), e.g. %s",
                    len(new),
                    self.node_asn,
                    prefix_to_str(family, new[0]),
                )
            self.upstream_withdraw(name, family, prefixes, now, looped=True)
            return
        if upstream.looped:
            upstream.looped.difference_update((family, p) for p in prefixes)
        path = self.interner.get(upstream.source, attrs, next_hop)
        upstream.rib.set_many(family, prefixes, path)
        self._recompute_upstreams(family, prefixes, upstream.rib, path)

    def upstream_withdraw(
        self,
        name: str,
        family: Family,
        prefixes: Sequence[Prefix],
        now: float,
        looped: bool = False,
    ) -> None:
        upstream = self.upstreams[name]
        upstream.last_update_at = now
        if upstream.looped and not looped:
            upstream.looped.difference_update((family, p) for p in prefixes)
        removed = upstream.rib.remove_many(family, prefixes)
        self._recompute_upstreams(family, removed, upstream.rib, None)

    def _recompute_upstreams(
        self,
        family: Family,
        prefixes: Sequence[Prefix],
        source: AdjRibIn | None = None,
        path: Path | None = None,
    ) -> None:
        ribs = [u.rib for u in self._upstream_list]
        down, pending = self.down_rib[family], self._pending_down[family]
        self._redecide(family, prefixes, ribs, down, pending, False, source, path)

    # ------------------------------------------------------------------ time

    def get_timer(self) -> float | None:
        deadlines = [c.stale_deadline for c in self._client_list if c.stale_deadline is not None]
        if not self.initial_sync_done or not self.upstreams_synced:
            deadlines.append(self.sync_deadline)
        if not self.upstreams_synced and self._eor_owed:
            deadlines += [
                t for u in self._upstream_list if u.up and (t := self._upstream_synced_at(u))
            ]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        for client in self._client_list:
            if client.stale_deadline is not None and now >= client.stale_deadline:
                client.stale_deadline = None
                swept = client.rib.sweep()
                if swept:
                    log.warning(
                        "graceful-restart timer ended: %d stale routes withdrawn",
                        len(swept),
                        extra={"peer": client.source.name},
                    )
                    self._drop(client.rib, swept)
        self._maybe_send_eor(now)
        self._check_upstream_sync(now)

    def _maybe_send_eor(self, now: float) -> None:
        if not self.initial_sync_done:
            waiting = [c.source.name for c in self._client_list if c.link is None or c.awaiting_eor]
            if waiting and now < self.sync_deadline:
                return
            if waiting:
                log.warning(
                    "initial sync timeout: sending End-of-RIB without %s", ", ".join(waiting)
                )
            self.initial_sync_done = True
        for upstream in self._upstream_list:
            if upstream.up and not upstream.eor_sent:
                self.flush(now)  # the table goes out before End-of-RIB
                for family in self.families:
                    self.engine.end_of_rib(upstream.name, family)
                upstream.eor_sent = True
                log.info("End-of-RIB sent", extra={"peer": upstream.name})

    # ------------------------------------------------------------------ output

    def flush(self, now: float) -> None:
        """Hand every pending change to the engine and the clients, grouped by attribute set."""
        if self._pending_up:
            pending_up, self._pending_up = self._pending_up, defaultdict(dict)
            for family, changes in pending_up.items():
                self._export_up(family, changes)
        if self._pending_down:
            pending_down, self._pending_down = self._pending_down, defaultdict(dict)
            for family, changes in pending_down.items():
                self._export_down(family, changes)
        batch, self._batch = self._batch, _Batch()
        if batch.suppressed:
            log.warning("... and %d more such log lines in this batch", batch.suppressed)
        if self.propagation_observer is not None:
            for received in batch.received_at:
                self.propagation_observer(now - received)
        if not self.initial_sync_done:
            self._maybe_send_eor(now)
        self._compact()

    def _compact(self) -> None:
        """Give back the memory of tables that mass withdrawals left mostly empty."""
        for tables in (self.loc_rib, self.down_rib):
            for family, table in tables.items():
                tables[family] = compacted(table)
        for client in self._client_list:
            client.rib.compact()
        for upstream in self._upstream_list:
            upstream.rib.compact()

    def _upstream_groups(self) -> dict[bool, list[str]]:
        groups: dict[bool, list[str]] = defaultdict(list)
        for upstream in self._upstream_list:
            if upstream.up:
                groups[upstream.ebgp].append(upstream.name)
        return groups

    def _export_up(self, family: Family, changes: dict[Prefix, Path | None]) -> None:
        groups = self._upstream_groups()
        if groups:
            self.exporter.to_upstreams(groups, family, changes)

    def _receivers(self) -> list[ClientState]:
        return [
            c for c in self._client_list if c.link is not None and c.config.receive_upstream_routes
        ]

    def _export_down(self, family: Family, changes: dict[Prefix, Path | None]) -> None:
        receivers = self._receivers()
        if not receivers:
            return
        by_path, withdrawn = group_by_path(changes)
        for client in receivers:
            self.exporter.to_client(client, family, by_path, withdrawn)

    def _send_full_table(self, client: ClientState, end_of_rib: bool) -> None:
        """The upstreams' routes to a client that receives them; End-of-RIB to every client."""
        link = client.link
        if link is None:
            return
        for family in link.families:
            if client.config.receive_upstream_routes:
                by_path, _none = group_by_path(self.down_rib.get(family, {}))
                self.exporter.to_client(client, family, by_path, [])
        if end_of_rib:
            if client.config.receive_upstream_routes and not self.upstreams_synced:
                self._eor_owed.add(client.source.name)
            else:
                link.send([pack_end_of_rib(f) for f in link.families])

    def _log_batch(self, level: int, peer: str, msg: str, *args: object) -> None:
        batch = self._batch
        if batch.log_lines >= LOG_LINES_PER_BATCH:
            batch.suppressed += 1
            return
        batch.log_lines += 1
        log.log(level, msg, *args, extra={"peer": peer})

    # ------------------------------------------------------------------ the task

    def post(self, handler: Callable[..., None], *args: Any) -> None:
        """Queue a call for the core task (from sessions, engines and the API)."""
        assert self._queue is not None, "core task not started"
        self._queue.put_nowait((handler, args))

    def congested(self) -> bool:
        return self._queue is not None and self._queue.qsize() > QUEUE_HIGH_WATER

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the queue is empty again (sessions resume reading)."""
        self._drain_waiters.append(callback)

    async def run(self) -> None:
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        armed_for: float | None = None
        queue = self._queue
        while True:
            deadline = self.get_timer()
            if deadline != armed_for or self._timer_fired:
                self._timer_fired = False
                if timer is not None:
                    timer.cancel()
                timer = None
                if deadline is not None:
                    timer = loop.call_at(deadline, self._post_timer)
                armed_for = deadline
            handler, args = await queue.get()
            self._call(handler, args)
            for _ in range(10_000):
                if queue.empty():
                    break
                handler, args = queue.get_nowait()
                self._call(handler, args)
            self._call(self.flush, (time.monotonic(),))
            if self._drain_waiters and queue.empty():
                waiters, self._drain_waiters = self._drain_waiters, []
                for resume in waiters:
                    resume()

    def _post_timer(self) -> None:
        self._timer_fired = True
        self.post(self.handle_timer, time.monotonic())

    def _call(self, handler: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("core handler %s failed", getattr(handler, "__name__", handler))


def by_family(routes: list[tuple[Family, Prefix]]) -> dict[Family, list[Prefix]]:
    grouped: dict[Family, list[Prefix]] = defaultdict(list)
    for family, prefix in routes:
        grouped[family].append(prefix)
    return grouped


class PrefixText:
    """A prefix that becomes text only when a log line using it is emitted."""

    __slots__ = ("family", "prefix")

    def __init__(self, family: Family, prefix: Prefix) -> None:
        self.family, self.prefix = family, prefix

    def __str__(self) -> str:
        return prefix_to_str(self.family, self.prefix)
