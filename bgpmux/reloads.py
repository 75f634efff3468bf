"""How configuration reloads went (SIGHUP), for /metrics: plain counters the daemon updates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class ReloadStats:
    """``failures``: reloads refused (the file failed validation) or not fully applied (the
    core failed, or a change needs a restart); ``last_success``: Unix time (seconds) of the
    last configuration applied whole, the one loaded at start to begin with."""

    failures: int = 0
    last_success: float = field(default_factory=time.time)

    def failed(self) -> None:
        """A reload was refused or not fully applied."""
        self.failures += 1

    def succeeded(self, now: float | None = None) -> None:
        """A reload was applied whole, at ``now`` (Unix time; default: the clock's)."""
        self.last_success = time.time() if now is None else now
