"""The daemon's live reload (``bgpmux.reloader``) with a stand-in core: how each way a reload
ends leaves the listeners, the log settings and the config watcher. No socket is opened (the
listeners are never started) and no daemon runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bgpmux.config import parse_config
from bgpmux.config_watch import ConfigWatcher, digest
from bgpmux.core.events import Event, Reconfigure
from bgpmux.reloader import Reloader
from bgpmux.reloads import ReloadStats
from bgpmux.transport.listeners import ClientServer

from .core_helpers import CONFIG

WITHOUT_METALLB = CONFIG[: CONFIG.index("  - {name: metallb")] + "log: {level: debug}\n"


class StandInCore:
    """The core as the reloader sees it: its running configuration and the ``Reconfigure``
    requests, answered with ``[]`` or by raising ``raises``."""

    def __init__(self, text: str, raises: Exception | None = None) -> None:
        self.core = SimpleNamespace(config=parse_config(text, env={}))
        self.raises = raises
        self.requests: list[Event] = []

    async def request(self, event: Event) -> object:
        self.requests.append(event)
        if self.raises is not None:
            raise self.raises
        return []


class Setup:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, core: StandInCore):
        self.path = tmp_path / "bgpmux.yaml"
        self.path.write_text(CONFIG)
        self.core = core
        self.server = ClientServer(core.core.config, core)  # type: ignore[arg-type]
        self.stats = ReloadStats()
        self.watcher = ConfigWatcher(self.path, self.never)
        self.fatal: list[str] = []
        self.logging: list[tuple[Any, ...]] = []
        monkeypatch.setattr("bgpmux.reloader.setup_logging", lambda *a: self.logging.append(a))
        self.reload = Reloader(
            core,  # type: ignore[arg-type]
            self.server,
            self.path,
            self.stats,
            self.watcher,
            self.fatal.append,
        )

    async def never(self) -> None:
        raise AssertionError("the watcher is not started here")


async def test_a_core_that_raises_is_fatal_and_nothing_is_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Setup(tmp_path, monkeypatch, StandInCore(CONFIG, KeyError("metallb")))
    s.path.write_text(WITHOUT_METALLB)
    before = s.watcher.last_digest
    outcome = await s.reload()
    assert len(s.fatal) == 1 and "a reload failed in the core" in s.fatal[0]
    assert outcome.errors and "bgpmux exits" in outcome.errors[0][1]
    assert s.stats.failures == 1
    # The core may have dropped metallb already: the listeners keep it detached (no abandon,
    # which would have reattached it, its UPDATEs then unknown to the core).
    assert s.server.by_listen["127.0.0.1:1791"] == []
    assert s.logging == []  # the new log settings did not apply
    assert s.watcher.last_digest == before


async def test_the_plan_is_computed_once_and_carried_to_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Setup(tmp_path, monkeypatch, StandInCore(CONFIG))
    s.path.write_text(WITHOUT_METALLB)
    outcome = await s.reload()
    assert outcome.errors == [] and outcome.needs_restart == [] and s.fatal == []
    (request,) = s.core.requests
    assert isinstance(request, Reconfigure) and request.plan is not None
    assert request.plan.clients_removed == ["metallb"]
    assert [c.name for c in s.server.config.clients] == ["calico"]
    assert s.logging == [("debug", "text")]  # after the core took it
    assert s.watcher.last_digest == digest(s.path)


async def test_the_watcher_learns_the_content_only_once_it_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Setup(tmp_path, monkeypatch, StandInCore(CONFIG))
    s.path.write_text("node: {asn: nope}\n")
    assert (await s.reload()).errors
    assert s.watcher.last_digest == digest(s.path)  # invalid: not tried again until changed
    key = tmp_path / "tor.key"
    with_key = CONFIG.replace(
        "{name: tor, address: 10.0.0.1, asn: 65000}",
        f"{{name: tor, address: 10.0.0.1, asn: 65000, password_file: {key}}}",
    )
    s.path.write_text(with_key)
    outcome = await s.reload()
    assert outcome.errors and outcome.errors[0][0] == "upstreams[0].password_file"
    assert s.watcher.last_digest != digest(s.path)  # its key not there yet: tried again
    assert s.core.requests == [] and s.stats.failures == 2
    key.write_text("secret\n")
    assert (await s.reload()).errors == []
    assert s.watcher.last_digest == digest(s.path)
    assert len(s.core.requests) == 1 and s.fatal == []
