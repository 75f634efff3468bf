"""The config watcher (``bgpmux.config_watch``) on a real directory: the kubelet's ``..data``
symlink swap of a ConfigMap volume, a plain file edited in place or replaced by a rename.
Waits are bounded; the reload is a counter."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bgpmux.config import parse_config
from bgpmux.config_watch import ConfigWatcher

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0  # seconds a reload may take to be seen
QUIET = 0.6  # seconds with no further reload that count as "one reload"


class Kubelet:
    """Writes a ConfigMap volume the way the kubelet does (AtomicWriter): a new timestamped
    directory, a ``..data_tmp`` symlink to it renamed over ``..data``, the old one removed;
    the key is a symlink through ``..data``."""

    def __init__(self, volume: Path) -> None:
        self.volume = volume
        self.generation = 0

    def write(self, content: str) -> None:
        self.generation += 1
        stamp = f"..2026_11_30_15_00_{self.generation:02d}.000000001"
        new = self.volume / stamp
        new.mkdir()
        (new / "bgpmux.yaml").write_text(content)
        old = os.readlink(self.volume / "..data") if (self.volume / "..data").exists() else None
        os.symlink(stamp, self.volume / "..data_tmp")
        os.rename(self.volume / "..data_tmp", self.volume / "..data")
        key = self.volume / "bgpmux.yaml"
        if not key.is_symlink():
            os.symlink("..data/bgpmux.yaml", key)
        if old is not None:
            (self.volume / old / "bgpmux.yaml").unlink()
            (self.volume / old).rmdir()


class Reloads:
    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    async def __call__(self) -> None:
        self.count += 1
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
    kubelet = Kubelet(tmp_path)
    kubelet.write("generation: 1\n")
    reloads = Reloads()
    watcher = ConfigWatcher(tmp_path / "bgpmux.yaml", reloads, debounce_ms=100)
    watcher.start()
    try:
        await asyncio.sleep(0.2)  # the watch is set up in a thread
        kubelet.write("generation: 2\n")
        await reloads.wait_for(1)
        kubelet.write("generation: 2\n")  # a swap with the same content: no reload
        (tmp_path / "other-key").write_text("x")  # another key of the ConfigMap
        await reloads.wait_for(1)
        kubelet.write("generation: 3\n")
        await reloads.wait_for(2)
    finally:
        await watcher.stop()
    assert not watcher.running


async def test_a_plain_file_edited_in_place_or_replaced_reloads(tmp_path: Path) -> None:
    path = tmp_path / "bgpmux.yaml"
    path.write_text("generation: 1\n")
    reloads = Reloads()
    watcher = ConfigWatcher(path, reloads, debounce_ms=100)
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
    assert await watcher.check() is False  # same content: not again
    path.unlink()
    assert await watcher.check() is False  # gone (mid-replace): nothing done
