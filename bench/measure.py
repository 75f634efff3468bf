"""The measurements of one run of one mux: propagation times, one-route latency, peak RSS."""

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
from .pcap import first_announcements
from .profile import Profiler, summarize
from .routes import RouteSet, injector_set, probe_sets, tor_set
from .scenario import Scenario, vm_hwm_kib

TCPDUMP_FILTER = "tcp port 179 or tcp port 1790"


class PhaseError(RuntimeError):
    """A phase did not complete; the message says why (it ends up in the table)."""


@dataclass
class Plan:
    sizes: list[int]  # IPv4 sizes, each: announce, withdraw, reverse, reverse withdraw
    v6_sizes: list[int]  # IPv6 sizes: announce, withdraw
    v6_muxes: tuple[str, ...] = ()  # the muxes the IPv6 phases run for
    probes: int = 25
    poll: float = 0.05
    profile_dir: Path | None = None  # py-spy recordings of bgpmux, when set

    def injector_sets(self) -> list[RouteSet]:
        return [
            *(injector_set("ipv4", n) for n in self.sizes),
            *(injector_set("ipv6", n) for n in self.v6_sizes),
            *probe_sets(self.probes),
        ]

    def tor_sets(self) -> list[RouteSet]:
        return [tor_set("ipv4", n) for n in self.sizes]


@dataclass
class RunResult:
    mux: str
    run: int
    values: dict[str, float] = field(default_factory=dict)  # metric -> seconds / ms / MiB
    failures: dict[str, str] = field(default_factory=dict)  # metric -> reason
    notes: dict[str, Any] = field(default_factory=dict)


def phase_timeout(n: int) -> float:
    # ExaBGP needs ~35 s (announce) for 100k on the reference machine; GoBGP ~19 s (reverse).
    return 30.0 + n * 0.0015


def timed_count(
    trigger: Callable[[], object],
    ctl: BirdCtl,
    protocol: str,
    channel: str,
    target: int,
    *,
    poll: float,
    timeout: float,
) -> float:
    """Run `trigger`, then poll `protocol`'s imported count of `channel`; the time from the
    trigger until the first poll that saw `target`. Polls are `poll` seconds apart, after a
    denser start (polls 5, 15, 35, 75 ms after the trigger) so that fast muxes are not all
    rounded up to one interval."""
    start = time.monotonic()
    trigger()
    due = 0.0
    step = min(0.005, poll)
    while True:
        last = ctl.imported(protocol, channel)
        now = time.monotonic()
        if last == target:
            return now - start
        if now - start > timeout:
            raise PhaseError(f"timeout after {timeout:.0f} s ({last} of target {target})")
        due += step
        step = min(step * 2, poll)
        time.sleep(max(0.0, start + due - time.monotonic()))


def run_once(mux: str, run: int, plan: Plan, log: Callable[[str], None]) -> RunResult:
    result = RunResult(mux, run)
    try:
        with Scenario(mux, plan.injector_sets(), plan.tor_sets()) as scenario:
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
        log(f"  {scenario.mux_kind}: {metric} = {value:.3f} {unit}")
        return True

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

    def step(metric: str, src: BirdCtl, command: str, dst: BirdCtl, proto: str, family: str,
             target: int, timeout: float, after: str | None = None) -> None:  # fmt: skip
        if after is not None and after not in result.values:
            result.failures[metric] = f"not measured: {after} failed"
            return
        trigger = functools.partial(src.cmd, command)
        count = functools.partial(
            timed_count, trigger, dst, proto, family, target, poll=plan.poll, timeout=timeout
        )
        measure(metric, count)

    # 2. IPv4: announce, withdraw, the reverse direction and its withdrawal, per size.
    for n in plan.sizes:
        forward, reverse, limit = (
            injector_set("ipv4", n).name,
            tor_set("ipv4", n).name,
            phase_timeout(n),
        )
        step(f"up_v4_{n}", inj, f"enable {forward}", tor, tp, "ipv4", n, limit)
        step(f"down_v4_{n}", inj, f"disable {forward}", tor, tp, "ipv4", 0, limit, f"up_v4_{n}")
        step(f"rev_v4_{n}", tor, f"enable {reverse}", inj, ip, "ipv4", n, limit)
        step(f"revdown_v4_{n}", tor, f"disable {reverse}", inj, ip, "ipv4", 0, limit, f"rev_v4_{n}")
        if n == max(plan.sizes) and scenario.mux is not None:
            measure(f"rss_mib_{n}", lambda: read_rss(scenario, result))

    # 3. IPv6: announce and withdraw.
    for n in plan.v6_sizes if scenario.mux_kind in plan.v6_muxes else []:
        forward, limit = injector_set("ipv6", n).name, phase_timeout(n)
        step(f"up_v6_{n}", inj, f"enable {forward}", tor, tp, "ipv6", n, limit)
        step(f"down_v6_{n}", inj, f"disable {forward}", tor, tp, "ipv6", 0, limit, f"up_v6_{n}")
    result.failures.pop("aborted", None)


RECOVER_TIMEOUT = 60.0


def recover(scenario: Scenario, plan: Plan) -> str | None:
    """After a failed phase: withdraw everything and wait for empty tables on both sessions.
    None when the lab is usable again, else why not."""
    inj, tor = scenario.inj_ctl, scenario.tor_ctl
    assert inj is not None and tor is not None
    try:
        for ctl, sets in ((inj, plan.injector_sets()), (tor, plan.tor_sets())):
            for route_set in sets:
                ctl.cmd(f"disable {route_set.name}")
        deadline = time.monotonic() + RECOVER_TIMEOUT
        for ctl, proto in ((inj, scenario.inj_proto), (tor, scenario.tor_proto)):
            while True:
                state = ctl.state(proto)
                if state != "Established":
                    return f"session {proto} is {state}"
                if not ctl.imported(proto, "ipv4") and not ctl.imported(proto, "ipv6"):
                    break
                if time.monotonic() > deadline:
                    return f"tables not empty {RECOVER_TIMEOUT:.0f} s after withdrawing everything"
                time.sleep(0.2)
    except Exception as error:
        return f"recovery failed: {_short(error)}"
    return None


def read_rss(scenario: Scenario, result: RunResult) -> float:
    processes = scenario.mux_processes()
    if not processes:
        raise PhaseError("no mux process (direct)")
    detail = {}
    for name, pid in processes:
        kib = vm_hwm_kib(pid)
        if kib is not None:
            detail[f"{name}[{pid}]"] = round(kib / 1024, 1)
    if not detail:
        raise PhaseError("could not read VmHWM")
    result.notes["rss_detail_mib"] = detail
    return sum(detail.values())


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
                tor, scenario.tor_proto, "ipv4", i, poll=0.005, timeout=20,
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
    timed_count(lambda: None, tor, scenario.tor_proto, "ipv4", 0, poll=0.02, timeout=30)
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
