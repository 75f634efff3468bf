"""The live reload (SIGHUP, the API's Reload, the config watcher), one at a time.

A reload reads and checks the file again and places it on this node (default gateways
resolved again), computes the plan once (``core.reload.plan``, of what the core runs), binds
the listeners of added clients (``transport.client_set.prepare``), has the core apply the
configuration (a ``Reconfigure`` request carrying the plan), then the listeners follow (the
removed clients' sessions end) and the log settings apply.

How it ends:
- refused, the old configuration running on untouched: the file fails validation, a
  password file or default gateway is missing, a new listen address cannot be bound;
- applied, possibly with changes that need a restart (``needs_restart``);
- fatal: the core raised while applying it. That is a bug that left the core half changed,
  so it is handled like a vital task ending: logged with its traceback, ``fatal`` is called
  (the daemon fails /healthz and exits 1; the kubelet restarts it, and graceful restart keeps
  the ToR's routes meanwhile).

The config watcher learns the file's content only when it settled: applied, or refused for
what it says (validation). A reload refused for the environment is retried by the watcher's
poll, the file unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from .api import ReloadOutcome
from .config import Config, ConfigError, load_config
from .config_watch import ConfigWatcher, digest
from .core import reload
from .core.events import Reconfigure
from .core.runner import CoreRunner
from .gateway import default_gateway
from .logs import setup_logging
from .placement import Placement, place
from .reloads import ReloadStats
from .secrets import check_files
from .transport import client_set
from .transport.client_set import ListenError
from .transport.listeners import ClientServer

log = logging.getLogger("bgpmux")


def log_skipped(placement: Placement, logged: set[str]) -> None:
    """Log each upstream that does not apply on this node, once (``logged``: names already
    logged, updated)."""
    for placed in placement.skipped:
        if placed.name not in logged:
            logged.add(placed.name)
            log.info("not used on this node: %s", placed.why, extra={"peer": placed.name})
    logged.intersection_update(p.name for p in placement.skipped)


class Reloader:
    """Reloads ``path`` into the core (through ``runner``) and the listeners (``clients``)
    when called; returns the ``ReloadOutcome``: each error with its field path, or the
    changes that need a restart. ``stats`` counts the reloads that failed (refused, or not
    applied whole) and when the last one succeeded; ``watcher`` learns the content settled
    and each configuration applied (``reload.watch``); ``fatal(words)`` is called when the
    core raised while applying one. ``skipped_logged``: the upstreams already logged as not
    used on this node (shared with the start)."""

    def __init__(
        self,
        runner: CoreRunner,
        clients: ClientServer,
        path: Path,
        stats: ReloadStats,
        watcher: ConfigWatcher | None,
        fatal: Callable[[str], None],
        skipped_logged: set[str] | None = None,
    ) -> None:
        self.runner = runner
        self.clients = clients
        self.path = path
        self.stats = stats
        self.watcher = watcher
        self.fatal = fatal
        self.skipped_logged = set() if skipped_logged is None else skipped_logged
        self.lock = asyncio.Lock()  # one reload at a time: SIGHUP, the API, the watcher

    async def __call__(self) -> ReloadOutcome:
        async with self.lock:
            read = digest(self.path)
            outcome, config, settled = await self._reload()
            if settled and self.watcher is not None:
                self.watcher.last_digest = read
            if self.watcher is not None and config is not None:
                self.watcher.configure(config)
            return outcome

    def _refused(self, errors: list[tuple[str, str]]) -> ReloadOutcome:
        self.stats.failed()
        return ReloadOutcome(errors=errors)

    async def _reload(self) -> tuple[ReloadOutcome, Config | None, bool]:
        """The outcome, the configuration when it was applied, and whether the file's content
        settled (applied, or refused on validation)."""
        path = self.path
        try:
            config = load_config(path)
        except ConfigError as exc:
            log.error("reload: %s not reloaded:\n%s", path, exc)
            return self._refused(list(exc.errors)), None, True
        try:
            check_files(config)  # every upstream's, as at start
            placement = place(config, default_gateway)
        except ConfigError as exc:  # a file or a gateway missing: the watcher tries again
            log.error("reload: %s not reloaded (for now):\n%s", path, exc)
            return self._refused(list(exc.errors)), None, False
        log_skipped(placement, self.skipped_logged)
        config = placement.config
        plan = reload.plan(self.runner.core.config, config)
        try:
            prepared = await client_set.prepare(self.clients, config, plan)
        except ListenError as exc:
            log.error("reload: %s not reloaded: %s", path, exc)
            return self._refused([(exc.field, exc.message)]), None, False
        try:
            pending = await self.runner.request(Reconfigure(config, plan))
        except Exception as exc:
            # The core changed part of its state before raising: no way back but a restart.
            log.critical("reload: %s half applied in the core; exiting", path, exc_info=exc)
            self.fatal(f"a reload failed in the core: {exc}")
            outcome = self._refused([("", f"could not be applied: {exc}; bgpmux exits")])
            return outcome, None, False
        assert isinstance(pending, list)
        client_set.reloaded(self.clients, prepared, config)
        setup_logging(config.log.level, config.log.format)
        if pending:
            self.stats.failed()  # the running configuration is not the file's
            log.warning(
                "reload: %s reloaded; these changes need a restart: %s", path, "; ".join(pending)
            )
        else:
            self.stats.succeeded()
            log.info("reload: %s reloaded", path)
        return ReloadOutcome(needs_restart=pending), config, True
