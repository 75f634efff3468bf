"""The measurements of one run of one mux: propagation times, one-route latency, memory."""

from __future__ import annotations

import functools
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.netns import end_process

from .birdctl import BirdCtl
from .memory import read_rss, slopes
from .pcap import first_announcements
from .poll import PhaseError, timed_count
from .profile import Profiler, summarize
from .routes import RouteSet, check_disjoint, injector_set, probe_sets, tor_set
from .scenario import MUXES, Scenario

TCPDUMP_FILTER = "tcp port 179 or tcp port 1790"


@dataclass
class Plan:
    """What every mux measures. Muxes outside `big_muxes` skip the sizes above `size_cap`
    (both families); None: no cap."""

    sizes: list[int]  # IPv4 sizes, each: announce, withdraw, reverse, reverse withdraw
    v6_sizes: list[int]  # IPv6 sizes: announce, withdraw
    v6_muxes: tuple[str, ...] = ()  # the muxes the IPv6 phases run for
    size_cap: int | None = None
    big_muxes: tuple[str, ...] = MUXES
    probes: int = 25
    poll: float = 0.005  # the finest polling interval, seconds
    poll_rel: float = 0.02  # ... widened to this fraction of the time elapsed in the phase
    profile_dir: Path | None = None  # py-spy recordings of bgpmux, when set

    def _capped(self, mux: str, sizes: list[int]) -> list[int]:
        if self.size_cap is None or mux in self.big_muxes:
            return list(sizes)
        return [n for n in sizes if n <= self.size_cap]

    def sizes_for(self, mux: str) -> list[int]:
        return self._capped(mux, self.sizes)

    def v6_sizes_for(self, mux: str) -> list[int]:
        return self._capped(mux, self.v6_sizes) if mux in self.v6_muxes else []

    def injector_sets(self, mux: str) -> list[RouteSet]:
        """The injector's static protocols for `mux`: only the sizes it measures (BIRD parses
        every route of its config at start, a second for 1M)."""
        return [
            *(injector_set("ipv4", n) for n in self.sizes_for(mux)),
            *(injector_set("ipv6", n) for n in self.v6_sizes_for(mux)),
            *probe_sets(self.probes),
        ]

    def tor_sets(self, mux: str) -> list[RouteSet]:
        return [tor_set("ipv4", n) for n in self.sizes_for(mux)]

    def check(self) -> None:
        """Raise ValueError when a size has no range of its own or two sets would overlap."""
        for sizes in (self.sizes, self.v6_sizes):
            if len(set(sizes)) != len(sizes):
                raise ValueError(f"a size is listed twice: {sizes}")
        check_disjoint(
            [
                *(injector_set("ipv4", n) for n in self.sizes),
                *(injector_set("ipv6", n) for n in self.v6_sizes),
                *probe_sets(self.probes),
                *(tor_set("ipv4", n) for n in self.sizes),
            ]
        )


@dataclass
class RunResult:
    mux: str
    run: int
    values: dict[str, float] = field(default_factory=dict)  # metric -> seconds / ms / MiB
    failures: dict[str, str] = field(default_factory=dict)  # metric -> reason
    notes: dict[str, Any] = field(default_factory=dict)


# Seconds per route a phase may take before it fails (plus 30 s): ExaBGP needs ~35 s (announce)
# for 100k on the reference machine, GoBGP ~19 s (reverse); the others well under 1 µs/route.
SLOW_MUXES = ("gobgp", "bgpmux-exabgp", "bgpmux-gobgp")


def phase_timeout(n: int, mux: str) -> float:
    """Seconds: 30 + 1.5 ms/route for the slow muxes (180 s at 100k), else 30 + 0.3 ms/route
    (330 s at 1M). A phase whose count stops moving fails sooner (`poll.STALL`)."""
    return 30.0 + n * (0.0015 if mux in SLOW_MUXES else 0.0003)


def run_once(mux: str, run: int, plan: Plan, log: Callable[[str], None]) -> RunResult:
    result = RunResult(mux, run)
    try:
        started = time.monotonic()
        with Scenario(mux, plan.injector_sets(mux), plan.tor_sets(mux)) as scenario:
            result.notes["setup_s"] = round(time.monotonic() - started, 2)
            log(f"  {mux}: lab up, sessions Established, in {result.notes['setup_s']:.1f} s")
            profiler = None
            if (
                plan.profile_dir is not None
                and mux.startswith("bgpmux")
                and scenario.mux is not None
            ):
                assert scenario.mux.proc is not None
                out = plan.profile_dir / f"{mux}-run{run}.txt"
                profiler = Profiler(scenario.mux.proc.pid, out)
                result.notes["profile"] = str(out)
            try:
                _phases(scenario, plan, result, log)
            finally:
                if profiler is not None:
                    profiler.stop()
                    if profiler.out.exists():
                        log(summarize(profiler.out, top=15))
    except Exception as error:  # setup failed, or teardown did
        reason = _short(error)
        log(f"  {mux} run {run}: failed: {reason}")
        result.failures.setdefault("setup", reason)
    return result


