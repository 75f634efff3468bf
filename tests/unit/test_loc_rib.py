"""The Loc-RIB on its own: decided per prefix, returning its changes; the bulk paths agree with
the per-prefix one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpmux.rib.adj_rib_in import AdjRibIn
from bgpmux.rib.decision import best_path
from bgpmux.rib.loc_rib import LocRib
from bgpmux.rib.paths import Path, Source
from bgpmux.wire import IPV4_UNICAST, PathAttributes

V4 = IPV4_UNICAST
HIGH = Source("calico", False, 200, 0)
LOW = Source("metallb", False, 100, 1)


def path(source: Source, med: int | None = None) -> Path:
    return Path(source, PathAttributes(med=med), b"\x0a\x00\x00\x02")


def prefixes(count: int, start: int = 0) -> list[bytes]:
    return [bytes((32, 10, 0, (i >> 8) & 255, i & 255)) for i in range(start, start + count)]


def test_one_source_in_bulk_returns_what_changed() -> None:
    rib = AdjRibIn()
    loc = LocRib([rib, AdjRibIn()])
    ps, p1, p2 = prefixes(3), path(HIGH, 1), path(HIGH, 2)
    assert loc.decide(V4, rib.set_many(V4, ps, p1), rib, p1) == dict.fromkeys(ps, p1)
    assert loc.decide(V4, rib.set_many(V4, ps, p1), rib, p1) == {}  # nothing new
    assert loc.decide(V4, rib.set_many(V4, ps[:1], p2), rib, p2) == {ps[0]: p2}
    removed = rib.remove_many(V4, ps[1:])
    assert loc.decide(V4, removed, rib, None) == dict.fromkeys(ps[1:])
    assert loc.table(V4) == {ps[0]: p2}


def test_two_sources_pick_the_best_and_record_one_conflict() -> None:
    high, low = AdjRibIn(), AdjRibIn()
    loc = LocRib([high, low], track_conflicts=True)
    [prefix] = prefixes(1)
    assert loc.decide(V4, low.set_many(V4, [prefix], path(LOW)), low, path(LOW))[prefix]
    winner = path(HIGH)
    assert loc.decide(V4, high.set_many(V4, [prefix], winner), high, winner) == {prefix: winner}
    [conflict] = loc.take_conflicts()
    assert conflict.best is winner and [p.source for p in conflict.losers] == [LOW]
    assert loc.take_conflicts() == []  # reported once
    assert loc.decide(V4, [prefix]) == {}  # still a conflict, not a new one
    assert loc.conflicts_total == 1
    assert [p.source for p in loc.candidates(V4, prefix)] == [HIGH, LOW]
    high.remove_many(V4, [prefix])
    changes = loc.decide(V4, [prefix], high, None)
    assert changes[prefix] is not None and changes[prefix].source is LOW  # type: ignore[union-attr]
    assert not loc.conflicts


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([0, 1]), st.integers(0, 20), st.integers(1, 10), st.booleans()),
        max_size=12,
    )
)
def test_bulk_decisions_match_deciding_every_prefix(
    steps: list[tuple[int, int, int, bool]],
) -> None:
    """Whatever the sources do, the Loc-RIB fed with bulk hints ends equal to one that
    decides every prefix from the candidates alone."""
    ribs = [AdjRibIn(), AdjRibIn()]
    hinted = LocRib(ribs)
    plain = LocRib(ribs)
    sources = (HIGH, LOW)
    for which, start, count, announce in steps:
        rib, ps = ribs[which], prefixes(count, start)
        if announce:
            new = path(sources[which], start)
            hinted.decide(V4, rib.set_many(V4, ps, new), rib, new)
        else:
            hinted.decide(V4, rib.remove_many(V4, ps), rib, None)
        plain.decide(V4, prefixes(40))
        assert hinted.table(V4) == plain.table(V4)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2]),
            st.integers(0, 20),
            st.integers(1, 10),
            st.sampled_from(["announce", "withdraw", "stale"]),
            st.integers(0, 2),
        ),
        max_size=12,
    )
)
def test_decisions_equal_the_best_of_every_candidate_stale_or_live(
    steps: list[tuple[int, int, int, str, int]],
) -> None:
    """Three sources (dual ToR and more), stale routes among them, few distinct paths shared by
    many prefixes: every decision equals ``best_path`` over ``AdjRibIn.get`` of each source."""
    sources = [Source(f"tor-{i}", True, -i, i) for i in range(3)]
    ribs = [AdjRibIn() for _ in sources]
    loc = LocRib(ribs)
    for which, start, count, action, med in steps:
        rib, ps = ribs[which], prefixes(count, start)
        if action == "announce":
            new = path(sources[which], med)
            loc.decide(V4, rib.set_many(V4, ps, new), rib, new)
        elif action == "withdraw":
            loc.decide(V4, rib.remove_many(V4, ps), rib, None)
        else:
            rib.mark_stale()
            loc.decide(V4, prefixes(40))
        for prefix in prefixes(40):
            expected = best_path([p for r in ribs if (p := r.get(V4, prefix)) is not None])
            assert loc.table(V4).get(prefix) is expected
