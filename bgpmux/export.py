"""What leaves the core, grouped by attribute set: client routes to the upstreams through the
engine, and upstream routes to the clients as packed UPDATEs.

Every transform here runs once per distinct attribute set, never once per prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

from .engines.base import Engine
from .peers import ClientState, group_by_path
from .policy.transforms import UpstreamExport
from .rib.paths import Path
from .wire.attributes import PathAttributes
from .wire.constants import Family
from .wire.packing import pack_announce, pack_withdraw
from .wire.prefix import Prefix


class Exporter:
    def __init__(
        self,
        engine: Engine,
        node_asn: int,
        next_hops: Mapping[Family, bytes],
        clients: Mapping[str, ClientState],
    ) -> None:
        self.engine = engine
        self.next_hops = next_hops
        self.clients = clients
        self._transforms = {ebgp: UpstreamExport(node_asn, ebgp) for ebgp in (True, False)}

    def to_upstreams(
        self,
        groups: Mapping[bool, list[str]],
        family: Family,
        changes: Mapping[Prefix, Path | None],
    ) -> None:
        """Changed winners to the upstreams that are up, keyed by eBGP (True) or iBGP."""
        by_path, withdrawn = group_by_path(changes)
        next_hop = self.next_hops[family]
        for ebgp, names in groups.items():
            if withdrawn:
                self.engine.withdraw(names, family, withdrawn)
            for attrs, prefixes in self._attribute_groups(by_path, ebgp).items():
                self.engine.announce(names, family, attrs, next_hop, prefixes)

    def table_to_upstream(
        self, name: str, ebgp: bool, family: Family, table: Mapping[Prefix, Path]
    ) -> None:
        """A whole table to one upstream (its session just came up)."""
        by_path, _none = group_by_path(table)
        next_hop = self.next_hops[family]
        for attrs, prefixes in self._attribute_groups(by_path, ebgp).items():
            self.engine.announce([name], family, attrs, next_hop, prefixes)

    def _attribute_groups(
        self, by_path: Mapping[Path, list[Prefix]], ebgp: bool
    ) -> dict[PathAttributes, list[Prefix]]:
        """Client paths as the upstreams see them; paths that look alike there share a group."""
        transform = self._transforms[ebgp]
        by_attrs: dict[PathAttributes, list[Prefix]] = {}
        for path, prefixes in by_path.items():
            client = self.clients[path.source.name]
            attrs = transform(client.tag(path.attributes), client.config.keep_client_as_path)
            if attrs in by_attrs:
                by_attrs[attrs].extend(prefixes)
            else:
                by_attrs[attrs] = prefixes
        return by_attrs

    def to_client(
        self,
        client: ClientState,
        family: Family,
        by_path: Mapping[Path, list[Prefix]],
        withdrawn: list[Prefix],
    ) -> None:
        """Upstream routes to one client, packed with the options its session negotiated."""
        link = client.link
        if link is None or family not in link.families:
            return
        options = link.options
        messages: list[bytes] = []
        if withdrawn:
            messages += pack_withdraw(family, withdrawn, options.max_message_len)
        for path, prefixes in by_path.items():
            attrs = client.export(path.attributes)
            messages += pack_announce(
                family, attrs, path.next_hop, prefixes, options.asn4, options.max_message_len
            )
        if messages:
            link.send(messages)
