"""One engine's phase: build the rack, churn and flap for the phase's length while sampling every
``sample_every`` seconds, then check the ToR's table and judge the growth."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import wait_until

from . import procs, traced
from .churn import Churner, Flapper
from .fit import Growth, growth
from .rack import POD_V4, POD_V6, TOR_V4, TOR_V6, Rack, TracedBgpmux

STALE_GRACE_S = 2.0  # an LB prefix removed this recently may still be on its way to the ToR
CONVERGE_TIMEOUT = 60.0
JOIN_TIMEOUT = 90.0
SNAPSHOT_TIMEOUT = 120.0  # a flap waits up to 60 s for Calico
MIN_CHURN_FRACTION = 0.9  # of the asked rate
MIN_TOR_FRACTION = 0.5  # updates seen at the ToR per LB address added


@dataclass(frozen=True)
class Options:
    seconds: float  # this engine's churn time
    warmup: float  # seconds left out of the fit
    rate: float  # LB additions per second (and as many removals)
    window: int  # LB addresses active at once
    flap_every: float
    sample_every: float
    rss_pct_per_10min: float
    rss_floor_kib_min: float
    fd_slope_per_min: float
    fd_tolerance: int
    tracemalloc: bool = False  # diagnosis: snapshots after the warm-up and at the end


Log = Callable[[str], None]


def _take(rack: Rack, churner: Churner, t0: float) -> dict[str, Any]:
    assert rack.mux is not None and rack.mux.proc is not None
    tree = procs.sample_tree(rack.mux.proc.pid)
    adds, removes, errors, skipped = churner.counters()
    expected = churner.expected(STALE_GRACE_S)
    lb_at_tor = [p for p in rack.tor_routes("master4") if p.startswith("198.51.100.")]
    updates, withdraws = rack.tor_change_stats()
    return {
        "t_s": round(time.monotonic() - t0, 2),
        "procs": {name: s.as_dict() for name, s in tree.items()},
        "rss_kib": tree["bgpmux"].rss_kib if "bgpmux" in tree else None,
        "rss_total_kib": sum(s.rss_kib for s in tree.values()),
        "fds_total": sum(s.fds for s in tree.values()),
        "cpu_total_s": round(sum(s.cpu_s for s in tree.values()), 2),
        "tor_lb": len(lb_at_tor),
        "tor_lb_stale": len(set(lb_at_tor) - expected),
        "tor_updates": updates,
        "tor_withdraws": withdraws,
        "adds": adds,
        "removes": removes,
        "churn_errors": errors,
        "churn_skipped": skipped,
    }


def _snapshot_paths(rack: Rack) -> tuple[Path, Path]:
    assert isinstance(rack.mux, TracedBgpmux)
    return rack.mux.snapshots / "snapshot-1.pickle", rack.mux.snapshots / "snapshot-2.pickle"


def _snapshot(rack: Rack, n: int) -> None:
    """Ask the traced bgpmux for snapshot ``n`` and wait (bounded) until it is written."""
    assert isinstance(rack.mux, TracedBgpmux) and rack.mux.proc is not None
    rack.mux.host.kill(rack.mux.proc, signal.SIGUSR2)
    path = _snapshot_paths(rack)[n - 1]
    wait_until(path.exists, timeout=SNAPSHOT_TIMEOUT, what=f"tracemalloc snapshot {n}")


def _tables_equal(rack: Rack, want4: set[str], want6: set[str]) -> dict[str, Any]:
    """Wait (bounded) for the ToR's tables to equal the expected ones; the difference if not."""

    def diff() -> dict[str, list[str]]:
        have4, have6 = set(rack.tor_routes("master4")), set(rack.tor_routes("master6"))
        return {
            "missing": sorted((want4 - have4) | (want6 - have6)),
            "stale": sorted((have4 - want4) | (have6 - want6)),
        }

    try:
        wait_until(lambda: not any(diff().values()), timeout=CONVERGE_TIMEOUT, interval=0.5)
        return {"ok": True, "expected": len(want4) + len(want6), "missing": [], "stale": []}
    except AssertionError:
        last = diff()
        return {"ok": False, "expected": len(want4) + len(want6), **last}


