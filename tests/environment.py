"""What a test needs of the machine (root, IPv6): skipped on a developer's machine without it,
a failure in CI (``CI=true``), where the environment must provide it."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether the tests run in CI (``CI`` set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def unavailable(reason: str) -> None:
    """End the calling test: a skip, or in CI a failure naming what is missing. Never returns."""
    if in_ci():
        pytest.fail(f"{reason}: CI must provide it")
    pytest.skip(reason)
