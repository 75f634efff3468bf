"""One mux's run: build the rack, ping the three targets, restart the mux N times, count."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import Host, wait_until

from . import pinglog
from .rack import BEHIND_ADDR, LB_ADDR, POD_ADDR, STOP_TIMEOUT, Rack

INTERVAL = 0.02  # seconds between pings
START_SLACK = 20.0  # per restart, over stop + settle + dwell: start-up, queries
PING_STOP_TIMEOUT = 5.0
# (name, from host, address)
TARGETS = (("pod", "tor", POD_ADDR), ("lb", "tor", LB_ADDR), ("behind_tor", "node", BEHIND_ADDR))
SIGNALS = (signal.SIGTERM, signal.SIGKILL)
KEPT_SUFFIXES = (".log", ".conf", ".yaml")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    restarts: int
    settle_timeout: float  # seconds a restarted mux has to settle before the next restart
    dwell: float  # seconds of pinging after it settled (and before the first restart)
    keep_logs: Path | None = None  # copy each daemon's config and log, and ping's, here

    def deadline(self) -> int:
        """The pings' ``-w``: the longest this phase can take, so they end by themselves."""
        per_restart = STOP_TIMEOUT + self.settle_timeout + self.dwell + START_SLACK
        return int(2 * self.dwell + self.restarts * per_restart + 60)