def _end_checks(rack: Rack, churner: Churner, flapper: Flapper) -> dict[str, Any]:
    out: dict[str, Any] = {}
    flapper.ensure_up()
    pods4, pods6 = set(POD_V4), set(POD_V6)
    active = churner.active()
    out["table_with_lb"] = _tables_equal(rack, pods4 | active, pods6)
    out["withdrawn"] = churner.withdraw_all()
    out["table_after_withdraw_all"] = _tables_equal(rack, pods4, pods6)
    calico = rack.calico
    assert calico is not None and rack.mux is not None
    want = set(TOR_V4) | set(TOR_V6)
    try:
        wait_until(
            lambda: want <= set(calico.routes("master4")) | set(calico.routes("master6")),
            timeout=CONVERGE_TIMEOUT,
        )
        out["calico_has_tor_routes"] = True
    except AssertionError:
        out["calico_has_tor_routes"] = False
    states = {name: s["state"] for name, s in rack.mux.sessions().items()}
    out["sessions"] = states
    out["sessions_ok"] = all(state == "ESTABLISHED" for state in states.values())
    return out


def _rate(samples: list[dict[str, Any]], key: str) -> float:
    if len(samples) < 2 or samples[-1]["t_s"] <= samples[0]["t_s"]:
        return 0.0
    return float((samples[-1][key] - samples[0][key]) / (samples[-1]["t_s"] - samples[0]["t_s"]))