def _phases(scenario: Scenario, plan: Plan, result: RunResult, log: Callable[[str], None]) -> None:
    inj, tor = scenario.inj_ctl, scenario.tor_ctl
    assert inj is not None and tor is not None
    ip, tp = scenario.inj_proto, scenario.tor_proto

    def measure(metric: str, fn: Callable[[], float]) -> bool:
        if result.failures.get("aborted"):
            result.failures[metric] = result.failures["aborted"]
            return False
        try:
            value = fn()
        except Exception as error:
            reason = _short(error)
            result.failures[metric] = reason
            log(f"  {scenario.mux_kind}: {metric}: failed: {reason}")
            trouble = recover(scenario, plan)
            if trouble:
                result.failures["aborted"] = f"not measured: {trouble} after {metric} failed"
                log(f"  {scenario.mux_kind}: giving up this run: {trouble}")
            return False
        result.values[metric] = value
        unit = "ms" if metric.startswith("latency") else "MiB" if metric.startswith("rss") else "s"
        unit = "B/route" if metric.startswith("rss_slope") else unit
        log(f"  {scenario.mux_kind}: {metric} = {value:.3f} {unit}")
        return True

    # 0. The fixed part of the memory: the mux's RSS with the sessions up and no route.
    mux_kind = scenario.mux_kind
    if scenario.mux is not None:
        measure("rss_idle_mib", lambda: read_rss(scenario, result, "VmRSS", "idle"))

    # 1. One route's added latency, from packet timestamps, while the tables are empty.
    latencies: list[float] = []

    def probe() -> float:
        latencies.extend(probe_latencies(scenario, plan))
        result.notes["latency_ms"] = [round(x, 4) for x in latencies]
        return statistics.median(latencies)

    if measure("latency_p50_ms", probe):
        result.values["latency_p99_ms"] = percentile(latencies, 99)
    else:
        result.failures["latency_p99_ms"] = result.failures["latency_p50_ms"]

    poll_costs: list[tuple[float, float]] = []  # (wall, CPU) seconds per count poll

    def step(metric: str, src: BirdCtl, command: str, dst: BirdCtl, proto: str, family: str,
             target: int, timeout: float, after: str | None = None) -> None:  # fmt: skip
        if after is not None and after not in result.values:
            result.failures[metric] = f"not measured: {after} failed"
            return
        trigger = functools.partial(src.cmd, command)
        count = functools.partial(
            timed_count, trigger, dst, proto, family, target,
            poll=plan.poll, poll_rel=plan.poll_rel, timeout=timeout, costs=poll_costs,
        )  # fmt: skip
        measure(metric, count)

    # 2. IPv4: announce, withdraw, the reverse direction and its withdrawal, per size.
    for n in plan.sizes_for(mux_kind):
        forward, reverse, limit = (
            injector_set("ipv4", n).name,
            tor_set("ipv4", n).name,
            phase_timeout(n, mux_kind),
        )
        step(f"up_v4_{n}", inj, f"enable {forward}", tor, tp, "ipv4", n, limit)
        step(f"down_v4_{n}", inj, f"disable {forward}", tor, tp, "ipv4", 0, limit, f"up_v4_{n}")
        step(f"rev_v4_{n}", tor, f"enable {reverse}", inj, ip, "ipv4", n, limit)
        step(f"revdown_v4_{n}", tor, f"disable {reverse}", inj, ip, "ipv4", 0, limit, f"rev_v4_{n}")
        if scenario.mux is not None:  # the peak so far: VmHWM never goes down
            peak = functools.partial(read_rss, scenario, result, "VmHWM", str(n))
            measure(f"rss_mib_{n}", peak)
    result.values.update(slopes(result.values))

    # 3. IPv6: announce and withdraw.
    for n in plan.v6_sizes_for(mux_kind):
        forward, limit = injector_set("ipv6", n).name, phase_timeout(n, mux_kind)
        step(f"up_v6_{n}", inj, f"enable {forward}", tor, tp, "ipv6", n, limit)
        step(f"down_v6_{n}", inj, f"disable {forward}", tor, tp, "ipv6", 0, limit, f"up_v6_{n}")
    result.failures.pop("aborted", None)
    if poll_costs:
        wall = [w for w, _ in poll_costs]
        result.notes["poll_cost_ms"] = {
            "n": len(wall),
            "median": round(statistics.median(wall) * 1000, 3),
            "p99": round(percentile(wall, 99) * 1000, 3),
            "cpu_mean": round(sum(c for _, c in poll_costs) / len(wall) * 1000, 3),
        }


