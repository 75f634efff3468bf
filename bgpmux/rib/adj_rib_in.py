"""What one source announced, per family, with graceful-restart stale marking (RFC 4724).

Marking stale is one swap of dictionaries, not a walk over the routes: the live table becomes the
stale table. A route the source sends again moves back to live; what is left stale at End-of-RIB
or when the restart timer ends is swept.
"""

from __future__ import annotations

import sys
from collections import ChainMap
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TypeVar

from ..wire.constants import Family
from ..wire.prefix import Prefix
from .paths import Path

_K = TypeVar("_K")
_V = TypeVar("_V")


def compacted(table: dict[_K, _V]) -> dict[_K, _V]:
    """``table``, or a fresh copy of it when most of its memory holds deleted entries.

    Python dicts never shrink: after a client withdraws 100k routes its table would keep
    megabytes for nothing. Copying costs O(len), and only happens once the table is mostly empty.
    """
    size = sys.getsizeof(table)
    if size > 1 << 16 and size > 8 * 64 * (len(table) + 1):
        return dict(table)
    return table


class AdjRibIn:
    """The routes one source announced: ``live`` and ``stale`` tables, per family, of
    prefix -> ``Path``. A prefix is in at most one of them; lookups read both."""

    def __init__(self) -> None:
        self.live: dict[Family, dict[Prefix, Path]] = {}
        self.stale: dict[Family, dict[Prefix, Path]] = {}

    def get(self, family: Family, prefix: Prefix) -> Path | None:
        """The source's path for ``prefix``, live or stale; None if it has none."""
        path = self.live.get(family, {}).get(prefix)
        if path is None and self.stale:
            path = self.stale.get(family, {}).get(prefix)
        return path

    def getter(self, family: Family) -> Callable[[Prefix], Path | None]:
        """``get`` for one family, for many lookups in a row while the RIB does not change."""
        live_get = self.live.get(family, {}).get
        stale = self.stale.get(family) if self.stale else None
        if not stale:
            return live_get
        stale_get = stale.get

        def get(prefix: Prefix) -> Path | None:
            path = live_get(prefix)
            return stale_get(prefix) if path is None else path

        return get

    def table(self, family: Family) -> dict[Prefix, Path]:
        """The live table of ``family`` (created empty if missing); changed in place."""
        table = self.live.get(family)
        if table is None:
            table = self.live[family] = {}
        return table

    def stale_table(self, family: Family) -> dict[Prefix, Path] | None:
        """The stale table of ``family`` (possibly empty), or None when it has none."""
        return self.stale.get(family) if self.stale else None

    def remove(self, family: Family, prefix: Prefix) -> Path | None:
        """Remove ``prefix``, live or stale; returns its path, or None if it was not there."""
        old = self.live.get(family, {}).pop(prefix, None)
        if self.stale:
            stale_old = self.stale.get(family, {}).pop(prefix, None)
            old = old or stale_old
        return old

    def set_many(self, family: Family, prefixes: Sequence[Prefix], path: Path) -> list[Prefix]:
        """Every prefix now has ``path`` (and is no longer stale); returns those whose path
        changed (had another one, or none)."""
        table = self.table(family)
        get = table.get
        stale = self.stale_table(family)
        if stale:
            stale_pop = stale.pop
            changed = [p for p in prefixes if get(p) is not path and stale_pop(p, None) is not path]
        else:
            changed = [p for p in prefixes if get(p) is not path]
        table.update(dict.fromkeys(prefixes, path))
        return changed

    def tables(self) -> dict[Family, Mapping[Prefix, Path]]:
        """The routes per family, live and stale: family -> prefix -> path, read-only
        mappings over the tables held now, not copies. They keep what they hold when ``clear``
        replaces the tables (a reload reads them as ``LocRib.decide``'s ``old`` after the
        channel rebuilt the Adj-RIB-In), not when routes are set or removed in place."""
        out: dict[Family, Mapping[Prefix, Path]] = {}
        for family in {*self.live, *self.stale}:
            live = self.live.get(family)
            stale = self.stale.get(family)
            if live and stale:
                out[family] = ChainMap(live, stale)
            else:
                out[family] = live or stale or {}
        return out

    def remove_many(self, family: Family, prefixes: Sequence[Prefix]) -> list[Prefix]:
        """Remove the prefixes, live or stale; returns those that were there."""
        live_pop = self.live.get(family, {}).pop
        stale = self.stale_table(family)
        if not stale:
            return [p for p in prefixes if live_pop(p, None) is not None]
        stale_pop = stale.pop
        return [
            p for p in prefixes if live_pop(p, None) is not None or stale_pop(p, None) is not None
        ]

    def mark_stale(self, families: Collection[Family] | None = None) -> list[tuple[Family, Prefix]]:
        """The live routes of ``families`` (default: all) become stale. Live routes of other
        families are removed and returned: the peer cannot restart gracefully for them."""
        dropped: list[tuple[Family, Prefix]] = []
        for family, table in self.live.items():
            if not table:
                continue
            if families is not None and family not in families:
                dropped.extend((family, prefix) for prefix in table)
            elif self.stale.get(family):
                self.stale[family].update(table)
            else:
                self.stale[family] = table
        self.live = {}
        return dropped

    def mark_family_stale(self, family: Family) -> None:
        """The live routes of ``family`` become stale (RFC 7313 §4: a BoRR); other families
        and routes already stale are left as they are."""
        table = self.live.pop(family, None)
        if not table:
            return
        stale = self.stale.get(family)
        if stale:
            stale.update(table)
        else:
            self.stale[family] = table

    def sweep(self, family: Family | None = None) -> list[tuple[Family, Prefix]]:
        """Drop the stale routes (of one family, or all); returns what was dropped."""
        families = [family] if family is not None else list(self.stale)
        dropped: list[tuple[Family, Prefix]] = []
        for fam in families:
            table = self.stale.pop(fam, None)
            if table:
                dropped.extend((fam, prefix) for prefix in table)
        return dropped

    def clear(self) -> list[tuple[Family, Prefix]]:
        """Remove every route, live and stale; returns what was removed. The tables are
        replaced, not emptied: those ``tables`` returned before keep their routes."""
        dropped = [(fam, p) for fam, table in self.live.items() for p in table]
        dropped += self.sweep()
        self.live = {}
        return dropped

    def compact(self) -> None:
        """Give back the memory of tables that withdrawals left mostly empty (``compacted``)."""
        for tables in (self.live, self.stale):
            for family, table in tables.items():
                tables[family] = compacted(table)

    def count(self) -> int:
        """Routes held, live and stale, over all families (prefixes)."""
        live = sum(map(len, self.live.values()))
        stale = self.stale
        return live + sum(map(len, stale.values())) if stale else live

    def stale_count(self) -> int:
        """Stale routes held, over all families (prefixes)."""
        return sum(map(len, self.stale.values())) if self.stale else 0

    def count_family(self, family: Family) -> int:
        """Routes held of ``family``, live and stale (prefixes)."""
        return len(self.live.get(family, {})) + len(self.stale.get(family, {}))

    def items(self) -> Iterator[tuple[Family, Prefix, Path, bool]]:
        """(family, prefix, path, stale) for every route."""
        for family, table in self.live.items():
            for prefix, path in table.items():
                yield family, prefix, path, False
        for family, table in self.stale.items():
            for prefix, path in table.items():
                yield family, prefix, path, True
