"""The core's asyncio runner: events in order, requests answered, failures contained, the timer
fed from the core's deadline."""

from __future__ import annotations

import asyncio

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import ClientEstablished, ClientUpdate, PeersQuery, UpstreamEstablished
from bgpmux.core.runner import CoreRunner
from bgpmux.engines.fake import FakeEngine
from bgpmux.wire import IPV4_UNICAST
from tests.unit.core_helpers import CONFIG, FakeLink, announce


async def started() -> tuple[CoreRunner, FakeEngine, asyncio.Task[None]]:
    loop = asyncio.get_running_loop()
    config = parse_config(CONFIG.replace("initial_sync_timeout: 30", "initial_sync_timeout: 0.2"))
    engine = FakeEngine()
    runner = CoreRunner(Core(config, engine, loop.time()))
    return runner, engine, asyncio.create_task(runner.run())


async def test_events_flow_and_requests_get_answers() -> None:
    runner, engine, task = await started()
    try:
        runner.established("tor")
        runner.submit(ClientEstablished("calico", FakeLink(), False))
        runner.submit(ClientUpdate("calico", announce("10.244.1.0/26")))
        counts = await runner.request(PeersQuery())
        assert isinstance(counts, dict) and counts["calico"]["prefixes"] == 1
        await asyncio.sleep(0)  # the flush after the batch
        assert "10.244.1.0/26" in engine.table(IPV4_UNICAST)
    finally:
        task.cancel()


async def test_a_failing_event_costs_only_itself() -> None:
    runner, _engine, task = await started()
    try:
        with pytest.raises(KeyError):
            await runner.request(UpstreamEstablished("no-such-upstream"))
        counts = await runner.request(PeersQuery())
        assert isinstance(counts, dict) and not task.done()
    finally:
        task.cancel()


async def test_the_timer_fires_at_the_core_deadline() -> None:
    runner, engine, task = await started()
    try:
        runner.established("tor")
        for _ in range(100):  # initial_sync_timeout 0.2 s: End-of-RIB without the clients
            await asyncio.sleep(0.02)
            if engine.eors:
                break
        assert engine.eor_sent("tor", IPV4_UNICAST)
    finally:
        task.cancel()
