"""Keeping a peer down after it broke a limit: RFC 4271 §8.1.1's IdleHoldTimer, doubled on each
repeat (its DampPeerOscillations), the way FRR's ``maximum-prefix … restart`` and BIRD's
``import limit … action restart`` keep a peer idle. Pure: the caller gives the time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_IDLE_HOLD = 3600.0  # seconds: the doubling stops here (or at the base, if that is longer)


@dataclass(slots=True)
class IdleHold:
    """One peer's idle hold. ``base``: the first hold, in seconds (0: held until ``release``).
    ``until``: when the current hold ends (``math.inf``: at a release; None: not held)."""

    base: float
    until: float | None = None
    repeats: int = 0  # holds in a row, each twice the last
    last_hold: float = 0.0

    def trip(self, now: float, up_for: float | None) -> float:
        """Hold the peer from ``now``; ``up_for``: how long its last session was up, in
        seconds (None: it never came up). A session that stayed up longer than the last hold
        was not a repeat, and the hold starts from ``base`` again. Returns the hold in seconds
        (``math.inf`` until a release)."""
        if self.base <= 0:
            self.until = math.inf
            return math.inf
        if up_for is not None and up_for > self.last_hold:
            self.repeats = 0
        hold = min(self.base * 2.0**self.repeats, max(self.base, MAX_IDLE_HOLD))
        self.repeats += 1
        self.last_hold = hold
        self.until = now + hold
        return hold

    def remaining(self, now: float) -> float:
        """Seconds the hold still runs at ``now`` (0 when not held)."""
        if self.until is None or now >= self.until:
            return 0.0
        return self.until - now

    def release(self) -> None:
        """End any hold and forget the repeats (a reload of the configuration)."""
        self.until = None
        self.repeats = 0
        self.last_hold = 0.0
