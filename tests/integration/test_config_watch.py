"""The config watcher (``bgpmux.config_watch``) on a real directory: the kubelet's ``..data``
symlink swap of a ConfigMap volume, a plain file edited in place or replaced by a rename.
Waits are bounded; the reload is a counter."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bgpmux.config import parse_config
from bgpmux.config_watch import ConfigWatcher, digest
from lab.configmap import ConfigMapVolume

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0  # seconds a reload may take to be seen
QUIET = 0.6  # seconds with no further reload that count as "one reload"


class Reloads:
    """The daemon's reload, as the watcher sees it: each one settles the content read (as an
    applied or invalid file does), unless ``settle`` is False (refused for the environment)."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()
        self.watcher: ConfigWatcher | None = None
        self.settle = True

    async def __call__(self) -> None:
        self.count += 1
        if self.settle and self.watcher is not None:
            self.watcher.last_digest = digest(self.watcher.path)
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` reloads happened (at most ``WAIT`` s), then ``QUIET`` s with no more."""
        async with asyncio.timeout(WAIT):
            while self.count < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.sleep(QUIET)
        assert self.count == count


async def test_the_kubelets_data_swap_reloads_once_per_change(tmp_path: Path) -> None:
    volume = ConfigMapVolume(tmp_path)
    volume.write({"bgpmux.yaml": "generation: 1\n"})
    reloads = Reloads()
    watcher = ConfigWatcher(tmp_path / "bgpmux.yaml", reloads, debounce_ms=100)
    reloads.watcher = watcher
    watcher.start()
    try:
        await asyncio.sleep(0.2)  # the watch is set up in a thread
        volume.write({"bgpmux.yaml": "generation: 2\n"})
        await reloads.wait_for(1)
        # a swap with the same content (another key changed): no reload
        volume.write({"bgpmux.yaml": "generation: 2\n", "other-key": "x"})
        await reloads.wait_for(1)
        volume.write({"bgpmux.yaml": "generation: 3\n"})
        await reloads.wait_for(2)
    finally:
        await watcher.stop()
    assert not watcher.running


async def test_a_plain_file_edited_in_place_or_replaced_reloads(tmp_path: Path) -> None:
    path = tmp_path / "bgpmux.yaml"
    path.write_text("generation: 1\n")
    reloads = Reloads()
    watcher = ConfigWatcher(path, reloads, debounce_ms=100)
    reloads.watcher = watcher
    watcher.start()
    try:
        await asyncio.sleep(0.2)
        with path.open("a") as f:  # in place, as `>>` or an editor without a backup
            f.write("# edited\n")
        await reloads.wait_for(1)
        replacement = tmp_path / ".bgpmux.yaml.swp"
        replacement.write_text("generation: 2\n")
        os.replace(replacement, path)  # as editors and kubectl cp do
        await reloads.wait_for(2)
    finally:
        await watcher.stop()


async def test_reload_watch_false_stops_the_watcher(tmp_path: Path) -> None:
    path = tmp_path / "bgpmux.yaml"
    path.write_text("generation: 1\n")
    reloads = Reloads()
    watcher = ConfigWatcher(path, reloads, debounce_ms=100)
    reloads.watcher = watcher
    watcher.start()
    text = """
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2}
upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]
clients: [{name: calico, listen: "127.0.0.1:1790", asn: 64512, accept: ["10.0.0.0/8"]}]
reload: {watch: false}
"""
    watcher.configure(parse_config(text, env={}))
    async with asyncio.timeout(WAIT):
        while watcher.running:
            await asyncio.sleep(0.05)
    path.write_text("generation: 2\n")
    await asyncio.sleep(QUIET)
    assert reloads.count == 0
    await watcher.stop()


async def test_a_reload_that_raises_does_not_end_the_watcher(tmp_path: Path) -> None:
    path = tmp_path / "bgpmux.yaml"
    path.write_text("generation: 1\n")
    calls = []

    async def broken() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    watcher = ConfigWatcher(path, broken, debounce_ms=100)
    path.write_text("generation: 2\n")
    assert await watcher.check() is True and calls == [1]
    assert await watcher.check() is True and calls == [1, 1]  # nothing settled: again
    watcher.last_digest = digest(path)  # as the daemon's reload does once it settled
    assert await watcher.check() is False  # same content: not again
    path.unlink()
    assert await watcher.check() is False  # gone (mid-replace): nothing done


async def test_a_reload_refused_for_the_environment_is_retried_by_the_poll(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bgpmux.yaml"
    path.write_text("generation: 1\n")
    reloads = Reloads()
    reloads.settle = False  # say, its password file is not there yet
    watcher = ConfigWatcher(path, reloads, debounce_ms=100, poll_seconds=0.3)
    reloads.watcher = watcher
    watcher.start()
    try:
        await asyncio.sleep(0.2)
        path.write_text("generation: 2\n")
        async with asyncio.timeout(WAIT):
            while reloads.count < 2:  # the change, then the poll with no event
                reloads.changed.clear()
                await reloads.changed.wait()
        reloads.settle = True  # now it applies: no more reloads
        count = reloads.count
        await asyncio.sleep(1.0)
        assert reloads.count == count + 1
    finally:
        await watcher.stop()


async def test_stop_passes_on_the_cancellation_of_its_caller(tmp_path: Path) -> None:
    watcher = ConfigWatcher(tmp_path / "bgpmux.yaml", Reloads())
    stuck = asyncio.get_running_loop().create_future()
    watcher._task = asyncio.ensure_future(stuck)  # a watcher slow to end
    stopping = asyncio.create_task(watcher.stop())
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    # the watcher's own cancellation (its 2 s were up) is no error of the caller's
    watcher._task = asyncio.ensure_future(asyncio.get_running_loop().create_future())
    watcher._task.cancel()
    await watcher.stop()
