"""Helpers for a child process the engine runs: its exit status in words, its files written
privately, its end (SIGTERM, then SIGKILL) and its log lines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from pathlib import Path


def exit_reason(code: int | None) -> str:
    """A child's exit status in words: "exit code N" or "killed by SIGNAME"."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def write_private(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` (mode 0600: it may hold a password), replacing it whole."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold a password
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(content)
    tmp.replace(path)


async def terminate(
    proc: asyncio.subprocess.Process, timeout: float, log: logging.Logger, what: str
) -> None:
    """End ``proc`` (named ``what`` in the log): SIGTERM by its PID, SIGKILL after ``timeout``
    seconds; returns once it has exited. Nothing when it already has."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)  # by its PID, never by name
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        log.warning("%s (pid %d) ignored SIGTERM for %.0fs: killing it", what, proc.pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def read_log(
    stream: asyncio.StreamReader, tail: deque[str], log: logging.Logger, prefix: str
) -> None:
    """Log each line of ``stream`` at INFO as ``prefix: line``, keeping the last ones in
    ``tail`` (bounded by its ``maxlen``), until the stream ends."""
    while line := await stream.readline():
        message = line.decode("utf-8", "replace").rstrip()
        if message:
            tail.append(message)
            log.info("%s: %s", prefix, message)
