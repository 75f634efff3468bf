"""The upstreams' routes as the clients get them: the best path per prefix, or, for a client
that negotiated ADD-PATH receive for a family (RFC 7911), every upstream's path.

An ADD-PATH client's table is the union of the upstreams' Adj-RIB-Ins, each under the
upstream's path identifier (``export.path_id``): what changes in an Adj-RIB-In is exactly what
that client must be told, so no Adj-RIB-Out is kept. Those changes are collected only while some
Established client takes several paths for the family; the best-path clients (the common case)
cost nothing more. With a single upstream its changes are the Loc-RIB's, so the ADD-PATH clients
get those, under its path identifier, and nothing is collected.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..rib.adj_rib_in import AdjRibIn
from ..rib.loc_rib import Changes, LocRib, merge_changes
from ..rib.paths import Path
from ..wire.constants import Family
from ..wire.packing import pack_withdraw
from ..wire.prefix import Prefix
from .export import Exporter, path_id
from .peers import ClientLink, ClientPeer, UpstreamPeer, group_by_path


class ClientExport:
    """What goes to the clients that receive the upstreams' routes. ``upstreams``: every
    upstream, whose Adj-RIB-Ins the ADD-PATH clients read."""

    def __init__(self, exporter: Exporter, upstreams: Sequence[UpstreamPeer]) -> None:
        self.exporter = exporter
        self._ribs = [(u.channel.rib, path_id(u.channel.source)) for u in upstreams]
        self._ids = dict(self._ribs)
        self._only_id = self._ribs[0][1] if len(self._ribs) == 1 else None
        # families some Established, receiving client takes every path for
        self.multipath: frozenset[Family] = frozenset()
        self._pending: dict[Family, dict[int, Changes]] = {}  # family -> path id -> changes

    def with_upstreams(self, upstreams: Sequence[UpstreamPeer]) -> ClientExport:
        """A ClientExport for a new set of ``upstreams`` (a reload added or removed one) that
        carries this one's multipath families and the changes noted but not yet flushed (those
        of a removed upstream still go out)."""
        fresh = ClientExport(self.exporter, upstreams)
        fresh.multipath = self.multipath
        fresh._pending = self._pending
        return fresh

    def clients_changed(self, clients: Sequence[ClientPeer]) -> None:
        """A client came up, went down or changed ``receive_upstream_routes``: which families
        are now taken with several paths."""
        families: set[Family] = set()
        for client in clients:
            if client.receives_upstream_routes:
                families |= _multipath(client)
        self.multipath = frozenset(families)

    def note(
        self,
        family: Family,
        prefixes: Sequence[Prefix],
        changed: AdjRibIn | None,
        path: Path | None,
    ) -> None:
        """``prefixes`` of ``family`` were set to ``path`` (None: removed) in the upstream
        Adj-RIB-In ``changed`` (None: unknown; every upstream's is read again). Kept for
        ``flush`` when an ADD-PATH client takes ``family``. ``prefixes`` are those whose path
        really changed (``AdjRibIn.set_many``): an upstream sending a path again unchanged
        (a route refresh, a repeated UPDATE) is not a change, so an ADD-PATH client is not
        sent it again, as a best-path client is not (RFC 7911)."""
        if family not in self.multipath or self._only_id is not None:
            return
        pending = self._pending.setdefault(family, {})
        if changed is not None:
            merge_changes(pending, self._ids[changed], dict.fromkeys(prefixes, path))
        else:
            for rib, pid in self._ribs:
                get = rib.getter(family)
                merge_changes(pending, pid, {p: get(p) for p in prefixes})

    def flush(self, clients: Sequence[ClientPeer], best: dict[Family, Changes]) -> None:
        """The best-path changes ``best`` to the clients that take one path per prefix, the
        changes ``note`` kept to those that take every path."""
        pending, self._pending = self._pending, {}
        receivers = [c for c in clients if c.receives_upstream_routes]
        if not receivers:
            return
        exporter = self.exporter
        only = self._only_id
        for family, changes in best.items():
            targets: list[tuple[ClientPeer, int | None]] = []
            for client in receivers:
                if family not in _multipath(client):
                    targets.append((client, None))
                elif only is not None:
                    targets.append((client, only))
            if targets:
                by_path, withdrawn = group_by_path(changes)
                for client, pid in targets:
                    exporter.to_client(client, family, by_path, withdrawn, pid)
        for family, by_id in pending.items():
            several = [c for c in receivers if family in _multipath(c)]
            for pid, delta in by_id.items():
                exporter.to_clients(several, family, delta, pid)

    def send_table(
        self, client: ClientPeer, for_clients: LocRib, families: Sequence[Family] | None = None
    ) -> None:
        """Everything the client receives of ``families`` (default: every family its session
        carries), as it comes up or asks for a route refresh."""
        link = client.link
        if link is None:
            return
        for family in link.families if families is None else families:
            if family not in link.options.add_path_send:
                self.exporter.to_clients([client], family, for_clients.table(family))
                continue
            for rib, pid in self._ribs:
                for table in (rib.live.get(family), rib.stale_table(family)):
                    if table:
                        self.exporter.to_clients([client], family, table, pid)

    def withdraw_table(self, link: ClientLink, for_clients: LocRib) -> None:
        """Withdraw from the client everything ``send_table`` sent it (it no longer receives
        the upstreams' routes)."""
        max_len = link.options.max_message_len
        for family in link.families:
            if family not in link.options.add_path_send:
                withdrawn = list(for_clients.table(family))
                link.send(pack_withdraw(family, withdrawn, max_len))
                continue
            for rib, pid in self._ribs:
                for table in (rib.live.get(family), rib.stale_table(family)):
                    if table:
                        link.send(pack_withdraw(family, list(table), max_len, pid))


def _multipath(client: ClientPeer) -> frozenset[Family]:
    link = client.link
    return link.options.add_path_send if link is not None else frozenset()
