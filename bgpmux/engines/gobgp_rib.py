"""What the gobgp engine has put in gobgpd's global table, so that nothing is sent twice and
what the core no longer has is withdrawn after a re-send.

gobgpd has one global table for every peer: the core's tables for the upstreams are the same
routes (its export differs only in what gobgpd adds itself), so the engine keeps one mirror
of it. Each time the core is told an upstream is up, it sends its whole table again
(``core.port``); ``resync`` marks every route unconfirmed, announcements confirm them, and at
the core's End-of-RIB for a family the unconfirmed ones are withdrawn (``end_of_rib``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.prefix import Prefix

Route = tuple[PathAttributes, bytes]  # attributes as given to gobgpd, next hop


class GlobalTable:
    """The routes of gobgpd's global table that the engine added, per family: prefix ->
    (attributes, next hop)."""

    def __init__(self) -> None:
        self.routes: dict[Family, dict[Prefix, Route | None]] = {}
        self._unconfirmed: dict[Family, set[Prefix]] = {}

    def __len__(self) -> int:
        return sum(len(r) for r in self.routes.values())

    def announce(self, family: Family, route: Route, prefixes: Iterable[Prefix]) -> list[Prefix]:
        """Record ``prefixes`` with ``route``; returns those gobgpd does not have so."""
        table = self.routes.setdefault(family, {})
        unconfirmed = self._unconfirmed.get(family)
        changed = []
        for prefix in prefixes:
            if unconfirmed:
                unconfirmed.discard(prefix)
            if table.get(prefix) != route:
                table[prefix] = route
                changed.append(prefix)
        return changed

    def withdraw(self, family: Family, prefixes: Iterable[Prefix]) -> list[Prefix]:
        """Forget ``prefixes``; returns those gobgpd has (to withdraw there)."""
        table = self.routes.get(family, {})
        unconfirmed = self._unconfirmed.get(family)
        gone = []
        for prefix in prefixes:
            if prefix in table:
                del table[prefix]
                gone.append(prefix)
            if unconfirmed:
                unconfirmed.discard(prefix)
        return gone

    def adopt(self, family: Family, prefixes: Iterable[Prefix]) -> None:
        """Routes found in gobgpd's table that the engine did not add in this run (an external
        gobgpd that kept them): known, with unknown attributes, so any announcement replaces
        them; the next ``end_of_rib`` after a ``resync`` removes those the core lacks."""
        table = self.routes.setdefault(family, {})
        for prefix in prefixes:
            table.setdefault(prefix, None)

    def resync(self) -> None:
        """The core is about to send its whole table: every route is unconfirmed until
        announced again."""
        self._unconfirmed = {family: set(table) for family, table in self.routes.items()}

    def end_of_rib(self, family: Family) -> Sequence[Prefix]:
        """The core's table of ``family`` is complete: forget and return the routes it did not
        send again since ``resync`` (to withdraw from gobgpd)."""
        stale = self._unconfirmed.pop(family, set())
        return self.withdraw(family, stale) if stale else []

    def clear(self) -> None:
        """gobgpd lost its table (it restarted)."""
        self.routes.clear()
        self._unconfirmed.clear()
