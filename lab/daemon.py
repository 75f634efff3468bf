"""What every daemon driver shares: a rendered config, one tracked process, its log."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from .model import Announce, Neighbor, Route
from .netns import Host, end_process

STOP_TIMEOUT_SECONDS = 5.0


def require_binary(path: str) -> str:
    """The absolute path of a daemon binary, or a clear failure (never a skip)."""
    found = shutil.which(path)
    if found is None:
        raise RuntimeError(
            f"required daemon binary {path!r} not found: install it (see DESIGN.md,"
            " 'Real components and how they start')"
        )
    return found


class Daemon:
    """Base for drivers: subclasses render `config_text()` and build `command()`."""

    config_name = "daemon.conf"

    def __init__(
        self,
        host: Host,
        name: str,
        asn: int,
        router_id: str,
        neighbors: list[Neighbor],
        announce: list[Announce] | None = None,
    ) -> None:
        self.host = host
        self.name = name
        self.asn = asn
        self.router_id = router_id
        self.neighbors = list(neighbors)
        self.announce = list(announce or [])
        self.dir = host.workdir / name
        self.dir.mkdir(exist_ok=True)
        self.config_path = self.dir / self.config_name
        self.log_path = self.dir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r} in {self.host.netns})"

    # Subclass hooks
    def config_text(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def extra_logs(self) -> list[Path]:
        return []

    # Queries every driver answers
    def neighbor_state(self, address: str) -> str:
        """The session's FSM state as RFC 4271 spells it ("Established", "Active", ...)."""
        raise NotImplementedError

    def routes_of(self, family: str) -> dict[str, Route]:
        """Best route per prefix for "ipv4" or "ipv6"."""
        raise NotImplementedError

    # Lifecycle
    def start(self) -> Daemon:
        if self.running:
            raise RuntimeError(f"{self} already running")
        self.config_path.write_text(self.config_text())
        log_name = str(self.log_path.relative_to(self.host.workdir))
        self.proc = self.host.spawn(self.command(), log_name, env=self.env())
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Graceful SIGTERM; SIGKILL if it has not exited within `timeout`."""
        if self.proc is not None:
            end_process(self.proc, term_grace=timeout)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.host.kill(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_SECONDS)

    def log_tail(self, n: int = 40) -> str:
        chunks = []
        for path in (self.log_path, *self.extra_logs()):
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-n:]
                chunks.append(f"[{path.name}]\n" + "\n".join(lines))
        if self.proc is not None and self.proc.poll() is not None:
            chunks.append(f"[process exited with {self.proc.returncode}]")
        return "\n".join(chunks) or "(no log yet)"
