"""The RFC 4271 finite state machine of one BGP session, sans-IO.

Inputs: ``start``, ``connection_made``, ``connection_failed``, ``connection_lost``,
``receive_data``, ``handle_timer``, ``send_*``, ``output_status`` and ``stop``, each given
``now`` (monotonic seconds). Outputs: ``data_to_send``, ``next_event``, ``get_timer`` and
``close_requested``.
The glue owns the socket and the clock; nothing here does I/O or reads the time.
"""

from __future__ import annotations

from collections import deque

from bgpmux.wire import (
    KEEPALIVE,
    BGPError,
    Family,
    Framer,
    Notification,
    Open,
    RouteRefresh,
    Update,
)
from bgpmux.wire.constants import (
    MAX_MESSAGE_LEN,
    MessageType,
    RefreshSubtype,
)
from bgpmux.wire.errors import ErrorCode, OpenSubcode
from bgpmux.wire.messages import (
    DEFAULT_OPTIONS,
    AttributeCache,
    decode_body,
    decode_update,
    encode_message,
    encode_update,
)

from .config import SessionConfig, local_open
from .events import (
    ConnectRequested,
    Event,
    RouteRefreshReceived,
    SessionDown,
    SessionEstablished,
    StateChanged,
    UpdateReceived,
)
from .negotiation import Negotiated, negotiate
from .notifications import (
    HARD_RESET_SUBCODES,
    HOLD_TIMER_EXPIRED,
    SEND_HOLD_TIMER_EXPIRED,
    as_hard_reset,
    fsm_error,
)
from .states import CONNECTED, TRANSITIONS, DownReason, State
from .stats import SessionStats
from .timers import Timers, default_send_hold_time

__all__ = ["Session", "SessionConfig"]

_UPDATE = MessageType.UPDATE
_KEEPALIVE = MessageType.KEEPALIVE
_NOTIFICATION = MessageType.NOTIFICATION
_NAMES = {int(kind): kind.name for kind in MessageType}
_KEEPALIVE_BYTES = encode_message(KEEPALIVE)
_FRAMING = (RefreshSubtype.BORR, RefreshSubtype.EORR)  # need enhanced route refresh


