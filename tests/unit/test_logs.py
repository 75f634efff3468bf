"""``setup_logging``: the level applies to bgpmux's loggers, while watchfiles' "N changes
detected" lines (INFO on every touch of the watched config) stay out below WARNING."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bgpmux.logs import setup_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root, watchfiles = logging.getLogger(), logging.getLogger("watchfiles")
    handlers, level, wf_level = list(root.handlers), root.level, watchfiles.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    watchfiles.setLevel(wf_level)


@pytest.mark.parametrize("level", ["debug", "info"])
def test_watchfiles_info_lines_are_dropped(level: str) -> None:
    out = io.StringIO()
    setup_logging(level, "text", stream=out)
    logging.getLogger("watchfiles.main").info("1 change detected")
    logging.getLogger("watchfiles.main").warning("watch failed")
    logging.getLogger("bgpmux.reload").info("reloaded")
    text = out.getvalue()
    assert "1 change detected" not in text
    assert "watch failed" in text and "reloaded" in text


def test_a_higher_level_still_applies_to_watchfiles() -> None:
    out = io.StringIO()
    setup_logging("error", "text", stream=out)
    logging.getLogger("watchfiles.main").warning("watch failed")
    assert out.getvalue() == ""