def _judge(
    samples: list[dict[str, Any]], opts: Options, engine: str
) -> tuple[list[Growth], dict[str, Any]]:
    after = [s for s in samples if s["t_s"] >= opts.warmup]
    ts = [s["t_s"] for s in after]

    def rss_threshold(values: list[float]) -> float:
        median = sorted(values)[len(values) // 2] if values else 0.0
        return max(opts.rss_floor_kib_min, median * opts.rss_pct_per_10min / 100 / 10)

    series: list[tuple[str, list[float], bool]] = [
        ("bgpmux RSS", [float(s["rss_kib"] or 0) for s in after], True)
    ]
    if engine == "exabgp":
        for role in ("exabgp", "relay"):
            values = [float(s["procs"].get(role, {}).get("rss_kib", 0)) for s in after]
            series.append((f"{role} RSS", values, False))
        series.append(("RSS, whole tree", [float(s["rss_total_kib"]) for s in after], True))
    verdicts = []
    for name, values, judged in series:
        g = growth(name, "KiB", ts, values, rss_threshold(values))
        verdicts.append(g if judged else _informational(g))
    fds = [float(s["fds_total"]) for s in after]
    verdicts.append(
        growth(
            "open fds, whole tree" if engine == "exabgp" else "open fds",
            "fds",
            ts,
            fds,
            opts.fd_slope_per_min,
            step_tolerance=opts.fd_tolerance,
        )
    )
    cpu = _rate(samples, "cpu_total_s")
    rates = {
        "adds_per_s": round(_rate(samples, "adds"), 2),
        "removes_per_s": round(_rate(samples, "removes"), 2),
        "tor_updates_per_s": round(_rate(samples, "tor_updates"), 2),
        "tor_withdraws_per_s": round(_rate(samples, "tor_withdraws"), 2),
        "cpu_percent": round(100 * cpu, 1),
        "max_tor_lb_stale": max((s["tor_lb_stale"] for s in after), default=None),
        "churn_errors": samples[-1]["churn_errors"] if samples else None,
        "churn_skipped": samples[-1]["churn_skipped"] if samples else None,
    }
    return verdicts, rates


def _informational(g: Growth) -> Growth:
    """Reported, not judged: the ExaBGP child and the relay count through the tree's sum."""
    return dataclasses.replace(g, ok=True, threshold=float("nan"))


def run_engine(engine: str, opts: Options, log: Log) -> dict[str, Any]:
    result: dict[str, Any] = {"engine": engine, "options": opts.__dict__, "failures": []}
    samples: list[dict[str, Any]] = []
    result["samples"] = samples
    with Rack(engine, tracemalloc=opts.tracemalloc) as rack:
        log(f"{engine}: rack up in {rack.topo.tag}-*; churning {opts.seconds / 60:.1f} min")
        stop = threading.Event()
        churner = Churner(rack, opts.rate, opts.window, stop)
        flapper = Flapper(rack, opts.flap_every, min(30.0, opts.flap_every / 2), stop)
        t0 = time.monotonic()
        churner.start()
        flapper.start()
        try:
            count = int(opts.seconds // opts.sample_every) + 1
            snapshots = 0
            for k in range(count):
                delay = t0 + k * opts.sample_every - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                samples.append(_take(rack, churner, t0))
                if opts.tracemalloc and (
                    k == count - 1
                    or (snapshots == 0 and k > 0 and samples[-1]["t_s"] >= opts.warmup)
                ):
                    snapshots += 1
                    _snapshot(rack, snapshots)
                with flapper.restarting:
                    dead = rack.alive()
                if dead or churner.failure:
                    result["failures"].append(f"ended early: {dead or churner.failure}")
                    break
                if k % 6 == 0:
                    s = samples[-1]
                    log(
                        f"{engine} t={s['t_s']:.0f}s rss={s['rss_kib']} KiB "
                        f"tree={s['rss_total_kib']} KiB fds={s['fds_total']} adds={s['adds']} "
                        f"tor_lb={s['tor_lb']} stale={s['tor_lb_stale']}"
                    )
        finally:
            stop.set()
            churner.join(JOIN_TIMEOUT)
            flapper.join(JOIN_TIMEOUT)
        if opts.tracemalloc and snapshots == 2:
            result["tracemalloc"] = traced.compare(*_snapshot_paths(rack))
        if churner.is_alive() or flapper.is_alive():
            raise RuntimeError("a load thread did not stop")
        result["flaps"] = flapper.events
        ended_early = bool(result["failures"])
        if flapper.failure:
            result["failures"].append(f"flap: {flapper.failure}")
        if not ended_early:
            try:
                result["end"] = _end_checks(rack, churner, flapper)
            except Exception as error:  # a check that cannot even run fails the phase
                result["failures"].append(f"end checks: {type(error).__name__}: {error}"[:500])
    verdicts, rates = _judge(samples, opts, engine)
    result["growth"] = [g.as_dict() for g in verdicts]
    result["rates"] = rates
    _verdict(result, verdicts, rates, opts)
    return result


def _verdict(
    result: dict[str, Any], verdicts: list[Growth], rates: dict[str, Any], opts: Options
) -> None:
    failures = result["failures"]
    failures += [f"{g.name} grows {g.slope:.1f} {g.unit}/min" for g in verdicts if not g.ok]
    if rates["adds_per_s"] < MIN_CHURN_FRACTION * opts.rate:
        failures.append(f"churn {rates['adds_per_s']}/s, asked {opts.rate:g}/s")
    if rates["tor_updates_per_s"] < MIN_TOR_FRACTION * rates["adds_per_s"]:
        failures.append(f"only {rates['tor_updates_per_s']} updates/s reach the ToR")
    end = result.get("end", {})
    for key in ("table_with_lb", "table_after_withdraw_all"):
        if key in end and not end[key]["ok"]:
            failures.append(f"{key}: missing {end[key]['missing']}, stale {end[key]['stale']}")
    if end and not end.get("calico_has_tor_routes"):
        failures.append("Calico lacks the ToR's routes")
    if end and not end.get("sessions_ok"):
        failures.append(f"sessions not all Established: {end.get('sessions')}")
    result["ok"] = not failures
