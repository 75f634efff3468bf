"""Timing a phase: trigger, then poll a BIRD's imported count until it reaches the target."""

from __future__ import annotations

import time
from collections.abc import Callable

from .birdctl import BirdCtl

STALL = 60.0  # seconds without any change of the count: the phase has failed


class PhaseError(RuntimeError):
    """A phase did not complete; the message says why (it ends up in the table)."""


def timed_count(
    trigger: Callable[[], object],
    ctl: BirdCtl,
    protocol: str,
    channel: str,
    target: int,
    *,
    poll: float,
    poll_rel: float,
    timeout: float,
    costs: list[tuple[float, float]] | None = None,
) -> float:
    """Run `trigger`, then poll `protocol`'s imported count of `channel`; the seconds from just
    before the trigger until the first poll that saw `target`.

    A poll starts `max(poll, poll_rel * elapsed)` seconds after the previous one started (or as
    soon as it returned, when it took longer), so a result is late by at most that interval plus
    one poll's duration (`costs` collects each poll's wall and CPU seconds of this process):
    5 ms up to 0.25 s, 2% beyond with the defaults. Raises PhaseError after `timeout`
    seconds, or when the count has not changed for `STALL` seconds."""
    start = time.monotonic()
    trigger()
    previous, changed = -1, start
    while True:
        before, cpu = time.monotonic(), time.process_time()
        last = ctl.imported(protocol, channel)
        now = time.monotonic()
        if costs is not None:
            costs.append((now - before, time.process_time() - cpu))
        if last == target:
            return now - start
        if last != previous:
            previous, changed = last, now
        if now - start > timeout:
            raise PhaseError(f"timeout after {timeout:.0f} s ({last} of target {target})")
        if now - changed > STALL:
            raise PhaseError(f"stalled for {STALL:.0f} s at {last} of target {target}")
        interval = max(poll, poll_rel * (now - start))
        time.sleep(max(0.0, before + interval - time.monotonic()))
