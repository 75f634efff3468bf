"""The core's asyncio glue: one queue, the one clock, the one timer.

Sessions, engines and the API submit typed events; each is stamped with the loop's clock as it
is queued, so the core sees when it happened, not when its turn came. The runner feeds them to
the core one at a time, up to ``BATCH_LIMIT`` in a row, then flushes: changes that arrive
together leave together, batched by attribute set. Back-pressure: while more than
``QUEUE_HIGH_WATER`` events wait, ``congested`` says so and readers pause until
``when_drained``.

The fast path: a reader that has submitted everything one read gave it calls
``handle_pending``; when the runner is idle (waiting for its queue, in no batch) the queued
events are handled and flushed right there, the same batch the core task would have run one
loop iteration later. A lone UPDATE thus goes out within the loop iteration that read it.
Anything submitted while a batch runs (a session that ends while the flush writes, say) is
queued behind it: the order is the queue's either way.

A handler that raises is logged with its traceback and costs only that event (a request gets
the exception); the runner and the core go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence

from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.prefix import Prefix
from .events import (
    Event,
    UpstreamDown,
    UpstreamEndOfRib,
    UpstreamEstablished,
    UpstreamRouteRefresh,
    UpstreamRoutes,
    UpstreamWithdrawn,
)
from .routing import Core

log = logging.getLogger("bgpmux.core")

QUEUE_HIGH_WATER = 512  # queued events above which sessions stop reading until the core catches up
BATCH_LIMIT = 10_000  # events handled in a row before a flush

# (event, when it was submitted, the future of a request); event None: the timer fired
_Item = tuple[Event | None, float, "asyncio.Future[object] | None"]


class CoreRunner:
    """Runs one ``Core`` on the running event loop; also the ``UpstreamEvents`` that engines
    report to. Create it inside the loop; ``run`` is the core's task."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._loop = asyncio.get_running_loop()
        # A plain deque: the task, while idle, waits on ``_wakeup``, which ``_wake`` sets only
        # if something is still queued by then (``handle_pending`` usually took it already).
        self._queue: deque[_Item] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._wake_scheduled = False
        self._drain_waiters: list[Callable[[], None]] = []
        self._timer_fired = False
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._idle = False  # the core task waits for its queue
        self._busy = False  # a batch is being handled (by the task or ``handle_pending``)

    # ------------------------------------------------------------------ submitting

    def submit(self, event: Event) -> None:
        """Queue ``event`` for the core (never blocks)."""
        self._put((event, self._loop.time(), None))

    def submit_read(self, event: Event) -> None:
        """``submit`` for a reader that calls ``handle_pending`` once its read's events are all
        in: that call handles them (or wakes the task), so none is scheduled here."""
        self._queue.append((event, self._loop.time(), None))

    async def request(self, event: Event) -> object:
        """Queue ``event`` and wait for the core's result (for ``Reconfigure``, ``RoutesQuery``,
        ``PeersQuery``; None for other events). Raises what the core's handler raised."""
        future: asyncio.Future[object] = self._loop.create_future()
        self._put((event, self._loop.time(), future))
        return await future

    def congested(self) -> bool:
        """True while more than ``QUEUE_HIGH_WATER`` events wait for the core."""
        return len(self._queue) > QUEUE_HIGH_WATER

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, after a flush that leaves the queue empty (sessions resume
        reading)."""
        self._drain_waiters.append(callback)

    def handle_pending(self) -> None:
        """Handle and flush what is queued now, when the core task is idle; otherwise (a batch
        under way, the task not waiting) do nothing: the task gets to it in order. Readers
        call it once they have submitted what one read gave them."""
        if not self._queue:
            return
        if not self._idle or self._busy:
            self._schedule_wake()  # for what ``submit_read`` queued: the task takes it in turn
            return
        self._busy = True
        try:
            self._batch(self._queue.popleft())
            self._arm_timer()
            if self._queue:  # more than one batch's worth: the task takes the rest
                self._schedule_wake()
        except Exception:
            # Never into the reader that called: its connection would stop feeding its session.
            log.exception("the core failed handling a read's events")
        finally:
            self._busy = False

    # ------------------------------------------------------------------ UpstreamEvents

    def established(
        self,
        upstream: str,
        stale_kept: frozenset[Family] | None = None,
        families: Sequence[Family] | None = None,
        table_first: bool = False,
    ) -> None:
        """Submit ``UpstreamEstablished``."""
        negotiated = None if families is None else tuple(families)
        self.submit(UpstreamEstablished(upstream, stale_kept, negotiated, table_first))

    def down(
        self,
        upstream: str,
        stale_time: float | None = None,
        stale_families: frozenset[Family] | None = None,
    ) -> None:
        """Submit ``UpstreamDown`` (``stale_time`` in seconds)."""
        self.submit(UpstreamDown(upstream, stale_time, stale_families))

    def routes(
        self,
        upstream: str,
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> None:
        """Submit ``UpstreamRoutes``."""
        self.submit(UpstreamRoutes(upstream, family, attributes, next_hop, prefixes))

    def withdrawn(self, upstream: str, family: Family, prefixes: Sequence[Prefix]) -> None:
        """Submit ``UpstreamWithdrawn``."""
        self.submit(UpstreamWithdrawn(upstream, family, prefixes))

    def end_of_rib(self, upstream: str, family: Family) -> None:
        """Submit ``UpstreamEndOfRib``."""
        self.submit(UpstreamEndOfRib(upstream, family))

    def route_refresh(self, upstream: str, family: Family, subtype: int = 0) -> None:
        """Submit ``UpstreamRouteRefresh``."""
        self.submit(UpstreamRouteRefresh(upstream, family, subtype))

    # ------------------------------------------------------------------ the task

    async def run(self) -> None:
        """The core's task: handles queued events and the core's timer, flushing after each
        batch; never returns on its own (cancel it to stop)."""
        queue = self._queue
        while True:
            self._arm_timer()
            if not queue:
                self._idle = True
                self._wakeup = self._loop.create_future()
                try:
                    await self._wakeup
                finally:
                    self._idle = False
                    self._wakeup = None
                if not queue:  # ``handle_pending`` took it in the meantime
                    continue
            self._busy = True
            try:
                self._batch(queue.popleft())
            finally:
                self._busy = False

    def _put(self, item: _Item) -> None:
        self._queue.append(item)
        self._schedule_wake()

    def _schedule_wake(self) -> None:
        if self._idle and not self._wake_scheduled:
            self._wake_scheduled = True
            self._loop.call_soon(self._wake)

    def _wake(self) -> None:
        """Wake the idle task if something is still queued (a reader's ``handle_pending`` has
        usually handled it within the same loop iteration)."""
        self._wake_scheduled = False
        wakeup = self._wakeup
        if self._queue and wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _batch(self, first: _Item) -> None:
        """Handle ``first`` and up to ``BATCH_LIMIT`` more queued items, then flush."""
        queue = self._queue
        self._dispatch(first)
        for _ in range(BATCH_LIMIT):
            if not queue:
                break
            self._dispatch(queue.popleft())
        try:
            self.core.flush(self._loop.time())
        except Exception:
            log.exception("the core's flush failed")
        if self._drain_waiters and not queue:
            waiters, self._drain_waiters = self._drain_waiters, []
            for resume in waiters:
                resume()

    def _arm_timer(self) -> None:
        """(Re)arm the loop's timer at the core's deadline when it moved or fired."""
        deadline = self.core.get_timer()
        if deadline != self._armed_for or self._timer_fired:
            self._timer_fired = False
            if self._timer is not None:
                self._timer.cancel()
            self._timer = (
                self._loop.call_at(deadline, self._on_timer) if deadline is not None else None
            )
            self._armed_for = deadline

    def _on_timer(self) -> None:
        self._timer_fired = True
        self._put((None, self._loop.time(), None))

    def _dispatch(self, item: _Item) -> None:
        event, now, future = item
        try:
            if event is None:
                self.core.handle_timer(now)
                return
            result = self.core.handle(event, now)
        except Exception as exc:
            log.exception("the core failed handling %s", type(event).__name__)
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)