class Pinger:
    """``ping -D -O -n -i 0.02 -w DEADLINE`` in a namespace; stopped with SIGINT, so that it
    prints its summary."""

    def __init__(self, host: Host, name: str, target: str, deadline: int) -> None:
        self.host, self.name, self.target = host, name, target
        self.log_path = host.workdir / f"ping-{name}.log"
        argv = ["ping", "-D", "-O", "-n", "-i", str(INTERVAL), "-w", str(deadline), target]
        self.proc = host.spawn(argv, self.log_path.name)

    def stop(self) -> str:
        """End it (by PID) if it still runs, and return what it printed."""
        self.host.kill(self.proc, signal.SIGINT)
        try:
            self.proc.wait(timeout=PING_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.host.kill(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=PING_STOP_TIMEOUT)
        return self.log_path.read_text(errors="replace")


def run_mux(kind: str, opts: Options, log: Log) -> dict[str, Any]:
    """Measure one mux kind (``exabgp``, ``native`` or ``bird``). Raises only on Ctrl-C; any
    other failure is recorded in the result, which then fails."""
    result: dict[str, Any] = {"mux": kind, "restarts": [], "failures": []}
    started = time.monotonic()
    try:
        with Rack(kind) as rack:
            log(f"{kind}: rack up in {rack.topo.tag}-* after {time.monotonic() - started:.0f}s")
            try:
                _measure(rack, opts, result, log)
            finally:
                if opts.keep_logs is not None:
                    keep_logs(rack.topo.workdir, opts.keep_logs / kind)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a rack that cannot run fails this mux, the others go on
        result["failures"].append(f"{type(error).__name__}: {error}"[:2000])
    result["duration_s"] = round(time.monotonic() - started, 1)
    judge(result)
    return result


def _measure(rack: Rack, opts: Options, result: dict[str, Any], log: Log) -> None:
    hosts = {"tor": rack.tor_host, "node": rack.node}
    pingers = [Pinger(hosts[src], name, addr, opts.deadline()) for name, src, addr in TARGETS]
    t0 = time.time()
    events: list[float] = []  # wall-clock time of each restart, as ping's -D stamps
    try:
        _restarts(rack, opts, result, t0, events, log)
    except Exception as error:  # what was measured so far still counts
        result["failures"].append(f"restarts stopped: {type(error).__name__}: {error}"[:2000])
    finally:
        early = [p for p in pingers if p.proc.poll() is not None]  # its count would be short
        outputs = [p.stop() for p in pingers]
    for p in early:
        result["failures"].append(f"ping {p.name} ({p.target}) ended before the run did")
    result["targets"] = {
        name: target_result(src, addr, pinglog.parse(text), t0, events)
        for (name, src, addr), text in zip(TARGETS, outputs, strict=True)
    }


def _restarts(
    rack: Rack, opts: Options, result: dict[str, Any], t0: float, events: list[float], log: Log
) -> None:
    """Dwell, then per restart: signal, start again, settle (bounded), dwell. ``events`` gets
    each restart's wall-clock time; ``at_s`` counts from ``t0``, when the pings started."""
    time.sleep(opts.dwell)
    for n in range(1, opts.restarts + 1):
        sig = SIGNALS[(n - 1) % 2]
        events.append(time.time())
        restart: dict[str, Any] = {"n": n, "signal": sig.name, "at_s": round(events[-1] - t0, 2)}
        restart.update(rack.restart_mux(sig))
        restart["settled_s"] = _settle(rack, opts.settle_timeout, events[-1])
        if restart["settled_s"] is None:
            restart["unsettled"] = _why(rack)
        result["restarts"].append(restart)
        settled = restart["settled_s"]
        log(f"{rack.kind}: restart {n}/{opts.restarts} ({sig.name}): exited in "
            f"{restart['exit_s']}s, " + (f"settled in {settled}s" if settled is not None
            else f"NOT settled within {opts.settle_timeout:.0f}s"))  # fmt: skip
        time.sleep(opts.dwell)


def keep_logs(workdir: Path, to: Path) -> None:
    """Copy the rack's configs and logs (not its sockets) from ``workdir`` to ``to``."""
    for path in workdir.rglob("*"):
        if path.is_file() and path.suffix in KEPT_SUFFIXES:
            target = to / path.relative_to(workdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _settle(rack: Rack, timeout: float, since: float) -> float | None:
    """Seconds from the restart until the rack settled again, or None after ``timeout``."""
    try:
        wait_until(rack.settled, timeout=timeout, interval=0.5, what="settled")
    except AssertionError:
        return None
    return round(time.time() - since, 1)


def _why(rack: Rack) -> str:
    try:
        return rack.unsettled() or "settled just after the timeout"
    except Exception as error:  # a daemon that does not answer is itself the reason
        return f"{type(error).__name__}: {error}"[:300]


def target_result(
    src: str, addr: str, log: pinglog.PingLog, t0: float, events: list[float]
) -> dict[str, Any]:
    """Sent, lost and the gaps of one target; each gap with its start (seconds from ``t0``),
    length and the restart (1-based, 0 before the first) during whose cycle it began."""
    loss = pinglog.count_loss(log)
    starts = [pinglog.start_time(g, log, INTERVAL) for g in loss.gaps]
    owners = pinglog.attribute(starts, events)
    gaps = [
        {
            "start_s": None if start is None else round(start - t0, 2),
            "lost": g.count,
            "seconds": round(pinglog.seconds(g, INTERVAL), 2),
            "restart": owner + 1,
        }
        for g, start, owner in zip(loss.gaps, starts, owners, strict=True)
    ]
    interval = pinglog.mean_interval(log)
    return {
        "from": src,
        "address": addr,
        "sent": loss.sent,
        "lost": loss.lost,
        "interval_ms": None if interval is None else round(1000 * interval, 1),
        "gaps": gaps,
    }


def judge(result: dict[str, Any]) -> None:
    """ok: nothing lost towards any target, every restart settled, nothing failed."""
    failures = result["failures"]
    targets = result.get("targets", {})
    if not targets and not failures:
        failures.append("no ping was measured")
    for name, t in targets.items():
        if t["sent"] == 0:
            failures.append(f"{name}: no ping was sent")
        elif t["lost"]:
            failures.append(f"{name}: {t['lost']} of {t['sent']} pings lost")
    for r in result["restarts"]:
        if r["settled_s"] is None:
            failures.append(
                f"restart {r['n']} ({r['signal']}) did not settle: {r.get('unsettled')}"
            )
        if r["forced_kill"]:
            failures.append(f"restart {r['n']}: SIGTERM did not end the mux, SIGKILL did")
    result["ok"] = not failures
