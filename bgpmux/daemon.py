"""``bgpmux run``: start the core, the client listeners, the engine, metrics and the API; stop
cleanly on SIGTERM/SIGINT (Cease/Administrative Shutdown to every peer)."""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
from pathlib import Path

from .api import ApiServer
from .config import Config
from .core import Core
from .engines.base import Engine
from .metrics import MetricsServer
from .transport.listeners import ClientServer

log = logging.getLogger("bgpmux")


def make_engine(config: Config, core: Core) -> Engine:
    if config.engine == "native":
        from .engines.native import NativeEngine

        return NativeEngine(config, core)
    if config.engine == "exabgp":
        from .engines.exabgp import ExaBGPEngine

        workdir = Path(tempfile.mkdtemp(prefix="bgpmux-exabgp-"))
        return ExaBGPEngine(config, core, workdir)
    raise SystemExit(f"engine {config.engine!r} is not available in this build")


def run(config: Config) -> int:
    try:
        return asyncio.run(_main(config))
    except KeyboardInterrupt:
        return 0


async def _main(config: Config) -> int:
    loop = asyncio.get_running_loop()
    core = Core(config, engine=None, now=loop.time())  # type: ignore[arg-type]
    engine = make_engine(config, core)
    core.engine = engine
    core_task = asyncio.create_task(core.run(), name="core")
    await asyncio.sleep(0)  # let the core create its queue before anything posts to it
    clients = ClientServer(config, core)
    metrics = MetricsServer(
        str(config.metrics.listen.host), config.metrics.listen.port, core, clients, engine
    )
    api = ApiServer(config.api.path, core, clients, engine)
    try:
        await clients.start()
        await metrics.start()
        await api.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        core_task.cancel()
        return 1
    metrics.listening = True
    await engine.start()
    log.info(
        "bgpmux running: engine %s, %d upstreams, %d clients",
        engine.name,
        len(config.upstreams),
        len(config.clients),
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP,
        lambda: log.warning("SIGHUP: live reload is not supported yet; restart to apply changes"),
    )
    await stop.wait()
    log.info("shutting down")
    await clients.stop()
    await engine.stop()
    await api.stop()
    await metrics.stop()
    core_task.cancel()
    return 0
