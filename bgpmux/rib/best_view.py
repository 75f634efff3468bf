"""The Loc-RIB's table of one family as a read-only mapping: the contested prefixes (held by
several sources) from the Loc-RIB's own dict, every other prefix straight from the only source
that holds it, so a prefix one source holds is stored once (in that source's Adj-RIB-In)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from ..wire.constants import Family
from ..wire.prefix import Prefix
from .adj_rib_in import AdjRibIn
from .paths import Path


class BestView(Mapping[Prefix, Path]):
    """prefix -> best path for ``family``: ``contested`` (prefix -> best path, prefixes held by
    two sources or more) over the live and stale tables of ``sources``. ``extra`` is a
    one-element list: Σ over the contested prefixes of (holders - 1), so that ``len`` is
    O(sources). Each prefix is yielded once."""

    __slots__ = ("_contested", "_extra", "_family", "_sources")

    def __init__(
        self,
        family: Family,
        sources: Sequence[AdjRibIn],
        contested: dict[Prefix, Path],
        extra: list[int],
    ) -> None:
        self._family = family
        self._sources = sources
        self._contested = contested
        self._extra = extra

    def __getitem__(self, prefix: Prefix) -> Path:
        path = self._contested.get(prefix)
        if path is not None:
            return path
        family = self._family
        for rib in self._sources:
            path = rib.get(family, prefix)
            if path is not None:
                return path
        raise KeyError(prefix)

    def get(self, prefix: Prefix, default: Path | None = None) -> Path | None:  # type: ignore[override]
        try:
            return self[prefix]
        except KeyError:
            return default

    def __contains__(self, prefix: object) -> bool:
        if prefix in self._contested:
            return True
        family = self._family
        return any(rib.get(family, prefix) is not None for rib in self._sources)  # type: ignore[arg-type]

    def __len__(self) -> int:
        family = self._family
        return sum(rib.count_family(family) for rib in self._sources) - self._extra[0]

    def __iter__(self) -> Iterator[Prefix]:
        contested = self._contested
        for table in self._tables():
            if contested:
                yield from (p for p in table if p not in contested)
            else:
                yield from table
        yield from contested

    def _tables(self) -> Iterator[dict[Prefix, Path]]:
        family = self._family
        for rib in self._sources:
            for table in (rib.live.get(family), rib.stale.get(family)):
                if table:
                    yield table

    def items(self) -> Iterator[tuple[Prefix, Path]]:  # type: ignore[override]
        contested = self._contested
        if not contested:
            for table in self._tables():
                yield from table.items()
            return
        for table in self._tables():
            for item in table.items():
                if item[0] not in contested:
                    yield item
        yield from contested.items()

    def keys(self) -> Iterator[Prefix]:  # type: ignore[override]
        return iter(self)

    def values(self) -> Iterator[Path]:  # type: ignore[override]
        return (path for _prefix, path in self.items())
