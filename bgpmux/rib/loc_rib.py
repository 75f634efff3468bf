"""The Loc-RIB: per prefix, the best of the paths its sources hold (RFC 4271 §9.1.2, with the
ranking of ``decision``), decided per prefix; every decision returns the changes it made.

The candidates are not copied: they stay in the sources' Adj-RIB-Ins, which the Loc-RIB reads
(``candidates`` gives every one of them, for a receiver that takes several paths). It stores the
best path per prefix, so what changed is known without asking the receivers.

A prefix held by more than one source is a *conflict* when the Loc-RIB tracks them (the clients'
Loc-RIB: two local speakers announcing one prefix is worth a log line and a metric).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family
from ..wire.prefix import Prefix
from .adj_rib_in import AdjRibIn, compacted
from .decision import best_path
from .paths import Path

# prefix -> its new best path, or None: no path any more (withdraw it)
Changes = dict[Prefix, Path | None]
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class Conflict:
    """A prefix that more than one source holds: who won, and who did not."""

    family: Family
    prefix: Prefix
    best: Path
    losers: tuple[Path, ...]


class LocRib:
    """The best path per prefix among ``sources`` (the Adj-RIB-Ins it decides over, in order).

    Callers change a source's Adj-RIB-In first, then ask the Loc-RIB to decide the prefixes they
    touched (``decide``); the returned ``Changes`` are what the receivers must be told.
    """

    def __init__(self, sources: Sequence[AdjRibIn], track_conflicts: bool = False) -> None:
        self.sources = list(sources)
        self.best: dict[Family, dict[Prefix, Path]] = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        self.track_conflicts = track_conflicts
        self.conflicts: set[tuple[Family, Prefix]] = set()  # prefixes held by several now
        self.conflicts_total = 0  # conflicts seen since start
        self._new_conflicts: list[Conflict] = []

    def table(self, family: Family) -> dict[Prefix, Path]:
        """The best path per prefix of ``family``; the caller must not change it."""
        table = self.best.get(family)
        if table is None:
            table = self.best[family] = {}
        return table

    def count(self) -> int:
        """Prefixes that have a best path, over all families."""
        return sum(len(t) for t in self.best.values())

    def candidates(self, family: Family, prefix: Prefix) -> list[Path]:
        """Every source's path for ``prefix``, in source order."""
        return [p for rib in self.sources if (p := rib.get(family, prefix)) is not None]

    def decide(
        self,
        family: Family,
        prefixes: Sequence[Prefix],
        changed: AdjRibIn | None = None,
        path: Path | None = None,
    ) -> Changes:
        """Decide ``prefixes`` again; returns the prefixes whose best path changed.

        ``changed`` names the source these prefixes were just set to ``path`` in (or removed
        from, ``path`` None). When no other source holds the family (the common case: one
        client holds the pod blocks, another the LB addresses) that settles them in bulk,
        without looking at the candidates one prefix at a time.
        """
        best_table = self.table(family)
        holders = [r for r in self.sources if r.count_family(family)]
        conflicts = self.conflicts if self.track_conflicts else None
        changes: Changes
        if changed is not None and (not holders or holders == [changed]):
            if conflicts:
                conflicts.difference_update([(family, p) for p in prefixes])
            if path is not None:
                best_get = best_table.get
                changes = dict.fromkeys([p for p in prefixes if best_get(p) is not path], path)
                best_table.update(changes)  # type: ignore[arg-type]  # no None values here
            else:
                best_pop = best_table.pop
                changes = dict.fromkeys(p for p in prefixes if best_pop(p, None) is not None)
            return changes
        changes = {}
        best: Path | None
        getters = [r.getter(family) for r in holders]
        # Paths are interned: the same few candidate sets recur for many prefixes (two ToRs
        # sending one table), so each set is ranked once per call.
        chosen: dict[tuple[Path, ...], Path | None] = {}
        for prefix in prefixes:
            candidates = [p for get in getters if (p := get(prefix)) is not None]
            if len(candidates) > 1:
                key = tuple(candidates)
                best = chosen.get(key)
                if best is None:
                    best = chosen[key] = best_path(candidates)
                if conflicts is not None and best is not None:
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
            changes[prefix] = best
        return changes

    def take_conflicts(self) -> list[Conflict]:
        """The conflicts that began since the last call (each is reported once)."""
        new, self._new_conflicts = self._new_conflicts, []
        return new

    def compact(self) -> None:
        """Give back the memory of tables that mass withdrawals left mostly empty."""
        for family, table in self.best.items():
            self.best[family] = compacted(table)

    def _note_conflict(
        self, family: Family, prefix: Prefix, candidates: list[Path], best: Path
    ) -> None:
        key = (family, prefix)
        if key in self.conflicts:
            return
        self.conflicts.add(key)
        self.conflicts_total += 1
        losers = tuple(p for p in candidates if p is not best)
        self._new_conflicts.append(Conflict(family, prefix, best, losers))


def merge_changes(pending: dict[_K, Changes], key: _K, changes: Changes) -> None:
    """Add ``changes`` (a new dict, as ``LocRib.decide`` returns each time, which ``pending``
    may keep) to those waiting in ``pending`` under ``key`` (a family, a path id); later ones
    win."""
    table = pending.get(key)
    if table is None:
        pending[key] = changes
    else:
        table.update(changes)