class Session:
    """One BGP session to one peer, over one TCP connection at a time.

    A passive session is started (ACTIVE), handed a connection, and ends in IDLE; its owner
    calls ``start`` again (or makes a new ``Session``) for the next connection. An active
    session asks for dials with ``ConnectRequested`` and, after any failure other than
    ``stop``, asks again ``connect_retry_time`` seconds later. After a protocol error the
    NOTIFICATION is the last thing in ``data_to_send``; ``close_requested`` is set whenever the
    session falls to IDLE: flush, then close.
    """

    def __init__(self, config: SessionConfig, now: float) -> None:
        # ``now`` is unused today; it keeps every entry point on the caller's clock.
        self.config = config
        self.stats = SessionStats()
        self.close_requested = False
        self._state = State.IDLE
        self._local_open = local_open(config)
        self._open_bytes = encode_message(self._local_open)
        self._timers = Timers()
        self._output: list[bytes] = []
        self._events: deque[Event] = deque()
        self._attribute_cache = AttributeCache()
        self._auto_restart = False  # active role, started and not stopped: redial on failure
        self._octets_sent = 0  # what the glue last reported as written to the peer
        # Per connection; reset by _reset_connection.
        self._framer = Framer()
        self._negotiated: Negotiated | None = None
        self._options = DEFAULT_OPTIONS
        self._reset_connection()

    # ------------------------------------------------------------------------- observers

    @property
    def state(self) -> State:
        """The current state (RFC 4271 §8.2.2)."""
        return self._state

    @property
    def negotiated(self) -> Negotiated | None:
        """What the OPENs agreed on: set on entering OPEN_CONFIRM and kept after the session
        goes down (its owner then needs the peer's graceful-restart capability); cleared by the
        next ``connection_made``."""
        return self._negotiated

    @property
    def local_open(self) -> Open:
        """The OPEN we send on every connection, built once from ``config``."""
        return self._local_open

    def get_timer(self) -> float | None:
        """The earliest deadline at which ``handle_timer`` must be called, if any."""
        return self._timers.earliest()

    def data_to_send(self) -> bytes:
        """Take every byte queued for the peer (empty if none); the queue is emptied."""
        out = b"".join(self._output)
        self._output.clear()
        return out

    def next_event(self) -> Event | None:
        """Pop the oldest pending event, or None when there is none."""
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------------------- connection

    def start(self, now: float) -> None:
        """Leave IDLE: an active session asks to dial (CONNECT), a passive one waits (ACTIVE).
        Raises RuntimeError outside IDLE."""
        if self._state is not State.IDLE:
            raise RuntimeError(f"start() in {self._state.value}")
        self.close_requested = False
        self._timers.clear()
        if self.config.passive:
            self._auto_restart = False
            self._set_state(State.ACTIVE)
        else:
            self._auto_restart = True
            self._dial()

    def connection_made(self, now: float) -> None:
        """TCP is up (either role): send our OPEN and wait for the peer's, under the hold
        timer of ``config.open_hold_time`` (240 s by default, RFC 4271 §8.2.2). Raises
        RuntimeError outside CONNECT and ACTIVE."""
        if self._state not in (State.CONNECT, State.ACTIVE):
            raise RuntimeError(f"connection_made() in {self._state.value}")
        self._reset_connection()
        self.close_requested = False
        self._send(MessageType.OPEN, self._open_bytes)
        self._timers.connect_retry = None
        self._timers.keepalive = None
        self._timers.hold = now + self.config.open_hold_time
        self._timers.send_hold = None
        self._octets_sent = 0
        self._set_state(State.OPEN_SENT)

    def connection_failed(self, now: float) -> None:
        """The dial failed: wait ``connect_retry_time`` seconds in ACTIVE, then ask to dial
        again. Raises RuntimeError for a passive session or outside CONNECT and ACTIVE."""
        if self.config.passive or self._state not in (State.CONNECT, State.ACTIVE):
            raise RuntimeError(f"connection_failed() in {self._state.value}")
        if self._state is State.CONNECT:
            self._set_state(State.ACTIVE)
        self._timers.connect_retry = now + self.config.connect_retry_time

    def connection_lost(self, now: float) -> None:
        """TCP closed or reset by the peer (or the dial vanished): down to IDLE with
        CONNECTION_LOST, nothing sent; an active session redials later. No-op in IDLE."""
        if self._state is not State.IDLE:
            self._down(now, DownReason.CONNECTION_LOST, None, "connection lost", send=False)

    def stop(
        self,
        now: float,
        notification: Notification | None,
        reason: DownReason = DownReason.ADMIN_SHUTDOWN,
    ) -> None:
        """End the session with ``notification`` (sent if connected; None: the connection is
        closed without one, the graceful way of RFC 4724 §4.1); no automatic redial. In IDLE
        it only cancels a pending redial. Where RFC 8538's N bit was negotiated, a Cease that
        must not leave stale routes (Maximum Number of Prefixes Reached, Peer De-configured)
        goes out wrapped as Cease/Hard Reset (RFC 8538 §5)."""
        self._auto_restart = False
        if self._state is State.IDLE:
            self._timers.clear()
            return
        if notification is None:
            self._down(now, reason, None, "closed without a NOTIFICATION", send=False)
            return
        neg = self._negotiated
        if (
            neg is not None
            and neg.hard_reset
            and notification.code == ErrorCode.CEASE
            and notification.subcode in HARD_RESET_SUBCODES
        ):
            notification = as_hard_reset(notification)
        self._down(now, reason, notification, notification.describe(), send=True)

    def output_status(self, now: float, unsent: int, sent: int) -> None:
        """What the glue could not yet write to the peer (``unsent`` octets waiting) and what it
        has written in all (``sent`` octets since ``connection_made``, never decreasing). The
        send hold timer (RFC 9687 §4) runs while output waits and no octet left since the last
        call; it restarts on progress and stops when nothing waits. The glue must call this
        after each write and before ``handle_timer``. No-op outside OPEN_CONFIRM and
        ESTABLISHED."""
        timers = self._timers
        if self._state not in (State.OPEN_CONFIRM, State.ESTABLISHED) or unsent <= 0:
            timers.send_hold = None
        elif timers.send_hold is None or sent > self._octets_sent:
            timers.send_hold = now + self._send_hold_time()
        self._octets_sent = sent

    # ------------------------------------------------------------------------- timers

    def handle_timer(self, now: float) -> None:
        """Run the timers due at ``now``: an expired send hold timer ends the session with a
        Send Hold Timer Expired NOTIFICATION (RFC 9687 §4), an expired hold timer with a Hold
        Timer Expired one (RFC 4271 §6.5); else the keepalive timer sends a KEEPALIVE and the
        connect-retry timer redials an active session."""
        timers = self._timers
        if timers.send_hold is not None and now >= timers.send_hold:
            self._down(
                now,
                DownReason.SEND_HOLD_TIMER_EXPIRED,
                SEND_HOLD_TIMER_EXPIRED,
                f"the peer read nothing in {self._send_hold_time():g} s",
                send=True,
            )
            return
        if timers.hold is not None and now >= timers.hold:
            self._down(
                now,
                DownReason.HOLD_TIMER_EXPIRED,
                HOLD_TIMER_EXPIRED,
                f"no message from the peer in {self._hold_time():g} s",
                send=True,
            )
            return
        if timers.keepalive is not None and now >= timers.keepalive:
            self._send(MessageType.KEEPALIVE, _KEEPALIVE_BYTES)
            self._arm_keepalive(now)
        if timers.connect_retry is not None and now >= timers.connect_retry:
            timers.connect_retry = None
            if self._auto_restart and self._state in (State.IDLE, State.ACTIVE):
                self._dial()

    # ------------------------------------------------------------------------- sending

    def send_updates(self, messages: list[bytes], now: float) -> None:
        """Queue pre-encoded UPDATE messages (whole messages, header included, sizes not
        checked) and restart the keepalive timer. Raises RuntimeError outside ESTABLISHED."""
        if self._state is not State.ESTABLISHED:
            raise RuntimeError(f"send_updates() in {self._state.value}")
        if not messages:
            return
        self._output.extend(messages)
        self.stats.messages_sent["UPDATE"] += len(messages)
        self._arm_keepalive(now)

    def send_update(self, update: Update, now: float) -> None:
        """Encode ``update`` with the negotiated options and queue it. Raises RuntimeError
        outside ESTABLISHED, ValueError if it exceeds the negotiated maximum length."""
        if self._state is not State.ESTABLISHED:
            raise RuntimeError(f"send_update() in {self._state.value}")
        self.send_updates([encode_update(update, self._options)], now)

    def send_route_refresh(self, family: Family, now: float, subtype: int = 0) -> None:
        """Send a ROUTE-REFRESH for ``family``: subtype 0 asks the peer to re-send it (RFC 2918),
        1 and 2 (BoRR, EoRR) mark the start and end of our own re-advertisement (RFC 7313 §4).
        Raises RuntimeError unless ``refresh_negotiated(family, subtype)``."""
        if not self.refresh_negotiated(family, subtype):
            raise RuntimeError(
                f"route refresh subtype {subtype} for {family} in {self._state.value}: "
                "not Established or not negotiated"
            )
        self._send(MessageType.ROUTE_REFRESH, encode_message(RouteRefresh(family, subtype)))

    def refresh_negotiated(self, family: Family, subtype: int = 0) -> bool:
        """Whether a ROUTE-REFRESH of ``subtype`` for ``family`` may be sent now: ESTABLISHED,
        route refresh (RFC 2918 §2) and the family negotiated by both sides, and for BoRR and
        EoRR (1, 2) enhanced route refresh too (RFC 7313 §3)."""
        neg = self._negotiated
        if self._state is not State.ESTABLISHED or neg is None:
            return False
        if not neg.route_refresh or family not in neg.families:
            return False
        return subtype == RefreshSubtype.REQUEST or (
            subtype in _FRAMING and neg.enhanced_route_refresh
        )

    # ------------------------------------------------------------------------- receiving

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the peer. Many messages per call is the common case and the fast path.

        A protocol error does not raise: the NOTIFICATION is queued and the session goes down.
        Late bytes in IDLE are dropped; RuntimeError in CONNECT or ACTIVE.
        """
        state = self._state
        if state is State.IDLE:
            return  # late bytes after we gave up on the connection
        if state is not State.ESTABLISHED and state not in CONNECTED:
            raise RuntimeError(f"receive_data() in {state.value}")
        try:
            frames = self._framer.feed(data)
            if not frames:
                return  # part of a message: not yet a sign of life (RFC 4271 §4.4)
            self._receive_frames(frames, now)
        except BGPError as err:
            detail = err.reason or err.describe()
            self._down(
                now, DownReason.PROTOCOL_ERROR, Notification.from_error(err), detail, send=True
            )
            return
        neg = self._negotiated
        if self._state is State.ESTABLISHED and neg is not None:  # _hold_time(), inlined
            self._timers.hold = now + neg.hold_time if neg.hold_time else None
        elif self._state in (State.OPEN_CONFIRM, State.ESTABLISHED):
            hold = self._hold_time()
            self._timers.hold = now + hold if hold else None

    def _receive_frames(self, frames: list[tuple[int, bytes]], now: float) -> None:
        received = self.stats.messages_received
        events = self._events
        for kind, body in frames:
            received[_NAMES[kind]] += 1
            if self._state is State.ESTABLISHED:
                if kind == _UPDATE:
                    msg = decode_update(body, self._options, self._attribute_cache)
                    events.append(UpdateReceived(msg))
                    continue
                if kind == _KEEPALIVE:
                    continue
            self._receive_other(kind, body, now)
            if self._state is State.IDLE:
                return

    def _receive_other(self, kind: int, body: bytes, now: float) -> None:
        state = self._state
        if kind == _NOTIFICATION:
            msg = decode_body(kind, body)
            assert isinstance(msg, Notification)
            key = (msg.code, msg.subcode)
            counts = self.stats.notifications_received
            counts[key] = counts.get(key, 0) + 1
            self._down(now, DownReason.NOTIFICATION_RECEIVED, msg, msg.describe(), send=False)
        elif state is State.OPEN_SENT and kind == MessageType.OPEN:
            peer = decode_body(kind, body)
            assert isinstance(peer, Open)
            self._receive_open(peer, now)
        elif state is State.OPEN_CONFIRM and kind == _KEEPALIVE:
            self._establish()
        elif state is State.ESTABLISHED and kind == MessageType.ROUTE_REFRESH:
            msg = decode_body(kind, body)
            assert isinstance(msg, RouteRefresh)
            if self._accepts_refresh(msg):
                self._events.append(RouteRefreshReceived(msg))
        else:
            detail = f"unexpected {_NAMES[kind]} in {state.value}"
            self._down(now, DownReason.PROTOCOL_ERROR, fsm_error(state), detail, send=True)

    def _receive_open(self, peer: Open, now: float) -> None:
        error = self._check_open(peer)
        if error is not None:
            subcode, detail = error
            notification = Notification(ErrorCode.OPEN_MESSAGE, subcode)
            self._down(now, DownReason.PROTOCOL_ERROR, notification, detail, send=True)
            return
        neg = negotiate(self._local_open, peer)
        self._negotiated = neg
        # Raised only now: until both sides agree, a header over 4096 octets is refused as
        # soon as it arrives (RFC 4271 §6.1). The peer cannot send a larger message before it
        # has our KEEPALIVE, which goes out below, after this.
        self._framer.max_message_len = neg.options.max_message_len
        self._send(MessageType.KEEPALIVE, _KEEPALIVE_BYTES)
        self._arm_keepalive(now)
        self._set_state(State.OPEN_CONFIRM)

    def _check_open(self, peer: Open) -> tuple[OpenSubcode, str] | None:
        """RFC 4271 §6.2 checks the codec cannot make: (subcode, why) of the first failure."""
        cfg = self.config
        if peer.asn == 0:  # RFC 7607
            return OpenSubcode.BAD_PEER_AS, "peer AS 0"
        if cfg.peer_asn is not None and peer.asn != cfg.peer_asn:
            return OpenSubcode.BAD_PEER_AS, f"peer AS {peer.asn}, expected {cfg.peer_asn}"
        if peer.hold_time in (1, 2):
            return OpenSubcode.UNACCEPTABLE_HOLD_TIME, f"hold time {peer.hold_time}"
        if peer.router_id == "0.0.0.0":
            return OpenSubcode.BAD_BGP_IDENTIFIER, "BGP identifier 0.0.0.0"
        if peer.router_id == cfg.router_id and (
            cfg.forbid_same_router_id or peer.asn == cfg.local_asn
        ):
            return OpenSubcode.BAD_BGP_IDENTIFIER, f"BGP identifier {peer.router_id} is ours"
        return None

    def _accepts_refresh(self, msg: RouteRefresh) -> bool:
        # What we advertised decides (RFC 2918 §4: the peer may ask once it has our capability,
        # whether or not it advertised its own): a family we did not advertise is ignored, and
        # so is an unknown subtype, or a BoRR/EoRR without our enhanced capability (RFC 7313 §5).
        caps = self._local_open.capabilities
        if not caps.route_refresh or msg.family not in self.config.families:
            return False
        return msg.subtype == RefreshSubtype.REQUEST or (
            msg.subtype in _FRAMING and caps.enhanced_route_refresh
        )

    def _establish(self) -> None:
        neg = self._negotiated
        assert neg is not None
        self._options = neg.options
        self.stats.established += 1
        self._set_state(State.ESTABLISHED)
        self._events.append(SessionEstablished(neg))

    # ------------------------------------------------------------------------- internals

    def _set_state(self, new: State) -> None:
        old = self._state
        TRANSITIONS[(old, new)]  # an illegal transition fails here, on lookup: a bug in this file
        self._state = new
        self._events.append(StateChanged(old, new))

    def _dial(self) -> None:
        self._set_state(State.CONNECT)
        self._events.append(ConnectRequested())

    def _down(
        self,
        now: float,
        reason: DownReason,
        notification: Notification | None,
        detail: str,
        *,
        send: bool,
    ) -> None:
        if send and notification is not None and self._state in CONNECTED:
            self._send(MessageType.NOTIFICATION, encode_message(notification))
            key = (notification.code, notification.subcode)
            counts = self.stats.notifications_sent
            counts[key] = counts.get(key, 0) + 1
        self._set_state(State.IDLE)
        self._timers.clear()
        self.close_requested = True
        self._events.append(SessionDown(reason, notification, detail))
        if self._auto_restart:
            self._timers.connect_retry = now + self.config.connect_retry_time

    def _send(self, kind: MessageType, data: bytes) -> None:
        self._output.append(data)
        self.stats.messages_sent[kind.name] += 1

    def _arm_keepalive(self, now: float) -> None:
        neg = self._negotiated
        if neg is not None and neg.keepalive_time > 0:
            self._timers.keepalive = now + neg.keepalive_time
        else:
            self._timers.keepalive = None

    def _hold_time(self) -> float:
        neg = self._negotiated
        if self._state is State.OPEN_SENT or neg is None:
            return self.config.open_hold_time
        return float(neg.hold_time)

    def _send_hold_time(self) -> float:
        configured = self.config.send_hold_time
        if configured is not None:
            return configured
        neg = self._negotiated
        return default_send_hold_time(neg.hold_time if neg is not None else 0)

    def _reset_connection(self) -> None:
        self._framer = Framer(MAX_MESSAGE_LEN)
        self._negotiated = None
        self._options = DEFAULT_OPTIONS
