"""A process's children and descendants, from /proc, and Ctrl-C-like signal handling (for the
tests, the bench, the soak and the hitless check)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

MAX_DESCENDANTS = 32


def children(pid: int) -> list[int]:
    """PIDs of ``pid``'s direct children (every thread's); empty once it is gone."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(x) for x in task.read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int, limit: int = MAX_DESCENDANTS) -> list[int]:
    """PIDs below ``pid``, breadth first, at most ``limit``."""
    out: list[int] = []
    todo = children(pid)
    while todo and len(out) < limit:
        child = todo.pop(0)
        out.append(child)
        todo += children(child)
    return out


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def clean_up_on_signals() -> None:
    """SIGTERM and SIGINT (even one inherited as ignored) raise KeyboardInterrupt in the main
    thread, so that a long run tears its namespaces and daemons down as on Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
