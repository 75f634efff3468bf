"""The native engine: bgpmux's own sessions, in the active role, to every upstream.

Each upstream has one ``Session`` (active: it asks to be dialled, and after a failure or a
session end its connect-retry timer asks again) driven by a ``BGPConnection``. The engine only
dials when asked, from the node address with TCP-MD5 and GTSM when configured, and hands the
connection over; nothing polls. UPDATEs for the upstream are packed here from the core's
batches, with the options that session negotiated.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from ..config import Config, Upstream
from ..core.port import Engine, UpstreamEvents, UpstreamStatus
from ..logs import peer_logger
from ..session import State, cease_shutdown
from ..session.describe import down_words, with_negotiated
from ..session.events import (
    ConnectRequested,
    RouteRefreshReceived,
    SessionDown,
    SessionEstablished,
    UpdateReceived,
)
from ..session.facts import SessionFacts
from ..session.graceful import (
    graceful_families,
    restart_note,
    stale_kept_on_return,
    stale_time_after,
)
from ..transport.connection import BGPConnection
from ..transport.gtsm import set_gtsm
from ..transport.md5 import set_md5_key
from ..transport.profiles import upstream_session_config
from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.errors import CeaseSubcode, ErrorCode
from ..wire.messages import Notification
from ..wire.packing import Packed, pack_announce, pack_end_of_rib, pack_withdraw
from ..wire.prefix import Prefix

CONNECT_TIMEOUT = 10.0  # seconds a dial may take
STOP_TIMEOUT = 1.0  # seconds the NOTIFICATIONs get to leave on stop

log = logging.getLogger("bgpmux.engines.native")


class _Upstream:
    def __init__(self, config: Upstream, conn: BGPConnection) -> None:
        self.config = config
        self.conn = conn
        self.key = Path(config.password_file).read_bytes().strip() if config.password_file else None
        self.dial: asyncio.Task[None] | None = None
        self.established_at: float | None = None
        self.detail = ""
        self.last_error = ""  # SessionFacts.last_error, with its Unix time
        self.last_error_at: float | None = None
        self.stale_until: float | None = None  # the loop's clock: routes kept stale until

    def failed(self, words: str) -> None:
        """Record the last error in words, now."""
        self.last_error, self.last_error_at = words, time.time()

    @property
    def ready(self) -> bool:
        conn = self.conn
        return not conn.closed and conn.session.state is State.ESTABLISHED


class _Attempt(asyncio.Protocol):
    """One TCP connection of an upstream's session: passes on only while it is the current one
    (a closed connection's late callbacks must not reach the next)."""

    def __init__(self, conn: BGPConnection) -> None:
        self.conn = conn
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.conn.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.conn.transport is self.transport:
            self.conn.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn.transport is self.transport:
            self.conn.connection_lost(exc)


class NativeEngine(Engine):
    """bgpmux's own sessions to the upstreams, reporting to ``events``. A session that ends
    without a NOTIFICATION (or on our hold timer) after graceful restart was negotiated is
    reported with the upstream's restart time, so the core keeps its routes stale (RFC 4724
    §4.2); any other end is reported without one. Every ROUTE-REFRESH the session accepts
    (RFC 2918, RFC 7313) goes to the core, which answers a request through ``announce`` framed
    by ``send_route_refresh``."""

    name = "native"

    def __init__(self, config: Config, events: UpstreamEvents) -> None:
        self.config = config
        self.events = events
        # IPv4 routes go over an IPv6 session too, and the other way round
        self.families = tuple(config.node.next_hops())
        self.upstreams: dict[str, _Upstream] = {}
        self._stopping = False

    async def start(self) -> None:
        """Create every upstream's session and let it ask to be dialled. Raises OSError when
        a password file cannot be read."""
        for cfg in self.config.upstreams:
            self._open(cfg)

    def _open(self, cfg: Upstream) -> None:
        session_config = upstream_session_config(self.config, cfg, self.families)
        conn = BGPConnection(
            session_config,
            self._on_event,
            peer_logger(cfg.name, "upstream"),
            after_read=self._after_read,
        )
        self.upstreams[cfg.name] = upstream = _Upstream(cfg, conn)
        upstream.conn.start()  # asks to be dialled: _on_event starts the dial

    def reset_upstream(self, upstream: Upstream) -> None:
        """End the session with Cease/Other Configuration Change (RFC 4486 §4) and open a
        new one to ``upstream`` (its identity changed on reload). The old session's events
        are no longer passed on. Raises OSError, with the running session untouched, when the
        new password file cannot be read."""
        old = self.upstreams[upstream.name]
        if upstream.password_file is not None:
            Path(upstream.password_file).read_bytes()
        if old.dial is not None:
            old.dial.cancel()
        old.established_at = None  # the core took it down: no ``down`` for it
        old.conn.shutdown(
            Notification(ErrorCode.CEASE, CeaseSubcode.OTHER_CONFIGURATION_CHANGE, b"")
        )
        configs = [upstream if u.name == upstream.name else u for u in self.config.upstreams]
        self.config = self.config.model_copy(update={"upstreams": tuple(configs)})
        self._open(upstream)
        new = self.upstreams[upstream.name]
        new.conn.session.stats.add(old.conn.session.stats)  # counters go on (Prometheus)
        new.last_error, new.last_error_at = old.last_error, old.last_error_at

    def add_upstream(self, upstream: Upstream) -> None:
        """Open a session to ``upstream`` (added on reload); the others are left alone.
        Raises OSError, with nothing changed, when its password file cannot be read."""
        self.config = self.config.model_copy(
            update={"upstreams": (*self.config.upstreams, upstream)}
        )
        try:
            self._open(upstream)
        except OSError:
            self.config = self.config.model_copy(update={"upstreams": self.config.upstreams[:-1]})
            raise

    def remove_upstream(self, name: str) -> None:
        """End the session of ``name`` with Cease/Peer De-configured (RFC 4486 §3) and forget
        it; its late events are not passed on."""
        old = self.upstreams.pop(name)
        if old.dial is not None:
            old.dial.cancel()
        old.conn.shutdown(Notification(ErrorCode.CEASE, CeaseSubcode.PEER_DECONFIGURED, b""))
        configs = tuple(u for u in self.config.upstreams if u.name != name)
        self.config = self.config.model_copy(update={"upstreams": configs})

    async def stop(self) -> None:
        """Cancel dials, end every session and wait up to ``STOP_TIMEOUT`` seconds for the
        connections to close. An upstream that keeps our routes across a restart (graceful
        restart negotiated, RFC 4724 §4.1) is closed without a NOTIFICATION, or with
        Cease/Administrative Shutdown where RFC 8538's N bit was negotiated; the others get
        Cease/Administrative Shutdown."""
        self._stopping = True
        cease = cease_shutdown("bgpmux shutting down")
        for upstream in self.upstreams.values():
            if upstream.dial is not None:
                upstream.dial.cancel()
            upstream.conn.shutdown_for_restart(cease)
        waits = [u.conn.wait_closed() for u in self.upstreams.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), STOP_TIMEOUT)

    # ------------------------------------------------------------------ dialling

    def _source_address(self, upstream: Upstream) -> str:
        return str(self.config.node.address_of(upstream.ip.version))

    async def _dial(self, upstream: _Upstream) -> None:
        cfg = upstream.config
        loop = asyncio.get_running_loop()
        address = str(cfg.ip)
        family = socket.AF_INET6 if cfg.ip.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if upstream.key:
                set_md5_key(sock, address, upstream.key)
            if cfg.ttl_security:
                set_gtsm(sock, 6 if family == socket.AF_INET6 else 4)
            sock.bind((self._source_address(cfg), 0))
            await asyncio.wait_for(loop.sock_connect(sock, (address, cfg.port)), CONNECT_TIMEOUT)
            await loop.create_connection(lambda: _Attempt(upstream.conn), sock=sock)
        except (TimeoutError, OSError) as exc:
            sock.close()
            upstream.detail = f"connect failed: {exc}"
            upstream.failed(f"connect: {exc.strerror or exc or 'timed out'}")
            upstream.conn.log.debug("connect to %s:%d failed: %s", address, cfg.port, exc)
            if not self._stopping:
                upstream.conn.connection_failed()
        except asyncio.CancelledError:
            sock.close()
            raise
        except Exception as exc:  # a bug, or a key the kernel refuses: this dial fails, loudly
            sock.close()
            upstream.detail = f"connect failed: {type(exc).__name__}: {exc}"
            upstream.failed(f"connect: {type(exc).__name__}: {exc}")
            upstream.conn.log.exception("connect to %s:%d failed", address, cfg.port)
            if not self._stopping:
                upstream.conn.connection_failed()

    def _after_read(self) -> None:
        self.events.handle_pending()

    def _on_event(self, conn: BGPConnection, event: object) -> None:
        name = conn.session.config.peer_name
        upstream = self.upstreams.get(name)
        if upstream is None or conn is not upstream.conn:
            return  # a session ended by reset_ or remove_upstream: the core took it down
        events = self.events
        if isinstance(event, UpdateReceived):
            update = event.update
            eor = update.end_of_rib()
            if eor is not None:
                events.end_of_rib(name, eor)
                return
            if update.treat_as_withdraw is not None:
                conn.log.warning(
                    "malformed UPDATE treated as withdraw: %s", update.treat_as_withdraw
                )
            for family, prefixes in update.withdrawals():
                events.withdrawn(name, family, prefixes)
            for family, attrs, next_hop, prefixes in update.announcements():
                events.routes(name, family, attrs, next_hop, prefixes)
            if events.congested():
                conn.pause_reading()
                events.when_drained(conn.resume_reading)
        elif isinstance(event, ConnectRequested):
            if not self._stopping:
                upstream.dial = asyncio.get_running_loop().create_task(
                    self._dial(upstream), name=f"dial-{name}"
                )
        elif isinstance(event, SessionEstablished):
            upstream.established_at = conn.loop.time()
            upstream.detail = ""
            upstream.stale_until = None
            negotiated = event.negotiated
            note = restart_note(negotiated.peer_graceful_restart)
            conn.log.info(
                "session established (hold %ds, families %s)%s",
                negotiated.hold_time,
                ", ".join(str(f) for f in negotiated.families),
                note and f"; {note}",
            )
            events.established(
                name,
                stale_kept_on_return(negotiated.peer_graceful_restart, negotiated.families),
                negotiated.families,
            )
        elif isinstance(event, SessionDown):
            note = f": {event.notification.describe()}" if event.notification else ""
            upstream.detail = f"{event.reason.name.lower()}{note}"
            upstream.failed(down_words(event.reason, event.notification, event.detail))
            conn.log.warning("session down: %s", upstream.detail)
            if upstream.established_at is not None:
                upstream.established_at = None
                # RFC 4724 §4.2: without a NOTIFICATION, a graceful upstream's routes stay;
                # with RFC 8538's N bit, after any NOTIFICATION but a Hard Reset too
                ended = conn.session.negotiated
                stale_time = stale_time_after(ended, event.reason, event.notification)
                events.down(name, stale_time, graceful_families(ended) if stale_time else None)
                if stale_time:
                    upstream.stale_until = conn.loop.time() + stale_time
        elif isinstance(event, RouteRefreshReceived):
            message = event.message
            conn.log.debug("ROUTE-REFRESH for %s received (subtype %d)", message.family,
                           message.subtype)  # fmt: skip
            events.route_refresh(name, message.family, message.subtype)

    # ------------------------------------------------------------------ the core's calls

    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> dict[str, list[Prefix]]:
        """Pack (once per negotiated asn4 and maximum length) and send to each Established
        upstream that negotiated ``family``; returns, per upstream, the prefixes that fit in no
        UPDATE (RFC 8654)."""
        packed: dict[tuple[bool, int], Packed] = {}
        too_large: dict[str, list[Prefix]] = {}
        for name in upstreams:
            upstream = self.upstreams[name]
            if not upstream.ready or family not in upstream.conn.families:
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
        """Pack and send the withdrawal to each Established upstream that negotiated
        ``family``; others are skipped."""
        packed: dict[int, list[bytes]] = {}
        for name in upstreams:
            upstream = self.upstreams[name]
            if not upstream.ready or family not in upstream.conn.families:
                continue
            max_len = upstream.conn.options.max_message_len
            if max_len not in packed:
                packed[max_len] = pack_withdraw(family, prefixes, max_len)
            upstream.conn.send(packed[max_len])

    def end_of_rib(self, upstream: str, family: Family) -> None:
        """Send End-of-RIB (RFC 4724 §2) if the upstream is Established and negotiated
        ``family`` (an End-of-RIB for another family is an error to some peers: GoBGP resets
        the session)."""
        state = self.upstreams[upstream]
        if state.ready and family in state.conn.families:
            state.conn.send([pack_end_of_rib(family)])

    def send_route_refresh(self, upstream: str, family: Family, subtype: int) -> bool:
        """Send a BoRR or EoRR (RFC 7313 §4) if the session is Established and negotiated
        enhanced route refresh and ``family``; False, with nothing sent, otherwise."""
        return self.upstreams[upstream].conn.send_route_refresh(family, subtype)

    def status(self) -> list[UpstreamStatus]:
        """Each configured upstream's session state, when it was established, its last error,
        its ``SessionFacts`` and its message counters (over all its connections)."""
        out = []
        for cfg in self.config.upstreams:
            upstream = self.upstreams.get(cfg.name)
            if upstream is None:
                out.append(UpstreamStatus(cfg.name, State.IDLE, facts=self._facts(cfg, None)))
                continue
            session = upstream.conn.session
            out.append(
                UpstreamStatus(
                    cfg.name,
                    session.state,
                    upstream.established_at,
                    upstream.detail,
                    facts=self._facts(cfg, upstream),
                    messages=session.stats.snapshot(),
                )
            )
        return out

    def _facts(self, cfg: Upstream, upstream: _Upstream | None) -> SessionFacts:
        source = self.config.node.address_of(cfg.ip.version)
        facts = SessionFacts(address=str(cfg.ip), asn=cfg.asn, local_address=str(source or ""))
        if upstream is None:
            return facts
        conn = upstream.conn
        stale_left = None
        if upstream.stale_until is not None:
            stale_left = upstream.stale_until - conn.loop.time()
        negotiated = conn.session.negotiated if upstream.ready else None
        facts = with_negotiated(facts, negotiated, stale_left)
        return dataclasses.replace(
            facts,
            local_address=conn.local_ip or facts.local_address,
            last_error=upstream.last_error,
            last_error_at=upstream.last_error_at,
        )