def recover(scenario: Scenario, plan: Plan) -> str | None:
    """After a failed phase: withdraw everything and wait for empty tables on both sessions
    (at most a phase's timeout at the largest size). None when the lab is usable again, else
    why not."""
    inj, tor = scenario.inj_ctl, scenario.tor_ctl
    assert inj is not None and tor is not None
    mux = scenario.mux_kind
    sizes = [*plan.sizes_for(mux), *plan.v6_sizes_for(mux), 1]
    recover_timeout = max(60.0, phase_timeout(max(sizes), mux))
    try:
        for ctl, sets in ((inj, plan.injector_sets(mux)), (tor, plan.tor_sets(mux))):
            for route_set in sets:
                ctl.cmd(f"disable {route_set.name}")
        deadline = time.monotonic() + recover_timeout
        for ctl, proto in ((inj, scenario.inj_proto), (tor, scenario.tor_proto)):
            while True:
                state = ctl.state(proto)
                if state != "Established":
                    return f"session {proto} is {state}"
                if not ctl.imported(proto, "ipv4") and not ctl.imported(proto, "ipv6"):
                    break
                if time.monotonic() > deadline:
                    return f"tables not empty {recover_timeout:.0f} s after withdrawing everything"
                time.sleep(0.2)
    except Exception as error:
        return f"recovery failed: {_short(error)}"
    return None


# ---------------------------------------------------------------------------------- latency


def probe_latencies(scenario: Scenario, plan: Plan) -> list[float]:
    """Announce `plan.probes` distinct /32s one at a time; per probe, the time between the first
    UPDATE carrying it on the injector's link and on the ToR's link, in milliseconds."""
    inj, tor = scenario.inj_ctl, scenario.tor_ctl
    assert inj is not None and tor is not None
    a = scenario.addr
    captures = {
        "inj": _start_tcpdump(scenario, "inj", scenario.ifaces["inj"]),
        "tor": _start_tcpdump(scenario, "tor", scenario.ifaces["tor"]),
    }
    probes = probe_sets(plan.probes)
    try:
        for i, probe in enumerate(probes, start=1):
            timed_count(
                lambda probe=probe: inj.cmd(f"enable {probe.name}"),
                tor, scenario.tor_proto, "ipv4", i, poll=0.005, poll_rel=0.0, timeout=20,
            )  # fmt: skip
            time.sleep(0.03)
        time.sleep(0.5)  # let the last packets reach the capture files
    finally:
        for proc, _path in captures.values():
            end_process(proc)
    wanted = {p.prefixes()[0] for p in probes}
    sent = first_announcements(captures["inj"][1], wanted, src=a.inj4)
    received = first_announcements(captures["tor"][1], wanted, dst=a.tor4)
    missing = sorted(wanted - sent.keys()) + sorted(wanted - received.keys())
    if missing:
        raise PhaseError(
            f"{len(missing)} probe UPDATEs not found in the captures (e.g. {missing[0]})"
        )
    for probe in probes:
        inj.cmd(f"disable {probe.name}")
    timed_count(
        lambda: None, tor, scenario.tor_proto, "ipv4", 0, poll=0.02, poll_rel=0.0, timeout=30
    )
    return [(received[p] - sent[p]) * 1000 for p in sorted(wanted)]


def _start_tcpdump(
    scenario: Scenario, host_name: str, iface: str
) -> tuple[subprocess.Popen[bytes], Path]:
    host = scenario.hosts[host_name]
    path = host.workdir / f"probes-{iface}.pcap"
    log_name = f"tcpdump-{iface}.log"
    argv = [
        scenario.tcpdump_binary(), "-i", iface, "-n", "-U", "--immediate-mode", "-s", "0",
        "-Z", "root", "--time-stamp-precision=nano", "-w", str(path), TCPDUMP_FILTER,
    ]  # fmt: skip
    proc = host.spawn(argv, log_name)
    log_path = host.workdir / log_name
    deadline = time.monotonic() + 10
    while "listening on" not in (log_path.read_text(errors="replace") if log_path.exists() else ""):
        if proc.poll() is not None or time.monotonic() > deadline:
            end_process(proc)
            raise PhaseError(
                f"tcpdump on {host_name}/{iface} did not start: {log_path.read_text()[-300:]}"
            )
        time.sleep(0.02)
    return proc, path


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first[:200]
