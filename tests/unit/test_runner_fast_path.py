"""The runner's fast path (``CoreRunner.handle_pending``): a read's events handled and flushed
in the same loop iteration when the core task is idle, in the queue's order, never from inside
a batch; the timer, drain waiters and requests keep working. An asyncio loop without I/O."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import ClientEstablished, ClientUpdate, PeersQuery
from bgpmux.core.runner import CoreRunner
from bgpmux.engines.fake import FakeEngine
from bgpmux.wire import IPV4_UNICAST
from bgpmux.wire.attributes import PathAttributes
from bgpmux.wire.constants import Family
from bgpmux.wire.prefix import Prefix, prefix_to_str
from tests.unit.core_helpers import CONFIG, FakeLink, announce


class HookedEngine(FakeEngine):
    """A ``FakeEngine`` that runs ``on_announce`` (once) inside its first announce."""

    def __init__(self) -> None:
        super().__init__()
        self.on_announce: list[object] = []

    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> dict[str, list[Prefix]]:
        result = super().announce(upstreams, family, attributes, next_hop, prefixes)
        while self.on_announce:
            hook = self.on_announce.pop(0)
            assert callable(hook)
            hook()
        return result


async def idle_runner() -> tuple[CoreRunner, HookedEngine, asyncio.Task[None]]:
    """A runner whose task waits for its queue, with the ToR and calico up."""
    loop = asyncio.get_running_loop()
    engine = HookedEngine()
    runner = CoreRunner(Core(parse_config(CONFIG), engine, loop.time()))
    task = asyncio.create_task(runner.run())
    runner.established("tor")
    runner.submit(ClientEstablished("calico", FakeLink(), False))
    await runner.request(PeersQuery())  # answered in the batch: the task then waits again
    return runner, engine, task


def announced(engine: FakeEngine) -> list[str]:
    return [prefix_to_str(c.family, p) for c in engine.announces for p in c.prefixes]


async def test_a_read_is_handled_and_flushed_before_the_loop_turns() -> None:
    runner, engine, task = await idle_runner()
    try:
        runner.submit(ClientUpdate("calico", announce("10.244.1.0/26")))
        runner.submit(ClientUpdate("calico", announce("10.244.2.0/26")))
        runner.handle_pending()
        # no await since: both went out, in one batch (one announce, one attribute set)
        assert "10.244.1.0/26" in engine.table(IPV4_UNICAST)
        assert "10.244.2.0/26" in engine.table(IPV4_UNICAST)
        assert len(engine.announces) == 1 and len(engine.announces[0].prefixes) == 2
        assert not runner._queue
    finally:
        task.cancel()


async def test_without_handle_pending_the_task_handles_it() -> None:
    runner, engine, task = await idle_runner()
    try:
        runner.submit(ClientUpdate("calico", announce("10.244.1.0/26")))
        assert not engine.announces
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert "10.244.1.0/26" in engine.table(IPV4_UNICAST)
    finally:
        task.cancel()


async def test_not_before_the_task_runs() -> None:
    loop = asyncio.get_running_loop()
    engine = HookedEngine()
    runner = CoreRunner(Core(parse_config(CONFIG), engine, loop.time()))
    runner.established("tor")
    runner.handle_pending()  # no task waiting yet: nothing is handled here
    assert len(runner._queue) == 1
    task = asyncio.create_task(runner.run())
    try:
        runner.submit(ClientEstablished("calico", FakeLink(), False))
        counts = await runner.request(PeersQuery())
        assert isinstance(counts, dict) and "calico" in counts
    finally:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    runner.submit(ClientUpdate("calico", announce("10.244.1.0/26")))
    runner.handle_pending()  # the task was cancelled: not idle any more
    assert not engine.announces


async def test_a_submit_during_the_flush_waits_its_turn() -> None:
    runner, engine, task = await idle_runner()
    seen_inside: list[list[str]] = []

    def during_flush() -> None:
        # as a session ending while the flush writes to it would: submit, then try the fast
        # path from inside the batch
        runner.submit(ClientUpdate("calico", announce("10.244.9.0/26", local_pref=200)))
        runner.handle_pending()
        seen_inside.append(announced(engine))

    engine.on_announce.append(during_flush)
    try:
        runner.submit(ClientUpdate("calico", announce("10.244.1.0/26")))
        runner.handle_pending()
        assert seen_inside == [["10.244.1.0/26"]]  # not handled from inside the batch
        assert announced(engine) == ["10.244.1.0/26"]
        assert len(runner._queue) == 1
        runner.submit(ClientUpdate("calico", announce("10.244.3.0/26")))
        runner.handle_pending()  # still idle: the queued one first, then this one, one batch
        assert announced(engine) == ["10.244.1.0/26", "10.244.9.0/26", "10.244.3.0/26"]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(announced(engine)) == 3  # the task, woken meanwhile, finds nothing to do
    finally:
        task.cancel()


async def test_requests_queued_before_keep_their_place() -> None:
    runner, engine, task = await idle_runner()
    try:
        answer = asyncio.ensure_future(runner.request(PeersQuery()))
        await asyncio.sleep(0)  # the request is queued, the task woken but not yet run
        runner.submit(ClientUpdate("calico", announce("10.244.1.0/26")))
        runner.handle_pending()
        counts = await answer
        # the query came first in the queue: it saw no route of calico yet
        assert isinstance(counts, dict) and counts["calico"]["prefixes"] == 0
        assert "10.244.1.0/26" in engine.table(IPV4_UNICAST)
    finally:
        task.cancel()


async def test_drain_waiters_and_the_timer_after_a_fast_batch() -> None:
    runner, _engine, task = await idle_runner()
    resumed: list[str] = []
    try:
        runner.when_drained(lambda: resumed.append("calico"))
        runner.submit(ClientUpdate("calico", announce("10.244.1.0/26")))
        runner.handle_pending()
        assert resumed == ["calico"]
        assert runner._armed_for == runner.core.get_timer()
        assert runner._timer is not None  # the initial sync's deadline
    finally:
        task.cancel()


async def test_submit_read_relies_on_handle_pending() -> None:
    """A reader's events (``submit_read``) schedule nothing: its ``handle_pending`` handles
    them, or, from inside a batch, wakes the task to take them in turn."""
    runner, engine, task = await idle_runner()

    def during_flush() -> None:
        runner.submit_read(ClientUpdate("calico", announce("10.244.9.0/26", local_pref=200)))
        runner.handle_pending()

    try:
        runner.submit_read(ClientUpdate("calico", announce("10.244.1.0/26")))
        assert not runner._wake_scheduled
        engine.on_announce.append(during_flush)
        runner.handle_pending()
        assert announced(engine) == ["10.244.1.0/26"]
        assert len(runner._queue) == 1 and runner._wake_scheduled
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert announced(engine) == ["10.244.1.0/26", "10.244.9.0/26"]
        assert not runner._queue
    finally:
        task.cancel()


async def test_a_core_failure_in_handle_pending_stays_in_the_runner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A drain waiter that raises is logged with its traceback, not raised into the reader
    that called ``handle_pending``; the runner is not left busy and handles the next read."""
    runner, engine, task = await idle_runner()

    def broken() -> None:
        raise RuntimeError("waiter broke")

    try:
        runner.when_drained(broken)
        runner.submit_read(ClientUpdate("calico", announce("10.244.1.0/26")))
        with caplog.at_level(logging.ERROR, logger="bgpmux.core"):
            runner.handle_pending()  # does not raise
        assert any(r.exc_info for r in caplog.records if "waiter broke" in str(r.exc_info))
        assert not runner._busy
        runner.submit_read(ClientUpdate("calico", announce("10.244.2.0/26")))
        runner.handle_pending()
        assert announced(engine) == ["10.244.1.0/26", "10.244.2.0/26"]
    finally:
        task.cancel()


async def test_a_read_longer_than_one_batch_is_finished_by_the_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bgpmux.core.runner.BATCH_LIMIT", 2)
    runner, engine, task = await idle_runner()
    try:
        for i in range(1, 7):
            runner.submit_read(ClientUpdate("calico", announce(f"10.244.{i}.0/26")))
        runner.handle_pending()  # one batch: the first three
        assert len(runner._queue) == 3
        for _ in range(4):
            await asyncio.sleep(0)
        assert not runner._queue
        assert {f"10.244.{i}.0/26" for i in range(1, 7)} <= set(engine.table(IPV4_UNICAST))
    finally:
        task.cancel()
