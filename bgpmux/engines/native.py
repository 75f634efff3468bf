"""The native engine: bgpmux's own sessions, in the active role, to every upstream.

Each upstream gets a task that dials (from the node address, with TCP-MD5 when configured),
runs one ``Session`` per TCP connection through the same glue as the clients, and waits
``CONNECT_RETRY`` seconds between attempts. UPDATEs for the upstream are packed here from the
core's batches, with the options that session negotiated.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
from collections.abc import Sequence
from pathlib import Path

from ..config import Config, Upstream
from ..core import Core
from ..logs import peer_logger
from ..session import SessionConfig, State, cease_shutdown
from ..session.events import SessionDown, SessionEstablished, UpdateReceived
from ..transport.connection import BGPConnection
from ..transport.md5 import set_md5_key
from ..wire.attributes import PathAttributes
from ..wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family
from ..wire.packing import Packed, pack_announce, pack_end_of_rib, pack_withdraw
from ..wire.prefix import Prefix
from .base import Engine, UpstreamStatus

CONNECT_RETRY = 5.0
CONNECT_TIMEOUT = 10.0


class _Upstream:
    def __init__(self, config: Upstream) -> None:
        self.config = config
        self.conn: BGPConnection | None = None
        self.established_at: float | None = None
        self.task: asyncio.Task[None] | None = None
        self.detail = ""
        self.log = peer_logger(config.name, "upstream")

    @property
    def ready(self) -> bool:
        conn = self.conn
        return conn is not None and not conn.closed and conn.session.state is State.ESTABLISHED


class NativeEngine(Engine):
    name = "native"

    def __init__(self, config: Config, core: Core) -> None:
        self.config = config
        self.core = core
        self.upstreams = {u.name: _Upstream(u) for u in config.upstreams}
        self.families = (IPV4_UNICAST, IPV6_UNICAST) if config.node.address_v6 else (IPV4_UNICAST,)
        self._stopping = False

    async def start(self) -> None:
        for upstream in self.upstreams.values():
            upstream.task = asyncio.create_task(
                self._run(upstream), name=f"upstream-{upstream.config.name}"
            )

    async def stop(self) -> None:
        self._stopping = True
        for upstream in self.upstreams.values():
            if upstream.conn is not None and not upstream.conn.closed:
                upstream.conn.shutdown(cease_shutdown("bgpmux shutting down"))
        for _ in range(20):
            if all(u.conn is None or u.conn.closed for u in self.upstreams.values()):
                break
            await asyncio.sleep(0.05)
        for upstream in self.upstreams.values():
            if upstream.task is not None:
                upstream.task.cancel()

    # ------------------------------------------------------------------ dialling

    def _session_config(self, upstream: Upstream) -> SessionConfig:
        node = self.config.node
        return SessionConfig(
            local_asn=node.asn,
            router_id=str(node.router_id),
            peer_asn=upstream.asn,
            peer_name=upstream.name,
            passive=True,  # the session is per connection; this task does the dialling
            hold_time=upstream.hold_time,
            families=self.families,
            graceful_restart_time=upstream.graceful_restart or None,
            route_refresh=True,
            extended_message=False,
        )

    def _source_address(self, upstream: Upstream) -> str:
        node = self.config.node
        if ipaddress.ip_address(str(upstream.address)).version == 6:
            return str(node.address_v6)
        return str(node.address)

    async def _run(self, upstream: _Upstream) -> None:
        cfg = upstream.config
        loop = asyncio.get_running_loop()
        key = Path(cfg.password_file).read_bytes().strip() if cfg.password_file else None
        while not self._stopping:
            family = (
                socket.AF_INET6
                if ipaddress.ip_address(str(cfg.address)).version == 6
                else socket.AF_INET
            )
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if key:
                    set_md5_key(sock, str(cfg.address), key)
                sock.bind((self._source_address(cfg), 0))
                await asyncio.wait_for(
                    loop.sock_connect(sock, (str(cfg.address), cfg.port)), CONNECT_TIMEOUT
                )
                conn = BGPConnection(self._session_config(cfg), self._on_event, upstream.log)
                upstream.conn = conn
                await loop.create_connection(functools.partial(_same, conn), sock=sock)
            except (TimeoutError, OSError) as exc:
                sock.close()
                upstream.detail = f"connect failed: {exc}"
                upstream.log.debug("connect to %s:%d failed: %s", cfg.address, cfg.port, exc)
                await asyncio.sleep(CONNECT_RETRY)
                continue
            while not conn.closed:
                await asyncio.sleep(0.2)
            await asyncio.sleep(CONNECT_RETRY if not self._stopping else 0)

    def _on_event(self, conn: BGPConnection, event: object) -> None:
        name = conn.session.config.peer_name
        upstream = self.upstreams[name]
        core = self.core
        now = conn.loop.time()
        if isinstance(event, UpdateReceived):
            update = event.update
            eor = update.end_of_rib()
            if eor is not None:
                core.post(core.upstream_end_of_rib, name, eor, now)
                return
            if update.treat_as_withdraw is not None:
                upstream.log.warning(
                    "malformed UPDATE treated as withdraw: %s", update.treat_as_withdraw
                )
            for family, prefixes in update.withdrawals():
                core.post(core.upstream_withdraw, name, family, prefixes, now)
            for family, attrs, next_hop, prefixes in update.announcements():
                core.post(core.upstream_announce, name, family, attrs, next_hop, prefixes, now)
            if core.congested():
                conn.pause_reading()
                core.when_drained(conn.resume_reading)
        elif isinstance(event, SessionEstablished):
            upstream.established_at = now
            upstream.detail = ""
            upstream.log.info("session established (hold %ds)", event.negotiated.hold_time)
            core.post(core.upstream_up, name, now)
        elif isinstance(event, SessionDown):
            note = f": {event.notification.describe()}" if event.notification else ""
            upstream.detail = f"{event.reason.name.lower()}{note}"
            upstream.log.warning("session down: %s", upstream.detail)
            if upstream.established_at is not None:
                upstream.established_at = None
                core.post(core.upstream_down, name, now)

    # ------------------------------------------------------------------ the core's calls

    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> dict[str, list[Prefix]]:
        packed: dict[tuple[bool, int], Packed] = {}
        too_large: dict[str, list[Prefix]] = {}
        for name in upstreams:
            upstream = self.upstreams[name]
            if not upstream.ready or upstream.conn is None:
                continue
            options = upstream.conn.options
            key = (options.asn4, options.max_message_len)
            if key not in packed:
                packed[key] = pack_announce(family, attributes, next_hop, prefixes, *key)
            messages, unfit = packed[key]
            if messages:
                upstream.conn.send(messages)
            if unfit:
                too_large[name] = unfit
        return too_large

    def withdraw(
        self, upstreams: Sequence[str], family: Family, prefixes: Sequence[Prefix]
    ) -> None:
        packed: dict[int, list[bytes]] = {}
        for name in upstreams:
            upstream = self.upstreams[name]
            if not upstream.ready or upstream.conn is None:
                continue
            max_len = upstream.conn.options.max_message_len
            if max_len not in packed:
                packed[max_len] = pack_withdraw(family, prefixes, max_len)
            upstream.conn.send(packed[max_len])

    def end_of_rib(self, upstream: str, family: Family) -> None:
        state = self.upstreams[upstream]
        if state.ready and state.conn is not None:
            state.conn.send([pack_end_of_rib(family)])

    def status(self) -> list[UpstreamStatus]:
        out = []
        for name, upstream in self.upstreams.items():
            conn = upstream.conn
            live = conn is not None and not conn.closed
            state = conn.session.state.name if conn is not None and live else "IDLE"
            out.append(UpstreamStatus(name, state, upstream.established_at, upstream.detail))
        return out


def _same(conn: BGPConnection) -> BGPConnection:
    return conn


log = logging.getLogger("bgpmux.engines.native")
