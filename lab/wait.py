"""Bounded polling for interop tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")


class HasLogTail(Protocol):
    name: str

    def log_tail(self, n: int = 40) -> str: ...


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    interval: float = 0.25,
    what: str = "condition",
    logs_of: Iterable[HasLogTail] = (),
) -> T:
    """Poll `predicate` until it returns something truthy; return that value.

    Exceptions raised by the predicate count as "not yet" (daemons refuse queries while starting)
    and the last one is reported on timeout, together with the log tails of `logs_of`.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    attempts = 0
    while True:
        attempts += 1
        try:
            value = predicate()
        except Exception as error:  # any failure means "not ready yet"
            last_error = error
        else:
            if value:
                return value
            last_value = value
            last_error = None
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    lines = [f"timed out after {timeout:.1f}s ({attempts} attempts) waiting for {what}"]
    if last_error is not None:
        lines.append(f"last error: {type(last_error).__name__}: {last_error}")
    else:
        lines.append(f"last value: {last_value!r}")
    for daemon in logs_of:
        lines.append(f"--- log tail of {daemon.name} ---")
        lines.append(daemon.log_tail())
    raise AssertionError("\n".join(lines))
