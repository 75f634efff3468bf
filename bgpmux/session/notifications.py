"""NOTIFICATIONs the session and its owner send, built in one place."""

from __future__ import annotations

from bgpmux.wire import CeaseSubcode, ErrorCode, Notification
from bgpmux.wire.errors import FsmSubcode

from .states import State

MAX_SHUTDOWN_MESSAGE = 255  # octets (RFC 9003, which raised RFC 8203's 128)

HOLD_TIMER_EXPIRED = Notification(ErrorCode.HOLD_TIMER_EXPIRED, 0)
SEND_HOLD_TIMER_EXPIRED = Notification(ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0)  # RFC 9687 §5
OUT_OF_RESOURCES = Notification(ErrorCode.CEASE, CeaseSubcode.OUT_OF_RESOURCES)  # RFC 4486

# Cease subcodes sent as a Hard Reset where RFC 8538's N bit was negotiated (its §5 table), so
# that the peer does not keep our routes, nor we its, as stale.
HARD_RESET_SUBCODES = frozenset(
    {
        CeaseSubcode.MAXIMUM_PREFIXES_REACHED,
        CeaseSubcode.PEER_DECONFIGURED,
        CeaseSubcode.HARD_RESET,
    }
)

# RFC 6608: which FSM error subcode answers an unexpected message in each state.
_FSM_SUBCODE = {
    State.OPEN_SENT: FsmSubcode.UNEXPECTED_IN_OPENSENT,
    State.OPEN_CONFIRM: FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
}


def fsm_error(state: State) -> Notification:
    """The FSM Error for an unexpected message in ``state`` (subcodes RFC 6608; RFC 4271
    §6.6); Unspecified in a state without its own subcode."""
    return Notification(ErrorCode.FSM, _FSM_SUBCODE.get(state, FsmSubcode.UNSPECIFIED))


def cease_shutdown(message: str = "") -> Notification:
    """Cease/Administrative Shutdown carrying an RFC 8203 shutdown communication.

    The message is UTF-8, cut to 255 octets at a character boundary, after one length octet
    (RFC 9003 raised the limit from 128). An empty message sends no data at all.
    """
    raw = message.encode("utf-8")[:MAX_SHUTDOWN_MESSAGE]
    raw = raw.decode("utf-8", "ignore").encode("utf-8")  # drop a character cut in half
    data = bytes((len(raw),)) + raw if raw else b""
    return Notification(ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, data)


def as_hard_reset(notification: Notification) -> Notification:
    """``notification`` wrapped as Cease/Hard Reset (RFC 8538 §3): its code, subcode and data
    become the Hard Reset's data. A Hard Reset is returned unchanged."""
    if notification.code == ErrorCode.CEASE and notification.subcode == CeaseSubcode.HARD_RESET:
        return notification
    data = bytes((notification.code, notification.subcode)) + notification.data
    return Notification(ErrorCode.CEASE, CeaseSubcode.HARD_RESET, data)
