"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import ClientEstablished, UpstreamEstablished
from bgpmux.engines.fake import FakeEngine

from .core_helpers import CONFIG, FakeLink


@pytest.fixture
def setup() -> tuple[Core, FakeEngine, FakeLink, FakeLink]:
    config = parse_config(CONFIG, env={})
    engine = FakeEngine()
    core = Core(config, engine, now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    calico, metallb = FakeLink(), FakeLink()
    core.handle(ClientEstablished("calico", calico, False), 0.0)
    core.handle(ClientEstablished("metallb", metallb, False), 0.0)
    core.flush(0.0)
    return core, engine, calico, metallb
