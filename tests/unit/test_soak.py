"""The soak's judgement (bench/soak/fit.py), its parsing of BIRD's control-socket replies and
its tracemalloc comparison."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import pytest

from bench.soak.fit import growth, least_squares
from bench.soak.rack import parse_import_stats, parse_prefixes
from bench.soak.traced import compare

TS = [10.0 * i for i in range(160)]  # 26.5 minutes, one sample every 10 s


def test_least_squares_slope_is_per_minute() -> None:
    fit = least_squares(TS, [1000 + 0.5 * t for t in TS])  # 0.5 per second
    assert fit.slope == pytest.approx(30.0)
    assert fit.stderr == pytest.approx(0.0, abs=1e-9)
    assert least_squares([0.0, 10.0], [1.0, 2.0]).stderr == math.inf  # too few points


def test_steady_leak_fails() -> None:
    ys = [40_000 + 50 * t / 60 + (7 if i % 3 else -5) for i, t in enumerate(TS)]
    g = growth("rss", "KiB", TS, ys, threshold=40.0)
    assert g.slope == pytest.approx(50.0, rel=0.01)
    assert not g.ok


def test_noise_and_a_one_off_step_pass() -> None:
    noisy = [40_000 + (12 if i % 4 == 0 else -4) for i in range(len(TS))]
    assert growth("rss", "KiB", TS, noisy, threshold=40.0).ok
    # 2 MiB allocated once, early: the whole window's slope is over, the later half's is not.
    step = [40_000 + (2048 if i > 30 else 0) for i in range(len(TS))]
    g = growth("rss", "KiB", TS, step, threshold=40.0)
    assert g.slope > 40.0 and g.slope_second_half == pytest.approx(0.0)
    assert g.ok


def test_descriptors_fail_on_a_lasting_step() -> None:
    flat = [13.0 + (1 if i % 17 == 0 else 0) for i in range(len(TS))]  # a flap now and then
    assert growth("fds", "fds", TS, flat, 0.1, step_tolerance=2).ok
    stepped = [13.0 + (3 if i > 120 else 0) for i in range(len(TS))]
    assert not growth("fds", "fds", TS, stepped, 0.1, step_tolerance=2).ok


ROUTES = (
    "1007-Table master4:\n"
    " 10.244.1.0/26        unicast [node 08:23:55.306] * (100) [AS64512i]\n"
    " \tvia 10.0.0.2 on eth1\n"
    " 198.51.100.7/32      unicast [node 08:23:55.306] * (100) [AS64512i]\n"
    " \tvia 10.0.0.2 on eth1\n"
    "0000 \n"
)
PROTOCOL = (
    "1006-  BGP state:          Established\n"
    "   Channel ipv4\n"
    "     Route change stats:     received   rejected   filtered    ignored   accepted\n"
    "       Import updates:           1204          0          0          0       1204\n"
    "       Import withdraws:         1100          0        ---          0       1100\n"
    "       Export updates:              6          4          0        ---          2\n"
    "   Channel ipv6\n"
    "       Import updates:              1          0          0          0          1\n"
    "       Import withdraws:            0          0        ---          0          0\n"
    "0000 \n"
)


def test_parse_bird_replies() -> None:
    assert parse_prefixes(ROUTES) == ["10.244.1.0/26", "198.51.100.7/32"]
    assert parse_prefixes("1007-Table master6:\n0000 \n") == []
    assert parse_import_stats(PROTOCOL) == (1205, 1100)


def test_tracemalloc_compare_names_the_growing_line(tmp_path: Path) -> None:
    tracemalloc.start(4)
    try:
        tracemalloc.take_snapshot().dump(str(tmp_path / "snapshot-1.pickle"))
        kept = [bytearray(1000) for _ in range(200)]  # about 200 KiB, made on this line
        tracemalloc.take_snapshot().dump(str(tmp_path / "snapshot-2.pickle"))
    finally:
        tracemalloc.stop()
    (tmp_path / "gc-2.json").write_text(json.dumps({"unreachable": 7}))
    result = compare(tmp_path / "snapshot-1.pickle", tmp_path / "snapshot-2.pickle")
    top = result["by_line"][0]
    assert top["where"][0].endswith(f"test_soak.py:{kept_line()}")
    assert top["size_diff_kib"] > 190 and top["count_diff"] >= 200
    assert result["gc_unreachable_before"] == [None, 7]
    assert len(kept) == 200


def kept_line() -> int:
    source = Path(__file__).read_text().splitlines()
    return next(i for i, line in enumerate(source, 1) if "bytearray(1000)" in line)
