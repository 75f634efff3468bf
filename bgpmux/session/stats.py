"""Per-session counters, kept as plain dicts and read by the metrics snapshot at scrape time."""

from __future__ import annotations

from dataclasses import dataclass, field

from bgpmux.wire.constants import MessageType


def _per_type() -> dict[str, int]:
    return {kind.name: 0 for kind in MessageType}


@dataclass(slots=True)
class SessionStats:
    """Message counts of one ``Session``, over all its connections (never reset)."""

    messages_sent: dict[str, int] = field(default_factory=_per_type)  # by MessageType name
    messages_received: dict[str, int] = field(default_factory=_per_type)
    notifications_sent: dict[tuple[int, int], int] = field(default_factory=dict)  # (code, sub)
    notifications_received: dict[tuple[int, int], int] = field(default_factory=dict)
    established: int = 0  # times the session reached ESTABLISHED

    def snapshot(self) -> SessionStats:
        """An independent copy, safe to hand to another task."""
        return SessionStats(
            dict(self.messages_sent),
            dict(self.messages_received),
            dict(self.notifications_sent),
            dict(self.notifications_received),
            self.established,
        )
