"""``bgpmux run``: start the core, the client listeners, the engine, metrics and the API; stop
cleanly on SIGTERM/SIGINT: peers that keep our routes under graceful restart are closed the
graceful way (no Cease, or RFC 8538's graceful NOTIFICATION), the others get
Cease/Administrative Shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from pathlib import Path

from .api import ApiServer
from .config import Config
from .config_watch import ConfigWatcher
from .core import Core
from .core.port import Engine, UpstreamEvents
from .core.runner import CoreRunner
from .metrics import MetricsServer
from .placement import Placement
from .reloader import Reloader, log_skipped
from .reloads import ReloadStats
from .transport.listeners import ClientServer

log = logging.getLogger("bgpmux")
FATAL_EXIT_DELAY = 1.0  # seconds /healthz fails before bgpmux exits after a fatal error
# Young-generation threshold of the cyclic garbage collector once running (CPython's default is
# 700): route objects are freed by reference counting, so a larger young generation costs
# little memory, and a lone UPDATE rarely pays for a collection on its way through.
GC_YOUNG_THRESHOLD = 20_000


def settle_gc() -> None:
    """After start-up: move every object alive now (modules, configuration, the engine) out of
    the collector's sight (``gc.freeze``), so no later collection walks them again, and raise
    the young-generation threshold to ``GC_YOUNG_THRESHOLD``."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def make_engine(config: Config, events: UpstreamEvents) -> Engine:
    """The engine ``config.engine`` names, reporting to ``events`` (the exabgp one works in
    ``exabgp/`` next to the API socket). Raises SystemExit for an engine not in this build."""
    if config.engine == "native":
        from .engines.native import NativeEngine

        return NativeEngine(config, events)
    if config.engine == "exabgp":
        from .engines.exabgp import ExaBGPEngine

        # next to the API socket: /run/bgpmux/exabgp by default
        return ExaBGPEngine(config, events, config.api.path.parent / "exabgp")
    if config.engine == "gobgp":
        from .engines.gobgp import GoBGPEngine

        return GoBGPEngine(config, events)
    raise SystemExit(f"engine {config.engine!r} is not available in this build")


_skipped_logged: set[str] = set()


_reloads: set[asyncio.Task[object]] = set()


def on_sighup(api: ApiServer) -> None:
    """SIGHUP: ``api.reload`` in a task of its own (its outcome goes to the event stream)."""
    task: asyncio.Task[object] = asyncio.get_running_loop().create_task(api.reload())
    _reloads.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_reloads.discard)


def run(config: Config, config_path: Path | None = None, placement: Placement | None = None) -> int:
    """Run bgpmux until SIGTERM/SIGINT with ``config`` as this node runs it (``placement``:
    how it was placed, its skipped upstreams logged once); SIGHUP reloads ``config_path``
    when given. Returns the exit status: 0 after a clean stop, 1 when the client, metrics or
    API listener could not bind, the core task ended, or a reload failed in the core
    (``reloader``)."""
    if placement is not None:
        log_skipped(placement, _skipped_logged)
    try:
        return asyncio.run(_main(config, config_path))
    except KeyboardInterrupt:
        return 0


async def _main(config: Config, config_path: Path | None) -> int:
    loop = asyncio.get_running_loop()
    core = Core(config, engine=None, now=loop.time())  # type: ignore[arg-type]
    runner = CoreRunner(core)
    engine = make_engine(config, runner)
    core.engine = engine
    core_task = asyncio.create_task(runner.run(), name="core")
    clients = ClientServer(config, runner)
    listen = config.metrics_listen
    reloads = ReloadStats()
    metrics = MetricsServer(str(listen.host), listen.port, core, clients, engine, reloads)
    stop = asyncio.Event()
    failed: list[str] = []

    def fatal(what: str) -> None:
        # /healthz fails and the process exits non-zero, so the kubelet restarts it.
        if stop.is_set():
            return
        metrics.failure = what
        failed.append(what)
        stop.set()

    reloader = None
    watcher: ConfigWatcher | None = None
    if config_path is not None:
        path = Path(config_path)
        # the watcher reloads through the API, as SIGHUP does: the outcome is an API event
        watcher = ConfigWatcher(path, lambda: api.reload())
        reloader = Reloader(runner, clients, path, reloads, watcher, fatal, _skipped_logged)
    tcp = None if config.api.listen_tcp is None else str(config.api.listen_tcp)
    api = ApiServer(config.api.path, runner, clients, engine, reloader, tcp)
    try:
        await clients.start()
        await metrics.start()
        await api.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        core_task.cancel()
        return 1
    metrics.listening = True
    try:
        await engine.start()
    except (OSError, ValueError) as exc:
        # an engine's program missing (MissingProgram) included: /healthz says why, then exit
        metrics.failure = f"cannot start the {engine.name} engine: {exc}"
        log.critical("%s", metrics.failure)
        await asyncio.sleep(FATAL_EXIT_DELAY)
        await asyncio.gather(clients.stop(), api.stop(), metrics.stop())
        core_task.cancel()
        return 1
    log.info(
        "bgpmux running: engine %s, %d upstreams, %d clients",
        engine.name,
        len(config.upstreams),
        len(config.clients),
    )
    settle_gc()

    def vital_ended(task: asyncio.Task[None]) -> None:
        # The core and the engine's supervisors never return on their own: an end, however it
        # came, is fatal.
        if stop.is_set():
            return
        error = None if task.cancelled() else task.exception()
        log.critical("the %s task ended; exiting", task.get_name(), exc_info=error)
        fatal(f"the {task.get_name()} task ended")

    for task in (core_task, *engine.supervisors()):
        task.add_done_callback(vital_ended)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if config_path is not None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup, api)
    if watcher is not None and config.reload.watch:
        watcher.start()
    await stop.wait()
    if failed:
        await asyncio.sleep(FATAL_EXIT_DELAY)  # /healthz says why before the process goes
    log.info("shutting down")
    if watcher is not None:
        await watcher.stop()
    # The core stops first: the sessions closing below must not turn into withdrawals. Each
    # side keeps what it learned from us under graceful restart, and gets it back, complete,
    # from the next bgpmux (RFC 4724 §4.1).
    core_task.cancel()
    await asyncio.gather(core_task, return_exceptions=True)
    await clients.stop()
    await engine.stop()
    await api.stop()
    await metrics.stop()
    return 1 if failed else 0
