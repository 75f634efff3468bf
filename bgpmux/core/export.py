"""What leaves the core, grouped by attribute set: client routes to the upstreams through the
engine, and upstream routes to the clients as packed UPDATEs.

Every transform here runs once per distinct attribute set, never once per prefix.

A client that negotiated ADD-PATH receive for a family (RFC 7911) gets every upstream's path
for each prefix, not only the best: each upstream's Adj-RIB-In changes go to it as they are,
under that upstream's path identifier (``path_id``).

Every message is sized against the receiving session's maximum (RFC 8654) before it is sent: a
route whose attributes leave no room for its prefix is withdrawn from that peer instead, counted
in ``too_large`` and logged once (until it fits again, is withdrawn or the session ends).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ..policy.transforms import UpstreamExport
from ..rib.paths import Path, Source
from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.packing import pack_announce, pack_withdraw
from ..wire.prefix import Prefix, prefix_to_str
from .peers import ClientPeer, group_by_path
from .port import Engine

log = logging.getLogger("bgpmux.export")


def path_id(source: Source) -> int:
    """The ADD-PATH path identifier (RFC 7911 §3) of an upstream's paths: its position in
    ``upstreams`` plus one. Stable while the configuration is, so after a bgpmux restart a
    client that kept our routes (graceful restart) has each path replaced by the same
    upstream's; no two upstreams share one; 0 stays unused."""
    return source.order + 1


