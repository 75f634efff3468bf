"""A process's children and descendants, from /proc (for the tests, the bench and the soak)."""

from __future__ import annotations

from pathlib import Path

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
