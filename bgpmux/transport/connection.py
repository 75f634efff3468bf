"""The asyncio glue of one sans-IO ``Session``: feeds it what the socket reads, writes what it
sends, arms its timer and hands its events on.

A passive session (a client's) lives for one TCP connection. An active one (an upstream's, in
the native engine) outlives them: its owner calls ``start``, dials when the session asks
(``ConnectRequested``) and hands each new connection to ``connection_made``; a failed dial goes
to ``connection_failed``, and the session's connect-retry timer asks for the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..session import DownReason, Session, SessionConfig, State
from ..session.events import (
    RouteRefreshReceived,
    SessionDown,
    SessionEstablished,
    StateChanged,
    UpdateReceived,
)
from ..session.graceful import shutdown_notification
from ..session.notifications import OUT_OF_RESOURCES
from ..wire.constants import SUPPORTED_FAMILIES, Family
from ..wire.messages import DEFAULT_OPTIONS, CodecOptions, Notification

EventHandler = Callable[["BGPConnection", Any], None]
FEED_SLICE = 32 * 1024
UNFED_LIMIT = 1024 * 1024  # stop reading the socket while this much waits to be fed
DEFAULT_OUTPUT_LIMIT = 64 * 1024 * 1024  # octets of unsent output before Cease/Out of Resources
# After a close, what is still unsent gets this long to leave before the connection is reset
# (a peer that stopped reading would otherwise hold the socket and its buffer forever).
CLOSE_GRACE_SECONDS = 5.0


class BGPConnection(asyncio.Protocol):
    """asyncio glue for one session. ``on_event`` gets every session event, in order;
    ``after_read``, when given, is called once the events of a read (a slice of
    ``FEED_SLICE`` octets) were all handed to ``on_event`` (the core's fast path,
    ``CoreRunner.handle_pending``).

    ``closed`` is True while no TCP connection carries the session (after it ended, or before
    an active session's first connection). ``output_limit``: octets of output the socket has
    not taken yet beyond which the session ends with Cease/Out of Resources (RFC 4486 §4).
    """

    def __init__(
        self,
        config: SessionConfig,
        on_event: EventHandler,
        logger: logging.LoggerAdapter[logging.Logger],
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        after_read: Callable[[], None] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.session = Session(config, self.loop.time())
        self.on_event = on_event
        self.after_read = after_read
        self.log = logger
        self.transport: asyncio.Transport | None = None
        self.peer_ip: str | None = None
        self.local_ip: str | None = None  # our end of the current (or last) connection
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.options: CodecOptions = DEFAULT_OPTIONS
        self.families: tuple[Family, ...] = SUPPORTED_FAMILIES
        self.closed = False
        self._closed_event = asyncio.Event()
        self._unfed = bytearray()  # read from the socket, not yet fed to the session
        self._feeding = False
        self._paused_for: set[str] = set()
        self.output_limit = output_limit
        self._written = 0  # octets handed to the current transport

    # asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A TCP connection now carries the session (a passive session starts here)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.closed = False
        self._closed_event.clear()
        self._paused_for.clear()
        self._written = 0
        peer = transport.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else None
        local = transport.get_extra_info("sockname")
        self.local_ip = local[0] if local else None
        if self.session.state is State.IDLE:  # passive: this connection is the session's
            self.session.start(self.loop.time())
        self.session.connection_made(self.loop.time())
        self._pump()

    def data_received(self, data: bytes) -> None:
        """Bytes from the peer, fed to the session in slices of ``FEED_SLICE`` octets."""
        if not self._feeding and len(data) <= FEED_SLICE and not self._unfed:
            # The common read (a few messages, nothing waiting): fed as it is, without a copy.
            if not self.closed:
                self.session.receive_data(data, self.loop.time())
                self._pump(then=self.after_read)
            return
        self._unfed += data
        if len(self._unfed) > UNFED_LIMIT:
            self.pause_reading("unfed")
        if not self._feeding:
            self._feed()

    def _feed(self) -> None:
        """Feed the session one slice, then yield to the loop: the core forwards the first
        routes of a large read while the rest are still waiting to be decoded."""
        if self.closed:
            return
        chunk = bytes(self._unfed[:FEED_SLICE])
        del self._unfed[:FEED_SLICE]
        self.session.receive_data(chunk, self.loop.time())
        self._pump()
        if self.after_read is not None:
            self.after_read()
        self._feeding = bool(self._unfed) and not self.closed
        if self._feeding:
            self.loop.call_soon(self._feed)
        else:
            self._unfed.clear()
            self.resume_reading("unfed")

    def connection_lost(self, exc: Exception | None) -> None:
        """The TCP connection closed: what was read is fed first, then the session is told."""
        if self._unfed:  # what the peer sent before closing (a NOTIFICATION, say) comes first
            self.session.receive_data(bytes(self._unfed), self.loop.time())
            self._unfed.clear()
            self._pump(flush=False)
        self._set_closed()
        self._feeding = False
        self.session.connection_lost(self.loop.time())
        self._pump(flush=False)

    # what an active session's owner calls ------------------------------------------------

    def start(self) -> None:
        """Start an active session: it asks to be dialled (``ConnectRequested``)."""
        self.closed = True
        self._closed_event.set()
        self.session.start(self.loop.time())
        self._pump(flush=False)

    def connection_failed(self) -> None:
        """The dial the session asked for failed: it waits its connect-retry time."""
        if self.session.state in (State.CONNECT, State.ACTIVE):
            self.session.connection_failed(self.loop.time())
            self._pump(flush=False)

    async def wait_closed(self) -> None:
        """Return once no TCP connection carries the session."""
        await self._closed_event.wait()

    # what the core and the listener call ----------------------------------------------

    def send(self, messages: list[bytes]) -> None:
        """Send whole, encoded UPDATE messages; dropped while no connection is open."""
        if self.closed:
            return
        self.session.send_updates(messages, self.loop.time())
        self._pump()

    def send_route_refresh(self, family: Family, subtype: int = 0) -> bool:
        """Send a ROUTE-REFRESH of ``subtype`` (0 request, 1 BoRR, 2 EoRR; RFC 2918, 7313) for
        ``family``, behind what was sent before; False, with nothing sent, when the session
        is not Established or did not negotiate it (``Session.refresh_negotiated``)."""
        if self.closed or not self.session.refresh_negotiated(family, subtype):
            return False
        self.session.send_route_refresh(family, self.loop.time(), subtype)
        self._pump()
        return True

    def shutdown_for_restart(self, cease: Notification) -> None:
        """bgpmux is stopping: ``shutdown`` an Established session the way that lets the peer
        keep our routes when it can (``session.graceful.shutdown_notification``: no
        NOTIFICATION, or ``cease`` where RFC 8538's N bit was negotiated); any other with
        ``cease``."""
        session = self.session
        notification: Notification | None = cease
        if session.state is State.ESTABLISHED:
            notification = shutdown_notification(session.negotiated, cease)
        if notification is None:
            self.log.info("closing without a NOTIFICATION (graceful restart)")
        self.shutdown(notification)

    def shutdown(
        self, notification: Notification | None, reason: DownReason = DownReason.ADMIN_SHUTDOWN
    ) -> None:
        """End the session with ``notification`` (sent, then the connection closes; None: the
        connection closes without one); ``reason`` is recorded as why. Without a connection,
        an active session stops asking to be dialled."""
        self.session.stop(self.loop.time(), notification, reason)
        self._pump(flush=not self.closed)

    def pause_reading(self, reason: str = "core") -> None:
        """Stop reading from the socket until ``resume_reading`` with every reason given."""
        self._paused_for.add(reason)
        if self.transport is not None and not self.closed and self.transport.is_reading():
            self.transport.pause_reading()

    def resume_reading(self, reason: str = "core") -> None:
        """Withdraw ``reason`` to pause; reading resumes once no reason is left."""
        self._paused_for.discard(reason)
        if self._paused_for or self.transport is None or self.closed:
            return
        if not self.transport.is_reading():
            self.transport.resume_reading()

    def abort(self) -> None:
        """Drop the TCP connection without a NOTIFICATION (a graceful restart of the peer)."""
        if self.transport is not None and not self.closed:
            self.transport.abort()

    # the pump --------------------------------------------------------------------------

    def _pump(self, flush: bool = True, then: Callable[[], None] | None = None) -> None:
        """Write what the session queued, hand its events on, close if it asked to, call
        ``then`` (the core's fast path, before the timer is re-armed) and re-arm the timer."""
        session = self.session
        transport = self.transport
        if flush and transport is not None and not self.closed:
            data = session.data_to_send()
            if data:  # nothing written, nothing to report: ``_on_timer`` reports progress
                transport.write(data)
                self._written += len(data)
                self._report_output(transport)
        while (event := session.next_event()) is not None:
            if isinstance(event, SessionEstablished):
                self.options = event.negotiated.options
                self.families = event.negotiated.families
            self.on_event(self, event)
        if session.close_requested and transport is not None and not self.closed:
            self._set_closed()
            transport.close()  # flushes what was written, then closes
            if transport.get_write_buffer_size():
                self.loop.call_later(CLOSE_GRACE_SECONDS, transport.abort)
        if then is not None:
            then()
        self._arm_timer()

    def _report_output(self, transport: asyncio.Transport) -> None:
        """Tell the session what is still unsent (its send hold timer), and end it with
        Cease/Out of Resources when that passes ``output_limit``."""
        unsent = transport.get_write_buffer_size()
        now = self.loop.time()
        self.session.output_status(now, unsent, self._written - unsent)
        if unsent > self.output_limit and self.session.state is not State.IDLE:
            self.log.warning(
                "%d octets wait to be sent, over the limit of %d: closing the session",
                unsent,
                self.output_limit,
            )
            self.session.stop(now, OUT_OF_RESOURCES, DownReason.OUTPUT_LIMIT)
            transport.write(self.session.data_to_send())  # behind the rest: it may not get out

    def _set_closed(self) -> None:
        self.closed = True
        self._closed_event.set()

    def _arm_timer(self) -> None:
        deadline = self.session.get_timer()  # an active session's connect-retry outlives TCP
        if deadline == self._timer_at:
            return
        # Every message sent or received moves a timer later: rather than cancel and re-arm
        # each time, the armed timer fires early and re-arms then (a session handles a timer
        # that finds nothing due as a no-op).
        armed = self._timer_at if self._timer is not None else None
        if deadline is not None and armed is not None and armed <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.transport is not None and not self.closed:
            self._report_output(self.transport)  # progress since the last write stops a timeout
        self.session.handle_timer(self.loop.time())
        self._pump()


__all__ = [
    "BGPConnection",
    "RouteRefreshReceived",
    "SessionDown",
    "SessionEstablished",
    "StateChanged",
    "UpdateReceived",
]
