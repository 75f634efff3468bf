"""The ``exabgp`` engine: ExaBGP 5.0 as a child process, driven over its text API.

Layout::

    bgpmux ──unix socket (workdir/api.sock)── exabgp_relay ──stdin/stdout── ExaBGP ──BGP── ToR

bgpmux listens on the socket; ExaBGP runs the relay as its one API process. Commands go down as
``announce attributes … nlri …`` lines (``exabgp_text``), JSON comes back. ExaBGP answers a
ROUTE-REFRESH from its Adj-RIB-Out (``exabgp_rib_out``). When it (or the relay) ends, every
upstream is reported down, ExaBGP is started again with backoff, and the core re-sends its
table as each upstream comes back up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.port import Engine, SupervisorTask, UpstreamEvents, UpstreamStatus
from ..session.facts import SessionFacts
from ..session.states import State
from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.packing import nlri_room, split_too_large
from ..wire.prefix import Prefix
from . import exabgp_peers as peers
from . import exabgp_text as text
from .exabgp_graceful import GracefulSessions, down_reason
from .exabgp_rib_out import RibOutMirror
from .exabgp_session import ExaBGPSession, MessageSeen
from .process import exit_reason, read_log, terminate, write_private
from .programs import EXABGP, find_exabgp

if TYPE_CHECKING:
    from ..config import Config, Upstream

log = logging.getLogger("bgpmux.engine.exabgp")
RELAY_MODULE = "bgpmux.engines.exabgp_relay"
CONNECT_TIMEOUT = 30.0  # ExaBGP start to the relay's connection
STOP_TIMEOUT = 5.0  # SIGTERM to SIGKILL
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
STABLE_RUN = 60.0  # a run this long resets the backoff
LOG_TAIL = 40
READ_LIMIT = 64 * 1024 * 1024  # one JSON line (one UPDATE) is far below this
WRITE_CHUNK = 1024 * 1024
COUNTERS = ("commands_queued", "commands_sent", "bytes_sent", "commands_done",
            "commands_failed", "messages_received", "messages_unparsed")  # fmt: skip
EXABGP_MAX_MESSAGE = 4096  # the engine's sessions negotiate no extended message (RFC 8654)


class ExaBGPEngine(Engine):
    """ExaBGP as the upstreams' speaker; its files and socket live in ``workdir``. Reports to
    ``events``, a graceful end (RFC 4724 §4.2: see ``exabgp_graceful``) with a stale time."""

    name = "exabgp"

    def __init__(self, config: Config, events: UpstreamEvents, workdir: Path) -> None:
        self.config = config
        self.events = events
        self.workdir = Path(workdir)
        self.exabgp = EXABGP
        self.addresses = {u.name: text.peer_address(u) for u in config.upstreams}
        self.names = {address: name for name, address in self.addresses.items()}
        self._retired: set[str] = set()  # addresses of upstreams that moved on reload
        self._reload_gate = peers.ReloadGate()  # one SIGUSR1 while withdrawals go out first
        self.restarts = 0
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._states = dict.fromkeys(self.addresses, State.IDLE)
        self._details = dict.fromkeys(self.addresses, "")
        self._established_at: dict[str, float | None] = dict.fromkeys(self.addresses)
        self._received: dict[str, int] = dict.fromkeys(self.addresses, 0)
        self._families: dict[str, tuple[Family, ...] | None] = dict.fromkeys(self.addresses)
        self._sessions = {name: ExaBGPSession(name) for name in self.addresses}
        self._graceful = GracefulSessions(config.upstreams, tuple(config.node.next_hops()))
        self._queue: deque[str] = deque()
        self.rib_out = RibOutMirror()
        self._wakeup = asyncio.Event()
        self._log_tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._first_start = asyncio.Event()
        self.socket_path = self._pick_socket_path()

    # ------------------------------------------------------------------ files

    def _pick_socket_path(self) -> Path:
        path = self.workdir / "api.sock"
        if len(str(path)) < 100:  # sun_path is 108 bytes
            return path
        return Path(tempfile.mkdtemp(prefix="bgpmux-exabgp-")) / "api.sock"

    @property
    def config_path(self) -> Path:
        """ExaBGP's configuration file, ``workdir/exabgp.conf``."""
        return self.workdir / "exabgp.conf"

    @property
    def env_path(self) -> Path:
        """ExaBGP's environment file, ``workdir/exabgp.env``."""
        return self.workdir / "exabgp.env"

    def relay_command(self) -> list[str]:
        """The argv ExaBGP runs as its API process: the relay, told to stop ExaBGP with us."""
        return [sys.executable, "-m", RELAY_MODULE, str(self.socket_path), "--stop-parent"]

    def environment(self) -> dict[str, str]:
        """ExaBGP's environment: ours without ``exabgp*`` variables, plus ``exabgp_env`` and
        a PYTHONPATH that finds bgpmux for the relay."""
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("exabgp")}
        env.update(text.exabgp_env(self.config))
        # the relay runs `-m bgpmux...` in ExaBGP's environment: make sure it finds us
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        return env

    def command(self) -> list[str]:
        """The argv that starts ExaBGP in the foreground with our env and config files."""
        return [self.exabgp, "--env-file", str(self.env_path), "server", str(self.config_path)]

    def write_config(self) -> Path:
        """Write ExaBGP's configuration (read again each start: a new password is picked up)."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.config_path, text.exabgp_config(self.config, self.relay_command()))
        write_private(self.env_path, text.exabgp_env_file(text.exabgp_env(self.config)))
        return self.config_path

    # ------------------------------------------------------------------ Engine

    async def start(self) -> None:
        """Write the files and start the supervisor; returns after the first attempt to start
        ExaBGP (a failed one is retried with backoff). Raises OSError (MissingProgram: no
        ``exabgp``) or ValueError (a password file unreadable or unquotable)."""
        self.exabgp = find_exabgp(self.exabgp)
        self.write_config()  # a bad password file fails here, loudly, at start
        self._stopping = False
        self._supervisor = asyncio.create_task(self._supervise(), name="exabgp-supervisor")
        await self._first_start.wait()

    def supervisors(self) -> list[SupervisorTask]:
        """The task that runs and restarts ExaBGP."""
        return [self._supervisor] if self._supervisor is not None else []

    async def stop(self) -> None:
        """Drop queued commands, stop supervising, then SIGTERM ExaBGP (SIGKILL after
        ``STOP_TIMEOUT`` seconds) and remove the socket."""
        self._stopping = True
        self._queue.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._terminate()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> dict[str, list[Prefix]]:
        """Queue ``announce`` commands; prefixes that fit in no 4096-octet UPDATE with these
        attributes (``EXABGP_MAX_MESSAGE``) are returned for every upstream, not sent."""
        peers = [self.addresses[name] for name in upstreams]
        if not peers or not prefixes:
            return {}
        # ExaBGP offers no extended message here and silently drops what it cannot fit, so the
        # size is checked before the command is written, the way ExaBGP will encode it.
        room = nlri_room(family, attributes, next_hop, asn4=True, max_len=EXABGP_MAX_MESSAGE)
        fit, too_large = split_too_large(prefixes, room)
        if fit:
            self._send(text.format_announce(peers, family, attributes, next_hop, fit))
            self.rib_out.announced(upstreams, family, fit)
        return dict.fromkeys(upstreams, too_large) if too_large else {}

    def withdraw(
        self, upstreams: Sequence[str], family: Family, prefixes: Sequence[Prefix]
    ) -> None:
        """Queue ``withdraw`` commands for ``prefixes``."""
        peers = [self.addresses[name] for name in upstreams]
        if peers and prefixes:
            self._send(text.format_withdraw(peers, family, prefixes))
            self.rib_out.withdrawn(upstreams, family, prefixes)

    def end_of_rib(self, upstream: str, family: Family) -> None:
        """Queue an ``announce eor`` command (RFC 4724 §2), after ``rib_out``'s withdrawals;
        none for a family the peer's OPEN did not list: ExaBGP would send it all the same (it
        filters UPDATEs by family, not End-of-RIB), and GoBGP resets the session on it."""
        families = self._families[upstream]  # None: no OPEN seen, not known
        if families is None or family in families:
            self._send(self.rib_out.end_of_rib(upstream, self.addresses[upstream], family))

    def reset_upstream(self, upstream: Upstream) -> None:
        """Make ExaBGP end the session and dial ``upstream`` with its new settings
        (``exabgp_peers.reset``: a reload, or a teardown with Cease/Other Configuration
        Change). Raises OSError or ValueError, with nothing changed, when the new
        configuration cannot be written."""
        peers.reset(self, upstream)

    def add_upstream(self, upstream: Upstream) -> None:
        """Have ExaBGP dial ``upstream`` too (``exabgp_peers.add``: a reload, the other
        sessions left alone). Raises OSError or ValueError, with nothing changed, when the
        new configuration cannot be written."""
        peers.add(self, upstream)

    def remove_upstream(self, name: str) -> None:
        """Have ExaBGP end the session of ``name`` and forget it (``exabgp_peers.remove``: its
        routes withdrawn, then a reload, which closes it without a NOTIFICATION). Raises
        OSError or ValueError, with nothing changed, when the new configuration cannot be
        written."""
        peers.remove(self, name)

    def status(self) -> list[UpstreamStatus]:
        """Each upstream's state as ExaBGP last reported it, the engine's counters, its facts and
        the message counters ExaBGP reports (no UPDATEs sent: see ``exabgp_session``)."""
        running = self._proc is not None and self._proc.returncode is None
        now = time.monotonic()  # the loop's clock
        out = []
        for upstream in self.config.upstreams:
            name = upstream.name
            session, state = self._sessions[name], self._states[name]
            local = text.local_address(self.config, upstream) or ""
            identity = SessionFacts(self.addresses[name], upstream.asn, local)
            out.append(UpstreamStatus(
                name, state, self._established_at[name],
                self._details[name] if running else "exabgp is not running",
                {"prefix_updates_received": self._received[name],
                 "engine_restarts": self.restarts, **self.counters},
                session.facts(identity, state is State.ESTABLISHED, now),
                session.stats.snapshot(),
            ))  # fmt: skip
        return out

    def _send(self, lines: list[str]) -> None:
        if self._stopping:
            return
        self._queue.extend(lines)
        self.counters["commands_queued"] += len(lines)
        self._wakeup.set()

    # ------------------------------------------------------------------ supervision

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN
        while not self._stopping:
            started = loop.time()
            try:
                reason = await self._run_once()
            except OSError as e:
                reason = f"could not start: {e}"
            except Exception as e:  # a bug here costs one run of ExaBGP, not the supervisor
                log.exception("supervising ExaBGP failed")
                reason = f"supervision failed: {type(e).__name__}: {e}"
            finally:
                self._first_start.set()
                await self._terminate()
                self._all_down()
            if self._stopping:
                return
            if loop.time() - started > STABLE_RUN:
                delay = BACKOFF_MIN
            tail = "\n".join(self._log_tail)
            log.error(
                "ExaBGP stopped (%s); restarting in %.0fs. Its last log lines:\n%s",
                reason,
                delay,
                tail or "(none)",
            )
            self.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _run_once(self) -> str:
        """Start ExaBGP and serve it until it or the relay ends; returns why it ended."""
        self._queue.clear()  # for the old process; the core re-sends once each is up again
        self._graceful.new_run()
        self._log_tail.clear()
        self.write_config()
        connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        connected = asyncio.get_running_loop().create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connected.done():
                writer.close()  # one relay only
            else:
                connected.set_result((reader, writer))

        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        server = await asyncio.start_unix_server(on_connect, self.socket_path, limit=READ_LIMIT)
        os.chmod(self.socket_path, 0o600)
        tasks: list[asyncio.Future[Any]] = []
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self.environment(),
                cwd=self.workdir,
                start_new_session=True,  # our signals are ours; ExaBGP is stopped explicitly
            )  # fmt: skip
            self._proc = proc
            log.info("ExaBGP started (pid %d)", proc.pid)
            self._first_start.set()
            assert proc.stdout is not None
            tasks.append(asyncio.create_task(read_log(proc.stdout, self._log_tail, log, "exabgp")))
            exited: asyncio.Future[Any] = asyncio.create_task(proc.wait())
            tasks.append(exited)
            first: set[asyncio.Future[Any]] = {exited, connected}
            done, _ = await asyncio.wait(
                first, timeout=CONNECT_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            if exited in done:
                return f"{exit_reason(proc.returncode)} before its API process connected"
            if not connected.done():
                return f"its API process did not connect within {CONNECT_TIMEOUT:.0f}s"
            reader, writer = connected.result()
            server.close()  # no further connections
            reading: asyncio.Future[Any] = asyncio.create_task(self._read_api(reader))
            writing: asyncio.Future[Any] = asyncio.create_task(self._write_api(writer))
            tasks += [reading, writing]
            running: set[asyncio.Future[Any]] = {exited, reading, writing}
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            writer.close()
            if exited not in done:
                # the relay sees ExaBGP die first: give its exit status a moment to arrive
                await asyncio.wait({exited}, timeout=1.0)
            if exited.done():
                return exit_reason(proc.returncode)
            for task in done:
                if task.exception() is not None:
                    return f"API connection failed: {task.exception()!r}"
            return "the API connection closed"
        finally:
            server.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not connected.done():
                connected.cancel()

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await terminate(proc, STOP_TIMEOUT, log, "ExaBGP")

    def _all_down(self) -> None:
        self.rib_out.clear()
        now = time.monotonic()  # the loop's clock
        for name in self.addresses:
            was_up = self._states[name] is State.ESTABLISHED
            self._states[name] = State.IDLE
            self._established_at[name] = None
            self._sessions[name].forget()
            if was_up:
                stale_time, families = self._graceful.ended(name)  # ExaBGP itself ended
                self._sessions[name].ended(stale_time, now)
                self.events.down(name, stale_time, families)

    # ------------------------------------------------------------------ I/O

    async def _write_api(self, writer: asyncio.StreamWriter) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            chunk: list[str] = []
            size = 0
            while queue and size < WRITE_CHUNK:
                line = queue.popleft()
                chunk.append(line)
                size += len(line) + 1
            data = ("\n".join(chunk) + "\n").encode("ascii")
            writer.write(data)
            self.counters["commands_sent"] += len(chunk)
            self.counters["bytes_sent"] += len(data)
            await writer.drain()

    async def _read_api(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        while line := await reader.readline():
            if not line.endswith(b"\n"):
                return  # the relay went away mid-line
            word = line.strip()
            if word == b"done":
                self.counters["commands_done"] += 1
                continue
            if word == b"error":
                self.counters["commands_failed"] += 1
                log.warning(
                    "ExaBGP refused a command (%d so far; its log says which)",
                    self.counters["commands_failed"],
                )
                continue
            if not word:
                continue
            self.counters["messages_received"] += 1
            try:
                message = text.parse_message(word)
            except (ValueError, KeyError, TypeError) as e:
                self.counters["messages_unparsed"] += 1
                log.warning("cannot use a message from ExaBGP (%s): %.300s", e, word)
                continue
            if message is not None:
                self._handle(message, loop.time())

    def _handle(self, message: text.Message, now: float) -> None:
        events = self.events
        if isinstance(message, text.Shutdown):
            log.info("ExaBGP is shutting down")
            return
        name = self.names.get(message.peer)
        if name is None and message.peer in self._retired:
            return  # the session before a reset (reset_upstream)
        if name is None:
            log.warning("ExaBGP reported an unknown neighbor %s", message.peer)
            return
        session = self._sessions[name]
        if isinstance(message, MessageSeen):
            return session.seen(message, time.time())
        if isinstance(message, text.OpenReceived):  # comes before "up"
            session.seen(MessageSeen(message.peer, "OPEN", False, message.open), time.time())
            self._families[name] = message.families  # what it can carry (we send only ours)
            return self._graceful.opened(name, message.graceful_restart)
        if isinstance(message, text.StateChange):
            was_up = self._states[name] is State.ESTABLISHED
            if message.state == "up":
                self.rib_out.session_up(name)
                self._states[name] = State.ESTABLISHED
                self._established_at[name] = now
                self._details[name] = ""
                session.up()
                events.established(name, self._graceful.established(name), self._families[name])
            elif message.state == "down":
                self._states[name] = State.IDLE
                self._established_at[name] = None
                self._details[name] = message.reason
                session.down(message.reason, time.time())
                if was_up:
                    log.warning("session down: %s", message.reason, extra={"peer": name})
                    ended = self._graceful.ended(name, down_reason(message.reason))
                    session.ended(ended[0], now)
                    events.down(name, *ended)
            elif message.state == "connected":
                self._states[name] = State.OPEN_SENT
            return
        refresh = isinstance(message, text.RouteRefreshReceived)
        session.received("ROUTE_REFRESH" if refresh else "UPDATE")
        if self._states[name] is not State.ESTABLISHED:
            return
        if isinstance(message, text.EndOfRib):
            events.end_of_rib(name, message.family)
            return
        if isinstance(message, text.RouteRefreshReceived):  # BoRR, EoRR: ExaBGP answers requests
            events.route_refresh(name, message.family, message.subtype)
            return
        for family, prefixes in message.withdrawn:
            self._received[name] += len(prefixes)
            events.withdrawn(name, family, prefixes)
        for family, attrs, next_hop, prefixes in message.announced:
            self._received[name] += len(prefixes)
            events.routes(name, family, attrs, next_hop, prefixes)
