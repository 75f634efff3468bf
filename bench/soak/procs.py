"""Resident memory, open descriptors and CPU time of a process and its descendants, from /proc.

bgpmux with the exabgp engine is a tree: bgpmux → ExaBGP → the relay (ExaBGP's API process).
Each process is named by its role, so that samples taken across an ExaBGP restart still line up.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.procs import descendants

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FD_READS, FD_READ_GAP_S = 7, 0.03


@dataclass(frozen=True)
class ProcSample:
    pid: int
    rss_kib: int
    fds: int
    cpu_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def role(pid: int, root: int) -> str:
    if pid == root:
        return "bgpmux"
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "gone"
    if any(w.endswith("exabgp_relay") for w in words):
        return "relay"
    if any(Path(w).name == "exabgp" for w in words):
        return "exabgp"
    return Path(words[0]).name if words and words[0] else "?"


def open_fds(pid: int, reads: int = FD_READS) -> int:
    """The fewest descriptors seen in ``reads`` reads FD_READ_GAP_S apart: a descriptor held
    for a moment is not growth, a leaked one stays in every read. (ExaBGP 5.0.15 builds and
    closes an asyncio event loop, an epoll descriptor and a socket pair, on every reactor
    pass, so about half the time it holds 3 more than its 6.)"""
    counts = []
    for n in range(reads):
        if n:
            time.sleep(FD_READ_GAP_S)
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
    return min(counts)


def sample(pid: int) -> ProcSample | None:
    """None when the process has gone."""
    try:
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
        fds = open_fds(pid)
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    except (OSError, ValueError, IndexError):
        return None
    return ProcSample(pid=pid, rss_kib=rss, fds=fds, cpu_s=cpu)


def sample_tree(root: int) -> dict[str, ProcSample]:
    """Role → sample for the root and every descendant; a repeated role gets ``#2``, ``#3``."""
    out: dict[str, ProcSample] = {}
    for pid in (root, *descendants(root)):
        found = sample(pid)
        if found is None:
            continue
        name = role(pid, root)
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name}#{n}"
        out[key] = found
    return out
