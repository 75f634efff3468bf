"""How configuration reloads went (SIGHUP, the API, the watcher), for /metrics: plain counters
the daemon updates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class ReloadStats:
    """``failures``: reloads refused (the file failed validation) or not fully applied (the
    core failed, or a change needs a restart); ``last_success``: Unix time (seconds) of the
    last configuration applied whole, the one loaded at start to begin with;
    ``last_successful``: whether the last reload was applied whole (True until the first
    reload: the configuration loaded at start was)."""

    failures: int = 0
    last_success: float = field(default_factory=time.time)
    last_successful: bool = True

    def failed(self) -> None:
        """A reload was refused or not fully applied."""
        self.failures += 1
        self.last_successful = False

    def succeeded(self, now: float | None = None) -> None:
        """A reload was applied whole, at ``now`` (Unix time; default: the clock's)."""
        self.last_success = time.time() if now is None else now
        self.last_successful = True
