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

    def add(self, more: SessionStats) -> None:
        """Add ``more``'s counters into these, in place."""
        for mine, theirs in (
            (self.messages_sent, more.messages_sent),
            (self.messages_received, more.messages_received),
        ):
            for kind, count in theirs.items():
                mine[kind] = mine.get(kind, 0) + count
        for mine_n, theirs_n in (
            (self.notifications_sent, more.notifications_sent),
            (self.notifications_received, more.notifications_received),
        ):
            for key, count in theirs_n.items():
                mine_n[key] = mine_n.get(key, 0) + count
        self.established += more.established
