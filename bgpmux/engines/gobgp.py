"""The ``gobgp`` engine: gobgpd (3.10) as the upstreams' speaker, driven over its gRPC API
(package ``apipb``, service ``GobgpApi``; stubs generated at build time, see
``scripts/gobgp_stubs.py``).

Layout::

    bgpmux ──gRPC (gobgp.api, loopback)── gobgpd ──BGP── ToR

bgpmux starts gobgpd from PATH (or, with ``gobgp.external``, drives one already running),
configures it with ``StartBgp`` (no BGP listener) and one ``AddPeer`` per upstream, puts the
core's table in gobgpd's global table with ``AddPathStream`` (``gobgp_rib`` keeps what is
there) and reads sessions and received routes from ``WatchEvent``.

gobgpd 3.10's habits, and what the engine does about them:

- it sends End-of-RIB right after the table a new session starts with: a peer is added only
  once the core has sent its whole table and End-of-RIB for every family (``end_of_rib``);
- ``WatchEvent`` reports no End-of-RIB: ``ListPeer`` is polled for each family's
  ``end_of_rib_received`` (``gobgp_peers.end_of_rib_received``);
- on SIGTERM it sends Cease/Peer De-configured to every peer, so the ToR drops our routes at
  once: it is stopped with SIGKILL (the sessions end without a NOTIFICATION, and a ToR that
  negotiated graceful restart keeps our routes), after a Cease/Administrative Shutdown
  (``ShutdownPeer``) to each upstream that did not negotiate graceful restart;
- it listens on port 179 (Calico's BIRD's) unless ``listen_port`` is -1; its API binds every
  address and pprof binds :6060 unless told: ``--api-hosts`` is ``gobgp.api`` (loopback,
  enforced by the config) and ``--pprof-disable``.

The core sees an upstream as up while gobgpd runs and has (or is about to have) its peer:
what the core sends goes to gobgpd's global table whatever the ToR session does. When the
ToR session ends, the engine reports it down (with the ToR's restart time under graceful
restart) and asks for the table again at once (``table_first``: no session yet), so the core
handles the ToR's routes as for any engine and gobgpd's global table stays current for the
ToR's return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2

from ..core.port import Engine, SupervisorTask, UpstreamEvents, UpstreamStatus
from ..session.graceful import stale_window
from ..session.states import DownReason, State
from ..wire.attributes import PathAttributes
from ..wire.capabilities import GracefulRestart
from ..wire.constants import Family
from ..wire.packing import nlri_room, split_too_large
from ..wire.prefix import Prefix
from . import gobgp_peers as peers
from . import gobgp_reload as reload
from .gobgp_api import gobgp_pb2, gobgp_pb2_grpc
from .gobgp_events import WatchReader
from .gobgp_paths import add_path_stream_request, for_gobgp, path_template, withdrawal
from .gobgp_rib import GlobalTable
from .process import exit_reason
from .programs import GOBGPD, find_gobgpd

if TYPE_CHECKING:
    from ..config import Config, Upstream

log = logging.getLogger("bgpmux.engine.gobgp")
logging.getLogger("grpc").setLevel(logging.INFO)  # its DEBUG lines come on every call

CONNECT_TIMEOUT = 15.0  # gobgpd start to its API answering
CALL_TIMEOUT = 10.0  # one unary API call
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
STABLE_RUN = 60.0  # a run this long resets the backoff
POLL_INTERVAL = 1.0  # seconds between ListPeer polls (End-of-RIB, counters)
REQUEST_BYTES = 1 << 20  # one AddPathStreamRequest (gRPC's default limit is 4 MiB)
MAX_MESSAGE = 4096  # gobgpd's sessions negotiate no extended message (RFC 8654)
LOG_TAIL = 40
ADD_PATH_STREAM = "/apipb.GobgpApi/AddPathStream"


@dataclass
class _Peer:
    config: Upstream
    password: str
    state: State = State.IDLE
    established_at: float | None = None
    snapshot: gobgp_pb2.Peer | None = None  # the last ListPeer answer
    capability: GracefulRestart | None = None  # the ToR's, on the session now up
    notifications: tuple[int, int] = (0, 0)  # NOTIFICATIONs sent, received when it came up
    core_up: bool = False  # reported established to the core
    core_eor: set[Family] = field(default_factory=set)
    added: bool = False  # AddPeer queued or done
    eor_reported: set[Family] = field(default_factory=set)
    last_error: str = ""
    last_error_at: float | None = None

    @property
    def address(self) -> str:
        return peers.peer_address(self.config)


class GoBGPEngine(Engine):
    """gobgpd as the upstreams' speaker, reporting to ``events``; ``gobgpd``: the program
    (looked up in PATH)."""

    name = "gobgp"

    def __init__(self, config: Config, events: UpstreamEvents, gobgpd: str = GOBGPD) -> None:
        self.config = config
        self.events = events
        self.gobgpd = gobgpd
        self.external = config.gobgp.external
        api = config.gobgp.api
        host = f"[{api.host}]" if api.host.version == 6 else str(api.host)
        self.target = f"{host}:{api.port}"
        self.families = tuple(config.node.next_hops())
        self.peers = {u.name: _Peer(u, "") for u in config.upstreams}
        self.table = GlobalTable()
        self.restarts = 0
        self.counters = dict.fromkeys(
            ("paths_sent", "requests_sent", "paths_received", "paths_unusable"), 0
        )
        self._ops: deque[tuple[str, Any]] = deque()
        self._wakeup = asyncio.Event()
        self._log_tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._proc: asyncio.subprocess.Process | None = None
        self._stub: gobgp_pb2_grpc.GobgpApiStub | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._first_start = asyncio.Event()
        self._stopping = False
        self._detail = "gobgpd not started"

    def by_address(self, address: str) -> str | None:
        """The upstream whose peer gobgpd knows by ``address``."""
        for name, peer in self.peers.items():
            if peer.address == address:
                return name
        return None

    def command(self) -> list[str]:
        """gobgpd's argv: no config file (everything goes over the API), the API on
        ``gobgp.api`` only, no pprof, plain log lines; under ``setpriv --pdeathsig KILL``
        where there is one, so that gobgpd dies with bgpmux (kill -9 included) the way a
        graceful restart wants it: no NOTIFICATION."""
        wrapper = shutil.which("setpriv")
        prefix = [wrapper, "--pdeathsig", "KILL"] if wrapper else []
        return [
            *prefix, self.gobgpd, "--api-hosts", self.target, "--pprof-disable",
            "--log-plain", "--log-level", "info",
        ]  # fmt: skip

    # ------------------------------------------------------------------ Engine

    async def start(self) -> None:
        """Read the TCP-MD5 keys and start the supervisor; returns after the first attempt to
        reach gobgpd (retried with backoff). Raises MissingProgram (an OSError) when gobgpd
        is not in PATH (unless ``gobgp.external``), OSError or ValueError for a key that
        cannot be read."""
        if not self.external:
            self.gobgpd = find_gobgpd(self.gobgpd)
        for peer in self.peers.values():
            peer.password = peers.read_password(peer.config)
        self._stopping = False
        self._supervisor = asyncio.create_task(self._supervise(), name="gobgp-supervisor")
        await self._first_start.wait()

    def supervisors(self) -> list[SupervisorTask]:
        """The task that runs (and restarts) gobgpd and the API calls."""
        return [self._supervisor] if self._supervisor is not None else []

    async def stop(self) -> None:
        """Send Cease/Administrative Shutdown to the upstreams that did not negotiate graceful
        restart, then SIGKILL gobgpd (SIGTERM would send Cease/Peer De-configured to all). An
        external gobgpd is left as it is, peers and routes included."""
        self._stopping = True
        self._ops.clear()
        stub = self._stub
        if stub is not None and not self.external:
            for peer in self.peers.values():
                if peer.state is State.ESTABLISHED and peer.capability is None:
                    request = gobgp_pb2.ShutdownPeerRequest(
                        address=peer.address, communication="bgpmux shutting down"
                    )
                    with contextlib.suppress(grpc.RpcError, TimeoutError):
                        await stub.ShutdownPeer(request, timeout=1.0)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._kill()

    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> dict[str, list[Prefix]]:
        """Put ``prefixes`` in gobgpd's global table (those not already there so); those that
        fit in no 4096-octet UPDATE (``MAX_MESSAGE``) are returned for every upstream."""
        names = [n for n in upstreams if self.peers[n].core_up]
        if not names or not prefixes or self._stopping:
            return {}
        room = nlri_room(family, attributes, next_hop, asn4=True, max_len=MAX_MESSAGE)
        fit, too_large = split_too_large(prefixes, room)
        ebgp = self.peers[names[0]].config.asn != self.config.node.asn
        given = for_gobgp(attributes, self.config.node.asn, ebgp)
        changed = self.table.announce(family, (given, next_hop), fit)
        if changed:
            template = path_template(family, given, next_hop)
            self._queue("paths", [template.path(p) for p in changed])
        return dict.fromkeys(names, too_large) if too_large else {}

    def withdraw(
        self, upstreams: Sequence[str], family: Family, prefixes: Sequence[Prefix]
    ) -> None:
        """Withdraw ``prefixes`` from gobgpd's global table."""
        if any(self.peers[n].core_up for n in upstreams) and not self._stopping:
            gone = self.table.withdraw(family, prefixes)
            if gone:
                self._queue("paths", [withdrawal(family, p) for p in gone])

    def end_of_rib(self, upstream: str, family: Family) -> None:
        """The core's table of ``family`` is in: withdraw what it did not send again, and once
        every family's is, add the upstream's peer (gobgpd then sends the table and its own
        End-of-RIB, RFC 4724 §2)."""
        peer = self.peers[upstream]
        if not peer.core_up or self._stopping:
            return
        stale = self.table.end_of_rib(family)
        if stale:
            self._queue("paths", [withdrawal(family, p) for p in stale])
        peer.core_eor.add(family)
        if not peer.added and peer.core_eor.issuperset(self.families):
            peer.added = True
            self._queue("add", upstream)

    def reset_upstream(self, upstream: Upstream) -> None:
        """Delete the upstream's peer in gobgpd (Cease/Peer De-configured) and add it again
        with the new settings once the core has sent its table (``gobgp_reload.reset``).
        Raises OSError or ValueError, with nothing changed, for a key that cannot be read."""
        reload.reset(self, upstream)

    def add_upstream(self, upstream: Upstream) -> None:
        """A new peer, added once the core has sent its table (``gobgp_reload.add``); the
        others are left alone. Raises OSError or ValueError, with nothing changed, for a key
        that cannot be read."""
        reload.add(self, upstream)

    def remove_upstream(self, name: str) -> None:
        """Delete the upstream's peer in gobgpd, which sends Cease/Peer De-configured (RFC
        4486 §3), and forget it (``gobgp_reload.remove``)."""
        reload.remove(self, name)

    def status(self) -> list[UpstreamStatus]:
        """Each upstream's session as gobgpd last reported it (``ListPeer``): state, facts,
        message counters."""
        out = []
        for name, peer in self.peers.items():
            snap = peer.snapshot
            detail = peer.last_error if self._stub is not None else self._detail
            out.append(
                UpstreamStatus(
                    name=name,
                    state=peer.state,
                    established_at=peer.established_at,
                    detail=detail,
                    stats={"engine_restarts": self.restarts, **self.counters},
                    facts=peers.facts(snap, self.families, peer.last_error, peer.last_error_at)
                    if snap is not None
                    else peers.configured_facts(self.config, peer.config, peer.last_error),
                    messages=peers.messages(snap) if snap is not None else None,
                )
            )
        return out

    def _queue(self, kind: str, item: Any) -> None:
        self._ops.append((kind, item))
        self._wakeup.set()

    def _core_up(self, name: str) -> None:
        """Ask the core for the upstream's table before its session opens (``table_first``):
        it sends the table, then End-of-RIB, and the peer is added (``end_of_rib``)."""
        peer = self.peers.get(name)
        if peer is None or self._stopping or peer.core_up:
            return
        peer.core_up = True
        peer.core_eor.clear()
        self.events.established(name, None, None, table_first=True)

    # ------------------------------------------------------------------ supervision

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN
        while not self._stopping:
            started = loop.time()
            try:
                reason = await self._run_once()
            except (OSError, grpc.RpcError, TimeoutError) as e:
                reason = f"could not drive gobgpd: {e!r}"
            except Exception as e:  # a bug here costs one run of gobgpd, not the supervisor
                log.exception("supervising gobgpd failed")
                reason = f"supervision failed: {type(e).__name__}: {e}"
            finally:
                self._first_start.set()
                self._stub = None
                if not self.external:
                    await self._kill()
                self._all_down()
            if self._stopping:
                return
            self._detail = reason
            if loop.time() - started > STABLE_RUN:
                delay = BACKOFF_MIN
            tail = "\n".join(self._log_tail) or "(none)"
            log.error("gobgpd lost (%s); again in %.0fs. Its last log lines:\n%s", reason,
                      delay, tail)  # fmt: skip
            self.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _run_once(self) -> str:
        """Start gobgpd (unless external), set it up and serve it until it or the API ends;
        returns why it ended."""
        self._ops.clear()  # for the gobgpd before; the core sends everything again
        self._log_tail.clear()
        tasks: list[asyncio.Future[Any]] = []  # cancelled at the end
        ends: list[asyncio.Future[Any]] = []  # any of these ending ends the run
        proc = None
        if not self.external:
            proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # our signals are ours; gobgpd is stopped explicitly
            )
            self._proc = proc
            log.info("gobgpd started (pid %d), API on %s", proc.pid, self.target)
            assert proc.stdout is not None
            tasks.append(asyncio.create_task(self._read_log(proc.stdout)))
            ends.append(asyncio.create_task(proc.wait()))
            tasks += ends
        channel = grpc.aio.insecure_channel(self.target)
        try:
            ready = asyncio.ensure_future(channel.channel_ready())
            done, _ = await asyncio.wait(
                {ready, *ends}, timeout=CONNECT_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            if ready not in done:
                ready.cancel()
                if proc is not None and proc.returncode is not None:
                    return f"{exit_reason(proc.returncode)} before its API answered"
                return f"its API on {self.target} did not answer within {CONNECT_TIMEOUT:.0f}s"
            stub = gobgp_pb2_grpc.GobgpApiStub(channel)  # type: ignore[no-untyped-call]
            self._first_start.set()
            if (problem := await self._set_up(stub)) is not None:
                return problem
            self._stub = stub
            reader = WatchReader(self, stub)
            ends += [
                asyncio.create_task(reader.run(), name="gobgp-watch"),
                asyncio.create_task(self._write(stub, channel), name="gobgp-write"),
                asyncio.create_task(reader.poll(POLL_INTERVAL), name="gobgp-poll"),
            ]
            tasks += ends[-3:]
            for name in self.peers:
                self._core_up(name)
            done, _ = await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            if proc is not None and proc.returncode is not None:
                return exit_reason(proc.returncode)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    return f"API call failed: {task.exception()!r}"
            return "the API stream ended"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await channel.close()

    async def _set_up(self, stub: gobgp_pb2_grpc.GobgpApiStub) -> str | None:
        """StartBgp (where gobgpd has no AS yet), and what an external gobgpd already has:
        our peers (kept) and the routes of its global table (adopted, see ``GlobalTable``).
        Returns a problem in words, None when all is well."""
        answer = await stub.GetBgp(gobgp_pb2.GetBgpRequest(), timeout=CALL_TIMEOUT)
        running = getattr(answer, "global")  # a Python keyword
        node = self.config.node
        self.table.clear()
        if running.asn == 0:
            request = gobgp_pb2.StartBgpRequest(**{"global": peers.global_config(self.config)})
            await stub.StartBgp(request, timeout=CALL_TIMEOUT)
            log.info("gobgpd configured: AS %d, router id %s, no BGP listener", node.asn,
                     node.router_id)  # fmt: skip
        elif running.asn != node.asn or running.router_id != str(node.router_id):
            return (
                f"gobgpd runs AS {running.asn} router id {running.router_id}, not the "
                f"node's AS {node.asn} router id {node.router_id}"
            )
        await peers.install_export_policy(stub, CALL_TIMEOUT)
        existing = {
            r.peer.conf.neighbor_address
            async for r in stub.ListPeer(gobgp_pb2.ListPeerRequest(), timeout=CALL_TIMEOUT)
        }
        for peer in self.peers.values():
            peer.added = peer.address in existing
            peer.core_eor.clear()
        if existing or running.asn:
            for family in self.families:
                found = await peers.local_prefixes(stub, family, CALL_TIMEOUT)
                self.table.adopt(family, found)
        self.table.resync()
        return None

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)  # by its PID; SIGTERM would Cease every peer
        await proc.wait()

    def _all_down(self) -> None:
        """gobgpd (or the API) is gone: every upstream the core saw up is down, with the
        ToR's restart time where its session was up under graceful restart (RFC 4724 §4.2:
        it ended without a NOTIFICATION)."""
        for name, peer in self.peers.items():
            was_up = peer.state is State.ESTABLISHED
            capability = peer.capability if was_up else None
            peer.state, peer.established_at, peer.snapshot = State.IDLE, None, None
            peer.capability, peer.added = None, False
            if peer.core_up:
                peer.core_up = False
                stale, families = stale_window(
                    capability, self.families, DownReason.CONNECTION_LOST
                )
                self.events.down(name, stale, families or None)

    # ------------------------------------------------------------------ I/O

    async def _read_log(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            message = line.decode("utf-8", "replace").rstrip()
            if message:
                self._log_tail.append(message)
                log.debug("gobgpd: %s", message)

    async def _write(self, stub: gobgp_pb2_grpc.GobgpApiStub, channel: grpc.aio.Channel) -> None:
        """Send the queued operations in order: paths in bulk (``AddPathStream``, each call
        done once gobgpd has them all in its table), peers added and deleted."""
        add_paths = channel.stream_unary(
            ADD_PATH_STREAM,
            request_serializer=None,
            response_deserializer=empty_pb2.Empty.FromString,
        )
        ops = self._ops
        while True:
            if not ops:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            kind, item = ops[0]
            if kind == "paths":
                requests, batch, size = [], [], 0
                while ops and ops[0][0] == "paths":
                    for path in ops.popleft()[1]:
                        batch.append(path)
                        size += len(path) + 8
                        if size >= REQUEST_BYTES:
                            requests.append(add_path_stream_request(batch))
                            self.counters["paths_sent"] += len(batch)
                            batch, size = [], 0
                if batch:
                    requests.append(add_path_stream_request(batch))
                    self.counters["paths_sent"] += len(batch)
                await add_paths(iter(requests))
                self.counters["requests_sent"] += len(requests)
                continue
            ops.popleft()
            if kind == "add":
                if (peer := self.peers.get(item)) is None:
                    continue  # removed on reload meanwhile
                config = peers.peer_config(self.config, peer.config, peer.password)
                await stub.AddPeer(gobgp_pb2.AddPeerRequest(peer=config), timeout=CALL_TIMEOUT)
                log.info("peer added to gobgpd", extra={"peer": item})
            elif kind == "delete":
                request = gobgp_pb2.DeletePeerRequest(address=item)
                with contextlib.suppress(grpc.RpcError):  # not there: nothing to delete
                    await stub.DeletePeer(request, timeout=CALL_TIMEOUT)
