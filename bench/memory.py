"""The mux's memory: RSS of its processes (bgpmux with its ExaBGP child and relay, or the
daemon), the peak (VmHWM) after each size's phases, and the per-route slope between sizes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .measure import RunResult
    from .scenario import Scenario

MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int | None:
    """A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`), None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def read_rss(scenario: Scenario, result: RunResult, field: str, tag: str) -> float:
    """MiB: the sum of `field` over the mux's processes (each process's own peak for VmHWM,
    so the sum can exceed any instant's total). Per-process MiB go to the run's notes under
    `rss_detail_mib[tag]`. Raises RuntimeError when there is no mux process or no reading."""
    processes = scenario.mux_processes()
    if not processes:
        raise RuntimeError("no mux process (direct)")
    detail: dict[str, float] = {}
    total = 0
    for name, pid in processes:
        kib = status_kib(pid, field)
        if kib is not None:
            detail[f"{name}[{pid}]"] = round(kib / 1024, 1)
            total += kib
    if not detail:
        raise RuntimeError(f"could not read {field}")
    result.notes.setdefault("rss_detail_mib", {})[tag] = detail
    return total / 1024


def slopes(values: dict[str, float]) -> dict[str, float]:
    """Bytes per route between consecutive IPv4 sizes with a peak reading:
    `rss_slope_A_B` = (rss_mib_B - rss_mib_A) MiB / (B - A) routes."""
    sizes = sorted(int(k.rsplit("_", 1)[1]) for k in values if k.startswith("rss_mib_"))
    return {
        f"rss_slope_{a}_{b}": (values[f"rss_mib_{b}"] - values[f"rss_mib_{a}"]) * MIB / (b - a)
        for a, b in itertools.pairwise(sizes)
    }
