"""Helpers for a child process the engine runs: its exit status in words, and its files
written privately."""

from __future__ import annotations

import os
import signal
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