class Exporter:
    """Turns the Loc-RIBs' changes into what each receiver gets: calls on the ``engine`` for
    the upstreams (next hop ``next_hops[family]``, attributes from ``UpstreamExport``), packed
    UPDATEs for the clients. ``clients``: by name, to find the client a path came from.
    ``too_large``: per peer name, the (family, prefix) routes withheld from it."""

    def __init__(
        self,
        engine: Engine,
        node_asn: int,
        next_hops: Mapping[Family, bytes],
        clients: Mapping[str, ClientPeer],
    ) -> None:
        self.engine = engine
        self.next_hops = next_hops
        self.clients = clients
        self._transforms = {ebgp: UpstreamExport(node_asn, ebgp) for ebgp in (True, False)}
        # per peer (upstream or client): routes withheld because no UPDATE could carry them
        self.too_large: dict[str, set[tuple[Family, Prefix]]] = {}

    def withheld(self, peer: str, family: Family) -> int:
        """How many routes of ``family`` are withheld from ``peer`` as too large (a walk over
        the withheld routes only: a handful, if any)."""
        return sum(1 for f, _prefix in self.too_large.get(peer, ()) if f == family)

    def to_upstreams(
        self,
        groups: Mapping[bool, list[str]],
        family: Family,
        changes: Mapping[Prefix, Path | None],
    ) -> None:
        """Changed winners (prefix -> path, None: withdraw) to the upstreams that are up;
        ``groups``: their names, keyed by eBGP (True) or iBGP (False)."""
        by_path, withdrawn = group_by_path(changes)
        next_hop = self.next_hops[family]
        for ebgp, names in groups.items():
            if withdrawn:
                self.engine.withdraw(names, family, withdrawn)
                self._fits(names, family, withdrawn)
            for attrs, prefixes in self._attribute_groups(by_path, ebgp).items():
                self._announce(names, family, attrs, next_hop, prefixes)

    def table_to_upstream(
        self, name: str, ebgp: bool, family: Family, table: Mapping[Prefix, Path]
    ) -> None:
        """A whole table to one upstream (its session just came up, or it asked for a route
        refresh, RFC 2918)."""
        by_path, _none = group_by_path(table)
        next_hop = self.next_hops[family]
        for attrs, prefixes in self._attribute_groups(by_path, ebgp).items():
            self._announce([name], family, attrs, next_hop, prefixes)

    def _announce(
        self,
        names: list[str],
        family: Family,
        attrs: PathAttributes,
        next_hop: bytes,
        prefixes: list[Prefix],
    ) -> None:
        too_large = self.engine.announce(names, family, attrs, next_hop, prefixes)
        for name, unfit in too_large.items():
            self.engine.withdraw([name], family, unfit)
        if too_large or self.too_large:
            for name in names:
                self._sent(name, "upstream", family, prefixes, too_large.get(name, ()))

    def _sent(
        self,
        peer: str,
        role: str,
        family: Family,
        prefixes: Sequence[Prefix],
        unfit: Sequence[Prefix],
    ) -> None:
        """``prefixes`` went to ``peer`` but for ``unfit``, withdrawn from it instead: record
        those as withheld (logging the new ones once) and the rest as no longer withheld."""
        if not unfit:
            self._release(peer, family, prefixes)
            return
        unfit_keys = {(family, p) for p in unfit}
        self._release(peer, family, [p for p in prefixes if (family, p) not in unfit_keys])
        held = self.too_large.setdefault(peer, set())
        new = [p for p in unfit if (family, p) not in held]
        held.update((family, p) for p in new)
        if new:
            log.warning(
                "%d routes not sent: their attributes leave no room for them in one UPDATE "
                "(the session's maximum message size); withdrawn from this %s instead, e.g. %s",
                len(new),
                role,
                prefix_to_str(family, new[0]),
                extra={"peer": peer},
            )

    def _fits(self, names: Sequence[str], family: Family, prefixes: Sequence[Prefix]) -> None:
        """These routes were sent to (or withdrawn from) ``names``: none is withheld any more."""
        for name in names:
            self._release(name, family, prefixes)

    def _release(self, peer: str, family: Family, prefixes: Sequence[Prefix]) -> None:
        """``prefixes`` are no longer withheld from ``peer``."""
        held = self.too_large.get(peer)
        if held:
            held.difference_update((family, p) for p in prefixes)

    def forget(self, peer: str) -> None:
        """``peer``'s session ended: nothing is withheld from it any more."""
        self.too_large.pop(peer, None)

    def as_sent(self, path: Path, ebgp: bool) -> PathAttributes:
        """A client's path as an eBGP (``ebgp``) or iBGP upstream is sent it: tagged with the
        client's communities, then ``UpstreamExport`` (the next hop is ``next_hops[family]``).
        The one place both the engine's announcements and the API's view come from."""
        channel = self.clients[path.source.name].channel
        return self._transforms[ebgp](
            channel.tag(path.attributes), channel.policy.keep_client_as_path
        )

    def _attribute_groups(
        self, by_path: Mapping[Path, list[Prefix]], ebgp: bool
    ) -> dict[PathAttributes, list[Prefix]]:
        """Client paths as the upstreams see them; paths that look alike there share a group."""
        if len(by_path) == 1:  # one path (a lone route, or a client's bulk): one group
            for path, prefixes in by_path.items():
                return {self.as_sent(path, ebgp): prefixes}
        by_attrs: dict[PathAttributes, list[Prefix]] = {}
        for path, prefixes in by_path.items():
            attrs = self.as_sent(path, ebgp)
            if attrs in by_attrs:
                by_attrs[attrs].extend(prefixes)
            else:
                by_attrs[attrs] = prefixes
        return by_attrs

    def to_clients(
        self,
        clients: Sequence[ClientPeer],
        family: Family,
        changes: Mapping[Prefix, Path | None],
        path_id: int | None = None,
    ) -> None:
        """Changed upstream routes (prefix -> path, None: withdraw), or a whole table, to
        ``clients``: the best paths (``path_id`` None), or one upstream's paths under its
        ``path_id`` to clients that negotiated ADD-PATH for ``family``."""
        if not clients:
            return
        by_path, withdrawn = group_by_path(changes)
        for client in clients:
            self.to_client(client, family, by_path, withdrawn, path_id)

    def to_client(
        self,
        client: ClientPeer,
        family: Family,
        by_path: Mapping[Path, list[Prefix]],
        withdrawn: list[Prefix],
        path_id: int | None = None,
    ) -> None:
        """Upstream routes to one client, packed with the options its session negotiated
        (with ``path_id`` on every NLRI when not None, RFC 7911 §3); nothing when it is down
        or did not negotiate ``family``. Routes withheld as too large are recorded per
        prefix, whatever their path identifier."""
        link = client.link
        if link is None or family not in link.families:
            return
        options = link.options
        name = client.name
        messages: list[bytes] = []
        max_len = options.max_message_len
        if withdrawn:
            messages += pack_withdraw(family, withdrawn, max_len, path_id)
            if self.too_large:
                self._fits([name], family, withdrawn)
        for path, prefixes in by_path.items():
            attrs = client.channel.export(path.attributes)
            packed, too_large = pack_announce(
                family, attrs, path.next_hop, prefixes, options.asn4, max_len, path_id
            )
            messages += packed
            if too_large:
                messages += pack_withdraw(family, too_large, max_len, path_id)
            if too_large or self.too_large:
                self._sent(name, "client", family, prefixes, too_large)
        if messages:
            link.send(messages)
