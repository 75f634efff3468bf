"""A session's timers, as absolute deadlines (seconds, caller's clock): the three of RFC 4271
and the send hold timer of RFC 9687."""

from __future__ import annotations

from dataclasses import dataclass

# RFC 4271 §8: "a large value (suggested: 4 minutes)" for the hold timer while in OpenSent.
OPEN_SENT_HOLD_TIME = 240.0

# RFC 9687 §3: the send hold time defaults to the larger of 8 minutes and twice the hold time.
MIN_SEND_HOLD_TIME = 480.0


def default_send_hold_time(hold_time: float) -> float:
    """RFC 9687's default send hold time for a negotiated ``hold_time``, in seconds."""
    return max(MIN_SEND_HOLD_TIME, 2.0 * hold_time)


@dataclass(slots=True)
class Timers:
    """Hold, keepalive and connect-retry deadlines (RFC 4271 §10) and the send hold deadline
    (RFC 9687 §4), in seconds; None: not running."""

    hold: float | None = None
    keepalive: float | None = None
    connect_retry: float | None = None
    send_hold: float | None = None

    def earliest(self) -> float | None:
        """The soonest running deadline, or None if none runs."""
        deadlines = [
            t
            for t in (self.hold, self.keepalive, self.connect_retry, self.send_hold)
            if t is not None
        ]
        return min(deadlines) if deadlines else None

    def clear(self) -> None:
        """Stop every timer."""
        self.hold = self.keepalive = self.connect_retry = self.send_hold = None
