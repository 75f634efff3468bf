"""The Loc-RIB that stores only contested prefixes, driven through random sequences of what the
sources do, against a brute-force model: the best of every candidate, per prefix."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpmux.rib.adj_rib_in import AdjRibIn
from bgpmux.rib.decision import best_path
from bgpmux.rib.loc_rib import LocRib
from bgpmux.rib.paths import Path, Source
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, PathAttributes
from bgpmux.wire.constants import Family
from bgpmux.wire.prefix import Prefix

FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)
UNIVERSE = [bytes((32, 10, 0, 0, i)) for i in range(6)]
SOURCES = [Source(f"s{i}", False, 100 + 10 * (i % 2), i) for i in range(3)]
# interned, as the channels make them: one Path per (source, med)
PATHS = {(s, med): Path(s, PathAttributes(med=med), b"\x0a\x00\x00\x02") for s in SOURCES
         for med in range(3)}  # fmt: skip


def brute(ribs: list[AdjRibIn]) -> dict[Family, dict[Prefix, Path]]:
    out: dict[Family, dict[Prefix, Path]] = {}
    for family in FAMILIES:
        table = out[family] = {}
        for prefix in UNIVERSE:
            candidates = [p for r in ribs if (p := r.get(family, prefix)) is not None]
            if candidates:
                best = best_path(candidates)
                assert best is not None
                table[prefix] = best
    return out


def diff(before: dict[Prefix, Path], after: dict[Prefix, Path]) -> dict[Prefix, Path | None]:
    return {p: after.get(p) for p in {*before, *after} if before.get(p) is not after.get(p)}


def held_by_several(ribs: list[AdjRibIn]) -> set[tuple[Family, Prefix]]:
    return {(f, p) for f in FAMILIES for p in UNIVERSE
            if sum(r.get(f, p) is not None for r in ribs) > 1}  # fmt: skip


SET = st.tuples(st.just("set"), st.integers(0, 2), st.sampled_from(FAMILIES),
                st.sets(st.sampled_from(UNIVERSE), max_size=6), st.integers(0, 2))  # fmt: skip
op = st.one_of(
    SET, SET, SET, SET,  # announcements are most of what happens: overlaps need them
    st.tuples(st.just("remove"), st.integers(0, 2), st.sampled_from(FAMILIES),
              st.sets(st.sampled_from(UNIVERSE), max_size=6), st.none()),
    st.tuples(st.just("mark_stale"), st.integers(0, 2), st.sampled_from(FAMILIES),
              st.none(), st.booleans()),
    st.tuples(st.just("mark_family_stale"), st.integers(0, 2), st.sampled_from(FAMILIES),
              st.none(), st.none()),
    st.tuples(st.just("sweep"), st.integers(0, 2), st.sampled_from(FAMILIES),
              st.none(), st.booleans()),
    st.tuples(st.just("clear"), st.integers(0, 2), st.none(), st.none(), st.none()),
    st.tuples(st.just("reload"), st.integers(0, 2), st.none(), st.none(), st.integers(0, 2)),
    st.tuples(st.just("redecide"), st.none(), st.sampled_from(FAMILIES),
              st.sets(st.sampled_from(UNIVERSE), max_size=6), st.none()),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(sources=st.integers(1, 3), steps=st.lists(op, min_size=4, max_size=30))
def test_the_view_equals_the_best_of_every_candidate(
    sources: int, steps: list[tuple[Any, ...]]
) -> None:
    ribs = [AdjRibIn() for _ in range(sources)]
    loc = LocRib(ribs, track_conflicts=True)
    model = brute(ribs)
    for action, which, family, prefixes, arg in steps:
        rib = ribs[which % sources] if which is not None else None
        returned: dict[Family, dict[Prefix, Path | None]] = {}
        exact = True

        def decide(
            fam: Family,
            ps: list[Prefix],
            *args: Any,
            rib: AdjRibIn | None = rib,
            returned: dict[Family, dict[Prefix, Path | None]] = returned,
        ) -> None:
            returned.setdefault(fam, {}).update(loc.decide(fam, ps, rib, *args))

        if action == "set":
            assert rib is not None
            path = PATHS[SOURCES[which % sources], arg]
            decide(family, rib.set_many(family, sorted(prefixes), path), path)
        elif action == "remove":
            assert rib is not None
            decide(family, rib.remove_many(family, sorted(prefixes)), None)
        elif action in ("mark_stale", "sweep", "clear"):
            assert rib is not None
            if action == "mark_stale":
                dropped = rib.mark_stale([family] if arg else None)
            elif action == "sweep":
                dropped = rib.sweep(family if arg else None)
            else:
                dropped = rib.clear()
            for fam in FAMILIES:
                ps = [p for f, p in dropped if f == fam]
                if ps:
                    decide(fam, ps, None)
        elif action == "mark_family_stale":
            assert rib is not None
            rib.mark_family_stale(family)
        elif action == "reload":  # rewritten as a channel's reconfigure does, stale kept stale
            assert rib is not None
            tables = rib.tables()  # kept as they are: ``clear`` replaces them
            old = {fam: tables.get(fam, {}) for fam in FAMILIES}
            routes = list(rib.items())
            rib.clear()
            for fam, prefix, path, stale in routes:
                new = PATHS[path.source, ((path.attributes.med or 0) + arg) % 3]
                if prefix[-1] % 3 == arg:
                    continue  # refused by the new policy
                if stale:
                    rib.stale.setdefault(fam, {})[prefix] = new
                else:
                    rib.set_many(fam, [prefix], new)
            for fam in FAMILIES:
                decide(fam, list(old[fam]), None, old[fam])
        else:
            exact = False
            returned[family] = loc.decide(family, sorted(prefixes))
        after = brute(ribs)
        for fam in FAMILIES:
            expected = diff(model[fam], after[fam])
            got = returned.get(fam, {})
            if exact:
                assert got == expected, (action, fam)
            else:
                assert expected.items() <= got.items()
            view = loc.table(fam)
            keys = list(view)
            assert len(keys) == len(set(keys)) == len(view) == len(after[fam])
            assert dict(view.items()) == after[fam]
            for prefix in UNIVERSE:
                assert view.get(prefix) is after[fam].get(prefix)
                assert (prefix in view) == (prefix in after[fam])
        assert loc.count() == sum(len(t) for t in after.values())
        assert loc.conflicts == held_by_several(ribs)
        model = after
