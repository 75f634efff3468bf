"""The event stream's fan-out: the core's watch changes and reload outcomes to every watcher.

The core is hooked (``Core.watcher``) only while someone watches. Each watcher has a bounded
queue: one that falls behind loses events (counted, and told with a ``lost`` event) rather than
growing bgpmux's memory or slowing the core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..core.runner import CoreRunner
from ..core.watch import Change
from ..v1 import events_pb2
from .convert import event_message

WATCH_QUEUE = 10_000  # events one watcher may have waiting


class Watcher:
    """One stream's queue of events; ``lost`` counts those dropped since it last caught up."""

    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[events_pb2.Event] = asyncio.Queue(limit)
        self.lost = 0

    def offer(self, event: events_pb2.Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lost += 1

    async def events(self) -> AsyncIterator[events_pb2.Event]:
        """The events as they come; a ``lost`` event first wherever some were dropped."""
        while True:
            event = await self.queue.get()
            if self.lost:
                lost, self.lost = self.lost, 0
                yield events_pb2.Event(time=event.time, lost=lost)
            yield event


class EventHub:
    """Hands each event to every ``Watcher``; hooks ``core.watcher`` while there is one."""

    def __init__(self, runner: CoreRunner, limit: int = WATCH_QUEUE) -> None:
        self.runner = runner
        self.limit = limit
        self.watchers: set[Watcher] = set()

    def watch(self) -> Watcher:
        """A new watcher; call ``unwatch`` when its stream ends."""
        watcher = Watcher(self.limit)
        self.watchers.add(watcher)
        self.runner.core.watcher = self.change
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        if not self.watchers:
            self.runner.core.watcher = None

    def change(self, change: Change) -> None:
        """The core's hook: ``change`` to every watcher."""
        self.publish(event_message(change, time.time()))

    def publish(self, event: events_pb2.Event) -> None:
        """``event`` to every watcher (never blocks)."""
        for watcher in self.watchers:
            watcher.offer(event)


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: ``errors`` as (field path, message), none when it applied;
    ``needs_restart``: the changes it could not apply without a restart."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
