"""The core's asyncio glue: one queue, the one clock, the one timer.

Sessions, engines and the API submit typed events; each is stamped with the loop's clock as it
is queued, so the core sees when it happened, not when its turn came. The runner feeds them to
the core one at a time, up to ``BATCH_LIMIT`` in a row, then flushes: changes that arrive
together leave together, batched by attribute set. Back-pressure: while more than
``QUEUE_HIGH_WATER`` events wait, ``congested`` says so and readers pause until
``when_drained``.

A handler that raises is logged with its traceback and costs only that event (a request gets
the exception); the runner and the core go on.
"""

from __future__ import annotations

import asyncio
import logging
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
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._drain_waiters: list[Callable[[], None]] = []
        self._timer_fired = False

    # ------------------------------------------------------------------ submitting

    def submit(self, event: Event) -> None:
        """Queue ``event`` for the core (never blocks)."""
        self._queue.put_nowait((event, self._loop.time(), None))

    async def request(self, event: Event) -> object:
        """Queue ``event`` and wait for the core's result (for ``Reconfigure``, ``RoutesQuery``,
        ``PeersQuery``; None for other events). Raises what the core's handler raised."""
        future: asyncio.Future[object] = self._loop.create_future()
        self._queue.put_nowait((event, self._loop.time(), future))
        return await future

    def congested(self) -> bool:
        """True while more than ``QUEUE_HIGH_WATER`` events wait for the core."""
        return self._queue.qsize() > QUEUE_HIGH_WATER

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, after a flush that leaves the queue empty (sessions resume
        reading)."""
        self._drain_waiters.append(callback)

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
        loop = self._loop
        queue = self._queue
        timer: asyncio.TimerHandle | None = None
        armed_for: float | None = None
        while True:
            deadline = self.core.get_timer()
            if deadline != armed_for or self._timer_fired:
                self._timer_fired = False
                if timer is not None:
                    timer.cancel()
                timer = loop.call_at(deadline, self._on_timer) if deadline is not None else None
                armed_for = deadline
            self._dispatch(await queue.get())
            for _ in range(BATCH_LIMIT):
                if queue.empty():
                    break
                self._dispatch(queue.get_nowait())
            try:
                self.core.flush(loop.time())
            except Exception:
                log.exception("the core's flush failed")
            if self._drain_waiters and queue.empty():
                waiters, self._drain_waiters = self._drain_waiters, []
                for resume in waiters:
                    resume()

    def _on_timer(self) -> None:
        self._timer_fired = True
        self._queue.put_nowait((None, self._loop.time(), None))

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
