"""Session states, why a session went down, and the legal transitions between states.

The rules (RFC 4271 §8.2.2, without the optional session attributes):

* IDLE is where a session starts and where every failure ends. ``start`` leaves it: an active
  session goes to CONNECT (the glue dials), a passive one to ACTIVE (waiting to be dialled). An
  active session that failed also leaves it when its connect-retry timer fires.
* CONNECT: a dial is in progress. It succeeds (OPEN_SENT) or fails (ACTIVE, to retry later).
* ACTIVE: no connection; waiting for one, or for the connect-retry timer (active role: CONNECT).
* OPEN_SENT: TCP is up and our OPEN is queued; the peer's acceptable OPEN leads to OPEN_CONFIRM.
* OPEN_CONFIRM: we answered the peer's OPEN with a KEEPALIVE; its KEEPALIVE leads to ESTABLISHED.
* ESTABLISHED: UPDATE, ROUTE-REFRESH and KEEPALIVE flow both ways.
* Any state but IDLE may fall back to IDLE: NOTIFICATION, protocol error, hold timer, lost
  connection, or a stop. Nothing else is legal; ``TRANSITIONS[(old, new)]`` fails on lookup.
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    """The session states of RFC 4271 §8.2.2; values are the RFC's names."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class DownReason(Enum):
    """Why a session went to IDLE, as ``SessionDown.reason`` reports it."""

    HOLD_TIMER_EXPIRED = "hold-timer-expired"
    NOTIFICATION_RECEIVED = "notification-received"
    PROTOCOL_ERROR = "protocol-error"  # we sent a NOTIFICATION because of bad input
    CONNECTION_LOST = "connection-lost"
    ADMIN_SHUTDOWN = "admin-shutdown"
    COLLISION = "collision"  # closed by connection collision resolution (RFC 4271 §6.8)
    MAX_PREFIXES = "max-prefixes"  # the peer sent more than its limit (RFC 4486 §4)
    PEER_RESTARTED = "peer-restarted"  # replaced by the peer's new session (RFC 4724 §4.2)
    SEND_HOLD_TIMER_EXPIRED = "send-hold-timer-expired"  # the peer stopped reading (RFC 9687)
    OUTPUT_LIMIT = "output-limit"  # too much unsent output queued (Cease/Out of Resources)


# States in which a TCP connection exists (so a NOTIFICATION can be sent).
CONNECTED = frozenset({State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED})

# (old, new) -> what causes it. A missing key is an illegal transition.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.IDLE, State.CONNECT): "start (active) or connect-retry timer",
    (State.IDLE, State.ACTIVE): "start (passive)",
    (State.CONNECT, State.OPEN_SENT): "connection made",
    (State.CONNECT, State.ACTIVE): "connection failed",
    (State.CONNECT, State.IDLE): "stop",
    (State.ACTIVE, State.CONNECT): "connect-retry timer",
    (State.ACTIVE, State.OPEN_SENT): "connection made",
    (State.ACTIVE, State.IDLE): "stop",
    (State.OPEN_SENT, State.OPEN_CONFIRM): "acceptable OPEN received",
    (State.OPEN_SENT, State.IDLE): "error, NOTIFICATION, hold timer, lost connection or stop",
    (State.OPEN_CONFIRM, State.ESTABLISHED): "KEEPALIVE received",
    (State.OPEN_CONFIRM, State.IDLE): "error, NOTIFICATION, hold timer, lost connection or stop",
    (State.ESTABLISHED, State.IDLE): "error, NOTIFICATION, hold timer, lost connection or stop",
}
