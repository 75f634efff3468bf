"""The hitless check's pure parts: lost pings from ping's output, their attribution to
restarts, the verdict and the report (bench/hitless)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.hitless import pinglog, report
from bench.hitless.cli import parse_args
from bench.hitless.run import judge, target_result

T = 1796037700.0


def reply(seq: int, ts: float) -> str:
    return f"[{ts:.6f}] 64 bytes from 10.244.1.1: icmp_seq={seq} ttl=64 time=0.043 ms"


def no_answer(seq: int, ts: float) -> str:
    return f"[{ts:.6f}] no answer yet for icmp_seq={seq}"


def ping_output(answered: list[int], unanswered: list[int], transmitted: int | None) -> str:
    """What ``ping -D -O -n -i 0.02`` prints, probes every 20 ms from T."""
    lines = ["PING 10.244.1.1 (10.244.1.1) 56(84) bytes of data."]
    for seq in sorted(answered + unanswered):
        ts = T + 0.02 * seq
        lines.append(reply(seq, ts) if seq in answered else no_answer(seq, ts + 0.02))
    if transmitted is not None:
        received = len(answered)
        lines += [
            "",
            "--- 10.244.1.1 ping statistics ---",
            f"{transmitted} packets transmitted, {received} received, "
            f"{100 * (transmitted - received) / transmitted:.4f}% packet loss, time 2974ms",
            "rtt min/avg/max/mdev = 0.024/0.046/0.286/0.028 ms",
        ]
    return "\n".join(lines) + "\n"


def test_nothing_lost() -> None:
    log = pinglog.parse(ping_output(list(range(1, 101)), [], 100))
    loss = pinglog.count_loss(log)
    assert (loss.sent, loss.lost, loss.gaps) == (100, 0, ())
    assert log.received == 100


def test_a_gap_is_counted_and_timed_by_the_replies_around_it() -> None:
    lost = list(range(41, 62))  # 21 probes, as when a route is gone for about 0.4 s
    answered = [s for s in range(1, 121) if s not in lost]
    log = pinglog.parse(ping_output(answered, lost, 120))
    loss = pinglog.count_loss(log)
    assert (loss.sent, loss.lost) == (120, 21)
    (gap,) = loss.gaps
    assert (gap.first, gap.last, gap.count) == (41, 61, 21)
    assert gap.after == T + 0.02 * 40 and gap.before == T + 0.02 * 62
    assert round(pinglog.seconds(gap, 0.02), 3) == 0.44
    start = pinglog.start_time(gap, log, 0.02)  # from its "no answer yet" line
    assert start is not None and abs(start - (T + 0.02 * 41)) < 1e-6


def test_separate_gaps_stay_separate() -> None:
    answered = [s for s in range(1, 51) if s not in (5, 6, 30)]
    loss = pinglog.count_loss(pinglog.parse(ping_output(answered, [5, 6, 30], 50)))
    assert loss.lost == 3
    assert [(g.first, g.last) for g in loss.gaps] == [(5, 6), (30, 30)]


def test_the_last_probe_in_flight_when_ping_was_stopped_is_not_lost() -> None:
    loss = pinglog.count_loss(pinglog.parse(ping_output(list(range(1, 50)), [], 50)))
    assert (loss.sent, loss.lost) == (49, 0)


def test_a_gap_at_the_end_is_still_lost() -> None:
    loss = pinglog.count_loss(pinglog.parse(ping_output(list(range(1, 41)), [], 50)))
    assert (loss.sent, loss.lost) == (49, 9)
    assert loss.gaps[0].before is None
    assert pinglog.seconds(loss.gaps[0], 0.02) == 9 * 0.02


def test_without_a_summary_the_highest_sequence_number_counts() -> None:
    answered = [s for s in range(1, 31) if s != 10]
    loss = pinglog.count_loss(pinglog.parse(ping_output(answered, [10], None)))
    assert (loss.sent, loss.lost) == (30, 1)


def test_duplicates_errors_and_other_lines_are_ignored() -> None:
    text = "\n".join(
        [
            reply(1, T),
            reply(1, T + 0.5) + " (DUP!)",
            "ping: sendmsg: Network is unreachable",
            f"[{T + 0.05:.6f}] From 10.0.0.1 icmp_seq=2 Destination Net Unreachable",
            reply(3, T + 0.06),
            "3 packets transmitted, 2 received, +1 errors, 33.3333% packet loss, time 40ms",
        ]
    )
    log = pinglog.parse(text)
    assert log.replies == {1: T, 3: T + 0.06}
    assert (log.transmitted, log.received) == (3, 2)
    assert pinglog.count_loss(log).lost == 1


def test_sequence_numbers_are_unwrapped_past_65535() -> None:
    seqs = [65534, 65535, 0, 1, 3]  # 2 lost just after the wrap
    text = "\n".join(reply(s, T + i * 0.02) for i, s in enumerate(seqs))
    log = pinglog.parse(text)
    assert sorted(log.replies) == [65534, 65535, 65536, 65537, 65539]


def test_gaps_are_attributed_to_the_restart_before_them() -> None:
    events = [T + 10, T + 20, T + 30]
    assert pinglog.attribute([T + 5, T + 10, T + 25, T + 99, None], events) == [-1, 0, 1, 2, -1]


def test_mean_interval() -> None:
    log = pinglog.parse(ping_output(list(range(1, 11)), [], 10))
    interval = pinglog.mean_interval(log)
    assert interval is not None and abs(interval - 0.02) < 1e-6
    assert pinglog.mean_interval(pinglog.PingLog()) is None


def _measured(mux: str, lost: dict[str, int], settled: list[float | None]) -> dict[str, Any]:
    names = ("pod", "lb", "behind_tor")
    answered = {n: [s for s in range(1, 1001) if s > lost.get(n, 0) + 500 or s <= 500]
                for n in names}  # fmt: skip
    events = [T + 0.02 * 500 - 0.5, T + 15.0]
    result: dict[str, Any] = {
        "mux": mux,
        "failures": [],
        "duration_s": 42.0,
        "restarts": [
            {
                "n": i + 1,
                "signal": ("SIGTERM", "SIGKILL")[i % 2],
                "at_s": 0.0,
                "exit_s": 0.1,
                "forced_kill": False,
                "leftover_children": 0,
                "settled_s": s,
            }
            for i, s in enumerate(settled)
        ],
        "targets": {
            n: target_result(
                "tor", "10.244.1.1", pinglog.parse(ping_output(answered[n], [], 1001)), T, events
            )
            for n in names
        },
    }
    judge(result)
    return result


def test_judge_fails_on_a_lost_ping_or_a_restart_that_did_not_settle() -> None:
    clean = _measured("native", {}, [2.0, 2.5])
    assert clean["ok"] and clean["failures"] == []
    lossy = _measured("native", {"lb": 125}, [2.0, 2.5])
    assert not lossy["ok"]
    assert lossy["failures"] == ["lb: 125 of 1000 pings lost"]
    assert lossy["targets"]["lb"]["gaps"] == [
        {"start_s": 10.02, "lost": 125, "seconds": 2.52, "restart": 1}
    ]
    stuck = _measured("exabgp", {}, [2.0, None])
    assert not stuck["ok"] and "restart 2 (SIGKILL) did not settle" in stuck["failures"][0]


MACHINE = {"nproc": 2, "cpu_model": "test", "kernel": "6", "python": "3.11", "versions": {}}
ARGS = {"restarts": 2, "settle_timeout": 30.0, "dwell": 3.0, "report_only": False}


def test_report_passes_only_when_every_engine_lost_nothing() -> None:
    results = [_measured("native", {}, [2.0, 2.5]), _measured("exabgp", {"pod": 3}, [2.0, 2.0])]
    failed = report.build(results, ARGS, 60.0, False, machine=MACHINE)
    assert not failed["ok"]
    text = report.markdown(failed)
    assert "| bgpmux native | 0 / 1000 | 0 / 1000 | 0 / 1000 | 2 / 2 | PASS |" in text
    assert "| bgpmux exabgp | **3 / 1000** | 0 / 1000 | 0 / 1000 | 2 / 2 | FAIL |" in text
    assert "| 1 | SIGTERM | 0.1 s | 2.0 s | 3 (0.08 s) | 0 | 0 |" in text
    assert "**Result: FAIL**" in text
    passed = report.build(results[:1], ARGS, 60.0, False, machine=MACHINE)
    assert passed["ok"] and "**Result: PASS**" in report.markdown(passed)
    assert not report.build(results[:1], ARGS, 60.0, True, machine=MACHINE)["ok"]


def test_the_baseline_is_reported_but_not_judged() -> None:
    results = [_measured("native", {}, [2.0]), _measured("bird", {"pod": 300}, [6.0])]
    built = report.build(results, ARGS, 60.0, False, machine=MACHINE)
    assert built["ok"]
    assert "| bird (baseline) | **300 / 1000** |" in report.markdown(built)
    unmeasured = {"mux": "bird", "failures": ["RuntimeError: no rack"], "restarts": []}
    judge(unmeasured)
    broken = report.build([results[0], unmeasured], ARGS, 1.0, False, machine=MACHINE)
    assert not broken["ok"]
    assert "- RuntimeError: no rack" in report.markdown(broken)


def test_options_are_checked() -> None:
    args = parse_args(["--engines", "exabgp", "--restarts", "4", "--baseline", "bird"])
    assert (args.engine_list, args.restarts, args.baseline) == (["exabgp"], 4, ["bird"])
    assert parse_args([]).engine_list == ["native", "exabgp", "gobgp"]
    for bad in (["--engines", "bird"], ["--restarts", "0"], ["--engines", ""]):
        with pytest.raises(SystemExit):
            parse_args(bad)
