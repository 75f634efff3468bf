"""The benchmark's plan and helpers (bench/): every route set of the default plan in its own range
inside the accepted ranges, the sizes each mux measures, the size syntax, the memory slope, the
count polling and the report's memory rows."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from bench import poll
from bench.cli import parse_args, parse_size
from bench.measure import Plan
from bench.memory import slopes
from bench.poll import PhaseError, timed_count
from bench.report import metric_label, metric_order
from bench.routes import (
    ACCEPT,
    PROBE_RANGE,
    RouteSet,
    check_disjoint,
    injector_set,
    probe_sets,
    tor_set,
)
from bench.scenario import MUXES


def _networks(sets: list[RouteSet]) -> list[tuple[int, int, str]]:
    return [(s.first, s.last, s.name) for s in sets]


def test_default_plan_sets_are_disjoint_and_accepted() -> None:
    plan: Plan = parse_args([]).plan
    assert plan.sizes == [10_000, 100_000, 1_000_000]
    assert plan.v6_sizes == [100_000]
    every: dict[str, RouteSet] = {}
    for mux in MUXES:
        for s in (*plan.injector_sets(mux), *plan.tor_sets(mux)):
            every[s.name] = s
    check_disjoint(every.values())  # raises on any overlap or a set outside ACCEPT_*
    for family in ("ipv4", "ipv6"):
        ranges = sorted(_networks([s for s in every.values() if s.family == family]))
        for (_, last, a), (first, _, b) in itertools.pairwise(ranges):
            assert last < first, (a, b)
        accept = ACCEPT[family]
        for first, last, name in ranges:
            assert int(accept.network_address) <= first <= last <= int(accept.broadcast_address), (
                name
            )


def test_default_plan_sizes_per_mux() -> None:
    plan: Plan = parse_args([]).plan
    for mux in ("direct", "bird", "bgpmux-native"):
        assert plan.sizes_for(mux) == [10_000, 100_000, 1_000_000]
        assert plan.v6_sizes_for(mux) == [100_000]
    for mux in ("gobgp", "bgpmux-exabgp", "bgpmux-gobgp"):
        assert plan.sizes_for(mux) == [10_000, 100_000]
        # only the sets it measures go into the daemons' configs
        assert max(s.count for s in plan.injector_sets(mux)) == 100_000
        assert max(s.count for s in plan.tor_sets(mux)) == 100_000
    assert plan.v6_sizes_for("bgpmux-exabgp") == []
    everything = parse_args(["--big-sizes-muxes", "all"]).plan
    assert everything.sizes_for("bgpmux-exabgp") == [10_000, 100_000, 1_000_000]


def test_the_million_sets_avoid_the_probes_and_the_small_sets() -> None:
    probes = ipaddress.ip_network(PROBE_RANGE)
    for s in (injector_set("ipv4", 1_000_000), tor_set("ipv4", 1_000_000)):
        assert s.last < int(probes.network_address) or s.first > int(probes.broadcast_address)
    check_disjoint(
        [
            *(injector_set("ipv4", n) for n in (10_000, 100_000, 1_000_000)),
            *(tor_set("ipv4", n) for n in (10_000, 100_000, 1_000_000)),
            *(injector_set("ipv6", n) for n in (10_000, 100_000, 1_000_000)),
            *(tor_set("ipv6", n) for n in (10_000, 100_000, 1_000_000)),
            *probe_sets(25),
        ]
    )


def test_a_size_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="no ipv4 range"):
        injector_set("ipv4", 2_000_000)
    with pytest.raises(ValueError, match="overlap"):
        Plan(sizes=[50_000, 100_000], v6_sizes=[]).check()
    with pytest.raises(SystemExit):
        parse_args(["--sizes", "10k,2M"])


def test_route_text_matches_ipaddress() -> None:
    for s in (
        RouteSet("a", "ipv4", "10.1.2.250", 600),
        RouteSet("b", "ipv6", "2001:db8::fff0", 70_000),
    ):
        prefixes = s.prefixes()
        assert len(prefixes) == s.count
        for i in (0, 5, 6, 255, 256, s.count - 1):
            net = ipaddress.ip_network(prefixes[i])
            assert net == ipaddress.ip_network(f"{ipaddress.ip_address(s.first + i)}/{s.host_len}")
        text = s.static_protocol()
        assert text.count(" blackhole;") == s.count
        assert f"  route {prefixes[0]} blackhole;" in text


@pytest.mark.parametrize(
    ("text", "value"),
    [("1M", 1_000_000), ("1m", 1_000_000), ("1000k", 1_000_000), ("1_000_000", 1_000_000),
     ("10k", 10_000), ("10000", 10_000), ("1.5M", 1_500_000)],
)  # fmt: skip
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


def test_slopes_bytes_per_route() -> None:
    values = {"rss_mib_10000": 40.0, "rss_mib_100000": 50.0, "rss_mib_1000000": 150.0}
    got = slopes(values)
    assert got["rss_slope_100000_1000000"] == pytest.approx(100 * 1024 * 1024 / 900_000)
    assert set(got) == {"rss_slope_10000_100000", "rss_slope_100000_1000000"}


class _Counts:
    """A stand-in for BirdCtl: `imported` returns the next count of a script (then the last)."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts

    def imported(self, protocol: str, channel: str = "ipv4") -> int:
        return self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]


def test_timed_count_reaches_the_target_and_records_poll_costs() -> None:
    fired: list[bool] = []
    costs: list[tuple[float, float]] = []
    ctl = _Counts([0, 10, 50, 100])
    elapsed = timed_count(
        lambda: fired.append(True), ctl, "node", "ipv4", 100,  # type: ignore[arg-type]
        poll=0.0001, poll_rel=0.0, timeout=10, costs=costs,
    )  # fmt: skip
    assert fired == [True] and elapsed >= 0 and len(costs) == 4


def test_timed_count_fails_when_the_count_stalls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poll, "STALL", 0.0)
    with pytest.raises(PhaseError, match="stalled"):
        timed_count(
            lambda: None, _Counts([3]), "node", "ipv4", 100,  # type: ignore[arg-type]
            poll=0.0001, poll_rel=0.02, timeout=10,
        )  # fmt: skip


def test_report_labels_the_memory_rows() -> None:
    assert metric_label("rss_idle_mib") == ("idle RSS, sessions up, no route", "MiB")
    assert metric_label("rss_mib_1000000")[0] == "peak RSS (VmHWM) after the 1M IPv4 phases"
    assert metric_label("rss_slope_100000_1000000") == (
        "memory per route, peak RSS slope 100k → 1M",
        "B/route",
    )
    assert metric_label("down_v4_1000000")[0] == "1M IPv4 withdrawn (client → ToR)"
    order = metric_order(
        {"rss_slope_100000_1000000", "rss_mib_100000", "rss_idle_mib", "up_v4_10000"}
    )
    assert order == ["up_v4_10000", "rss_idle_mib", "rss_mib_100000", "rss_slope_100000_1000000"]
