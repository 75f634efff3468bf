"""The Loc-RIB: per prefix, the best of the paths its sources hold (RFC 4271 §9.1.2, with the
ranking of ``decision``), decided per prefix; every decision returns the changes it made.

The candidates are not copied: they stay in the sources' Adj-RIB-Ins, which the Loc-RIB reads
(``candidates`` gives every one of them, for a receiver that takes several paths). It stores the
best path only of the *contested* prefixes (held by two sources or more); the best path of any
other prefix is its only holder's, so a table one source holds is stored once, in that
source's Adj-RIB-In (``table`` is a view over both). What changed is still known without asking
the receivers: the sources report which paths changed (``AdjRibIn.set_many``, ``remove_many``),
and the old best of a prefix not contested is the path of whoever held it alone.

A prefix held by more than one source is a *conflict* when the Loc-RIB tracks them (the clients'
Loc-RIB: two local speakers announcing one prefix is worth a log line and a metric).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family
from ..wire.prefix import Prefix
from .adj_rib_in import AdjRibIn, compacted
from .best_view import BestView
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


_MISSING: object = object()  # an old best path nobody knows: whatever is there now is news


class LocRib:
    """The best path per prefix among ``sources`` (the Adj-RIB-Ins it decides over, in order).

    Callers change a source's Adj-RIB-In first, then ask the Loc-RIB to decide the prefixes
    whose path changed there (``decide``); the returned ``Changes`` are what the receivers must
    be told. Only the *contested* prefixes (held by two sources or more) are stored here: the
    best path of any other prefix is its only holder's, read from that Adj-RIB-In (``table``).
    """

    def __init__(self, sources: Sequence[AdjRibIn], track_conflicts: bool = False) -> None:
        self.sources = list(sources)
        # family -> prefix -> best path, for the prefixes held by several sources
        self.contested: dict[Family, dict[Prefix, Path]] = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        # family -> prefix -> holders, for the same prefixes; and Σ (holders - 1) per family
        self._holders: dict[Family, dict[Prefix, int]] = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        self._extra: dict[Family, list[int]] = {IPV4_UNICAST: [0], IPV6_UNICAST: [0]}
        self.track_conflicts = track_conflicts
        self.conflicts: set[tuple[Family, Prefix]] = set()  # prefixes held by several now
        self.conflicts_total = 0  # conflicts seen since start
        self._new_conflicts: list[Conflict] = []

    def _family(self, family: Family) -> tuple[dict[Prefix, Path], dict[Prefix, int], list[int]]:
        contested = self.contested.get(family)
        if contested is None:
            contested = self.contested[family] = {}
            self._holders[family] = {}
            self._extra[family] = [0]
        return contested, self._holders[family], self._extra[family]

    def table(self, family: Family) -> BestView:
        """The best path per prefix of ``family``: a read-only view (``Mapping``) over the
        sources, valid until they change."""
        contested, _holders, extra = self._family(family)
        return BestView(family, self.sources, contested, extra)

    def count(self) -> int:
        """Prefixes that have a best path, over all families; O(sources)."""
        held = sum(rib.count() for rib in self.sources)
        return held - sum(extra[0] for extra in self._extra.values())

    def candidates(self, family: Family, prefix: Prefix) -> list[Path]:
        """Every source's path for ``prefix``, in source order."""
        return [p for rib in self.sources if (p := rib.get(family, prefix)) is not None]

    def decide(
        self,
        family: Family,
        prefixes: Sequence[Prefix],
        changed: AdjRibIn | None = None,
        path: Path | None = None,
        old: Mapping[Prefix, Path] | None = None,
    ) -> Changes:
        """Decide ``prefixes`` again; returns the prefixes whose best path changed.

        ``changed`` names the source whose path for these prefixes just changed: to ``path``
        (None: removed), as ``AdjRibIn.set_many`` and ``remove_many`` return them; a prefix
        whose path did not change there would be returned as a change. ``old`` (a reload:
        each prefix to its own path, ``path`` is ignored) gives ``changed``'s paths before the
        change (a prefix absent: none), so only what really changed is returned. Without
        ``changed`` nothing is known of the old best of a prefix one source held: every
        prefix that was not contested is returned, with its best path now or None (so a
        withdrawal of a prefix nobody holds, nor held, may be among them); a contested one
        only when its best path changed. When no other source holds any of the prefixes and
        none is contested (the common case: one client holds the pod blocks, another the LB
        addresses) that settles them in bulk.
        """
        contested, holders_n, extra = self._family(family)
        holders = [r for r in self.sources if r.count_family(family)]
        others = [r.getter(family) for r in holders if r is not changed]
        if (
            changed is not None
            and old is None
            and not any(any(map(g, prefixes)) for g in others)
            and (not contested or contested.keys().isdisjoint(prefixes))
        ):
            # No other source holds any of them and none is recorded as contested, so the
            # new best path of each is simply ``path``. (A contested entry is cleaned below
            # even if its other holders left without a decision.)
            return dict.fromkeys(prefixes, path)
        conflicts = self.conflicts if self.track_conflicts else None
        changes: Changes = {}
        best: Path | None
        getters = [r.getter(family) for r in holders]
        old_get = old.get if old is not None else None
        contested_get = contested.get
        # Paths are interned: the same few candidate sets recur for many prefixes (two ToRs
        # sending one table), so each set is ranked once per call.
        chosen: dict[tuple[Path, ...], Path | None] = {}
        for prefix in prefixes:
            candidates = [p for get in getters if (p := get(prefix)) is not None]
            before: object = contested_get(prefix)
            if before is None:  # one source held it at most
                if changed is None:
                    before = _MISSING
                else:
                    other = [p for get in others if (p := get(prefix)) is not None]
                    if other:  # ``changed`` cannot have held it too
                        before = other[0]
                    elif old_get is not None:
                        before = old_get(prefix)
                    else:
                        before = _MISSING
            count = len(candidates)
            if count > 1:
                key = tuple(candidates)
                best = chosen.get(key)
                if best is None:
                    best = chosen[key] = best_path(candidates)
                contested[prefix] = best  # type: ignore[assignment]  # not None: candidates
                extra[0] += count - holders_n.get(prefix, 1)
                holders_n[prefix] = count
                if conflicts is not None and best is not None:
                    self._note_conflict(family, prefix, candidates, best)
            else:
                best = candidates[0] if candidates else None
                was = holders_n.pop(prefix, None)
                if was is not None:
                    del contested[prefix]
                    extra[0] -= was - 1
                    if conflicts:
                        conflicts.discard((family, prefix))
            if best is not before:
                changes[prefix] = best
        return changes

    def take_conflicts(self) -> list[Conflict]:
        """The conflicts that began since the last call (each is reported once)."""
        new, self._new_conflicts = self._new_conflicts, []
        return new

    def compact(self) -> None:
        """Give back the memory of tables that mass withdrawals left mostly empty."""
        for family, table in self.contested.items():
            self.contested[family] = compacted(table)
            self._holders[family] = compacted(self._holders[family])

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
