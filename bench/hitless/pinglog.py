"""Lost pings from the output of ``ping -D -O -n`` (iputils): pure parsing and counting.

A reply line is ``[1796037775.78] 64 bytes from 10.66.0.1: icmp_seq=38 ttl=64 time=0.04 ms``;
``-O`` adds ``[ts] no answer yet for icmp_seq=41`` when the next probe leaves unanswered; the
summary is ``121 packets transmitted, 100 received, …``. ``icmp_seq`` wraps at 65536 (22 minutes
at 20 ms), so sequence numbers are unwrapped in the order ping printed them.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

_REPLY = re.compile(r"^\[(?P<ts>\d+\.\d+)\] \d+ bytes from \S+ icmp_seq=(?P<seq>\d+)")
_NO_ANSWER = re.compile(r"^\[(?P<ts>\d+\.\d+)\] no answer yet for icmp_seq=(?P<seq>\d+)")
_SUMMARY = re.compile(r"^(?P<tx>\d+) packets transmitted, (?P<rx>\d+) (?:packets )?received")
SEQ_SPACE = 65536


@dataclass
class PingLog:
    """What one ping run printed. ``replies`` and ``unanswered`` map an unwrapped sequence
    number (from 1) to the wall-clock time (s) of its line; ``transmitted`` is None when ping
    was ended before it printed its summary."""

    replies: dict[int, float] = field(default_factory=dict)
    unanswered: dict[int, float] = field(default_factory=dict)
    transmitted: int | None = None
    received: int | None = None


@dataclass(frozen=True)
class Gap:
    """A run of consecutive lost probes: first and last sequence number, and the wall-clock
    times (s) of the last reply before it and the first reply after it (None at either end)."""

    first: int
    last: int
    after: float | None
    before: float | None

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Loss:
    """Probes counted as sent (the last one, possibly still in flight when ping was stopped,
    is left out) and the lost ones, as gaps."""

    sent: int
    lost: int
    gaps: tuple[Gap, ...]


class _Unwrap:
    def __init__(self) -> None:
        self.epoch = 0
        self.last = 0

    def __call__(self, seq: int) -> int:
        if seq < self.last - SEQ_SPACE // 2:
            self.epoch += 1
        elif seq > self.last + SEQ_SPACE // 2 and self.epoch > 0:
            return (self.epoch - 1) * SEQ_SPACE + seq  # a late line from before the wrap
        self.last = seq
        return self.epoch * SEQ_SPACE + seq


def parse(text: str) -> PingLog:
    """Parse ping's output; lines it does not know (errors, DUP!) are ignored. A duplicate
    reply keeps the first time."""
    log = PingLog()
    unwrap = _Unwrap()
    for line in text.splitlines():
        if m := _REPLY.match(line):
            log.replies.setdefault(unwrap(int(m["seq"])), float(m["ts"]))
        elif m := _NO_ANSWER.match(line):
            log.unanswered.setdefault(unwrap(int(m["seq"])), float(m["ts"]))
        elif m := _SUMMARY.match(line):
            log.transmitted, log.received = int(m["tx"]), int(m["rx"])
    return log


def count_loss(log: PingLog) -> Loss:
    """Lost probes of one run. Sent is what ping reports transmitted (or, without a summary,
    the highest sequence number seen), less the last probe when it went unanswered: ping was
    stopped while it may still have been in flight."""
    seen = max([*log.replies, *log.unanswered], default=0)
    sent = log.transmitted if log.transmitted is not None else seen
    if sent and sent not in log.replies:
        sent -= 1
    lost = [seq for seq in range(1, sent + 1) if seq not in log.replies]
    gaps: list[Gap] = []
    answered = sorted(log.replies)
    for seq in lost:
        if gaps and gaps[-1].last == seq - 1:
            gaps[-1] = Gap(gaps[-1].first, seq, gaps[-1].after, None)
        else:
            gaps.append(Gap(seq, seq, _reply_before(answered, log.replies, seq), None))
    gaps = [
        Gap(g.first, g.last, g.after, _reply_after(answered, log.replies, g.last)) for g in gaps
    ]
    return Loss(sent=sent, lost=len(lost), gaps=tuple(gaps))


def _reply_before(answered: list[int], replies: dict[int, float], seq: int) -> float | None:
    i = bisect.bisect_left(answered, seq)
    return replies[answered[i - 1]] if i > 0 else None


def _reply_after(answered: list[int], replies: dict[int, float], seq: int) -> float | None:
    i = bisect.bisect_right(answered, seq)
    return replies[answered[i]] if i < len(answered) else None


def mean_interval(log: PingLog) -> float | None:
    """Seconds between probes, from the first and last replies (ping's timer makes ``-i 0.02``
    somewhat longer); None with fewer than two replies."""
    if len(log.replies) < 2:
        return None
    first, last = min(log.replies), max(log.replies)
    return (log.replies[last] - log.replies[first]) / (last - first)


def start_time(gap: Gap, log: PingLog, interval: float) -> float | None:
    """Wall-clock time (s) the gap began: its first probe's "no answer yet" line, less one
    interval, else just after the last reply before it."""
    if gap.first in log.unanswered:
        return log.unanswered[gap.first] - interval
    return None if gap.after is None else gap.after + interval


def seconds(gap: Gap, interval: float) -> float:
    """How long a gap lasted: between the replies around it, else count * interval."""
    if gap.after is not None and gap.before is not None:
        return gap.before - gap.after
    return gap.count * interval


def attribute(starts: list[float | None], events: list[float]) -> list[int]:
    """For each gap start time, the index of the last event at or before it (``events`` in
    ascending wall-clock order); -1 before the first event or when the start is unknown."""
    out = []
    for start in starts:
        out.append(-1 if start is None else bisect.bisect_right(events, start) - 1)
    return out
