"""The three RFC 4271 timers of a session, as absolute deadlines (seconds, caller's clock)."""

from __future__ import annotations

from dataclasses import dataclass

# RFC 4271 §8: "a large value (suggested: 4 minutes)" for the hold timer while in OpenSent.
OPEN_SENT_HOLD_TIME = 240.0


@dataclass(slots=True)
class Timers:
    """Hold, keepalive and connect-retry deadlines in seconds (RFC 4271 §10); None: not running."""

    hold: float | None = None
    keepalive: float | None = None
    connect_retry: float | None = None

    def earliest(self) -> float | None:
        """The soonest running deadline, or None if none runs."""
        deadlines = [t for t in (self.hold, self.keepalive, self.connect_retry) if t is not None]
        return min(deadlines) if deadlines else None

    def clear(self) -> None:
        """Stop all three timers."""
        self.hold = self.keepalive = self.connect_retry = None
