"""Live reload from the mounted file: watch the configuration's directory and reload, as on
SIGHUP, when the file's content changes.

The kubelet updates a ConfigMap volume by writing a new ``..<timestamp>`` directory and
renaming a new ``..data`` symlink over the old one; the file is reached through
``bgpmux.yaml -> ..data/bgpmux.yaml``, so its own path never changes and only the directory
sees an event. The directory is watched (not the file), for events on the file's name or on
``..data`` only (a runtime directory beside it stays quiet), the events of one swap (or one
editor's save, or ``kubectl cp``) are debounced into one check, and the check reloads only
when the file, read through its symlinks, hashes differently from the last one settled
(``last_digest``, set by the daemon's reload: applied, or refused on validation): an
unchanged file (another key of the ConfigMap, a ``touch``) does not reload, and a file that
failed validation is not retried until it changes again, while one refused for the
environment (a password file not there yet, no default gateway, a listen port briefly busy)
is retried at the next check. A quiet directory is checked every ``POLL_SECONDS`` too, for
mounts that give no events (a single bind-mounted file replaced on the host).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from .config import Config

log = logging.getLogger("bgpmux")

DEBOUNCE_MS = 300  # events of one swap or save, grouped into one check
POLL_SECONDS = 30.0  # a quiet directory is checked this often anyway
RETRY_SECONDS = 5.0  # after the directory could not be watched


def digest(path: Path) -> str | None:
    """SHA-256 of ``path``'s content, read through its symlinks; None when it cannot be read
    (in the middle of a replace, or gone)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ConfigWatcher:
    """Calls ``reload`` (the daemon's, as SIGHUP does) whenever the content of ``path``
    differs from ``last_digest`` (SHA-256 hex of the content that settled, which ``reload``
    sets: the watcher never does). ``start`` begins watching, ``stop`` ends it; ``reloads``
    counts the reloads it asked for. ``debounce_ms``: milliseconds of quiet that end a burst
    of events; ``poll_seconds``: how often a quiet directory is checked."""

    def __init__(
        self,
        path: Path,
        reload: Callable[[], Awaitable[object]],
        debounce_ms: int = DEBOUNCE_MS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.path = path
        self.reload = reload
        self.debounce_ms = debounce_ms
        self.poll_seconds = poll_seconds
        self.reloads = 0
        self.last_digest = digest(path)  # what runs: the file as loaded at start
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the watcher is watching."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin watching the file's directory (no-op when watching already)."""
        if self.running:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="config-watch")
        log.info("watching %s for changes (reload.watch)", self.path)

    async def stop(self) -> None:
        """Stop watching and wait (at most 2 s, then cancel) for the watcher to end. Raises
        CancelledError when the task calling it is cancelled (not when the watcher was)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(task, timeout=2.0)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:
            log.exception("the config watcher failed")

    def configure(self, config: Config) -> None:
        """A configuration was applied: watch or stop watching as its ``reload.watch`` says."""
        if config.reload.watch and not self.running:
            self.start()
        elif not config.reload.watch and self.running:
            log.info("no longer watching %s (reload.watch: false)", self.path)
            self._stop.set()

    async def check(self) -> bool:
        """Reload when the file's content differs from the last settled; returns whether it
        did. A reload that fails is logged by the reload itself; this never raises (but
        for cancellation)."""
        new = digest(self.path)
        if new is None or new == self.last_digest:
            return False
        self.reloads += 1
        log.info("%s changed: reloading", self.path)
        try:
            await self.reload()
        except Exception:
            log.exception("reload after %s changed failed", self.path)
        return True

    def _relevant(self, _change: Change, path: str) -> bool:
        return Path(path).name in (self.path.name, "..data")

    async def _run(self) -> None:
        # The directory as configured (not resolved): ConfigMap keys are symlinks in it.
        directory = self.path.parent
        while not self._stop.is_set():
            try:
                async for _changes in awatch(
                    directory,
                    watch_filter=self._relevant,
                    debounce=self.debounce_ms,
                    step=50,
                    stop_event=self._stop,
                    rust_timeout=int(self.poll_seconds * 1000),
                    yield_on_timeout=True,
                    recursive=False,
                ):
                    await self.check()
            except (OSError, RuntimeError) as exc:  # the directory went, or inotify refused
                log.error("cannot watch %s: %s; retrying in %.0f s", directory, exc, RETRY_SECONDS)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RETRY_SECONDS)
