"""Protocol errors as values: a ``BGPError`` is exactly the NOTIFICATION to send (RFC 4271 §6)."""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """NOTIFICATION error codes (RFC 4271 §4.5; ROUTE_REFRESH is RFC 7313,
    SEND_HOLD_TIMER_EXPIRED RFC 9687 §5)."""

    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH = 7
    SEND_HOLD_TIMER_EXPIRED = 8


class HeaderSubcode(IntEnum):
    """Message Header Error subcodes (RFC 4271 §4.5, used as §6.1 says)."""

    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(IntEnum):
    """OPEN Message Error subcodes (RFC 4271 §4.5; 7 is RFC 5492 §5, 11 is RFC 9234)."""

    UNSUPPORTED_VERSION = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7
    ROLE_MISMATCH = 11


class UpdateSubcode(IntEnum):
    """UPDATE Message Error subcodes (RFC 4271 §4.5; 7 is deprecated and left out)."""

    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmSubcode(IntEnum):
    """Finite State Machine Error subcodes (RFC 6608)."""

    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class CeaseSubcode(IntEnum):
    """Cease subcodes (RFC 4486 §3; 9 is RFC 8538, 10 is RFC 9384)."""

    MAXIMUM_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9
    BFD_DOWN = 10


class RouteRefreshSubcode(IntEnum):
    """ROUTE-REFRESH Message Error subcodes (RFC 7313)."""

    INVALID_MESSAGE_LENGTH = 1


_SUBCODES: dict[int, type[IntEnum]] = {
    ErrorCode.MESSAGE_HEADER: HeaderSubcode,
    ErrorCode.OPEN_MESSAGE: OpenSubcode,
    ErrorCode.UPDATE_MESSAGE: UpdateSubcode,
    ErrorCode.FSM: FsmSubcode,
    ErrorCode.CEASE: CeaseSubcode,
    ErrorCode.ROUTE_REFRESH: RouteRefreshSubcode,
}


def error_name(code: int, subcode: int) -> str:
    """Human name for a NOTIFICATION code/subcode pair, e.g. ``Cease/Administrative Shutdown``."""
    try:
        major = ErrorCode(code).name
    except ValueError:
        return f"code {code}/subcode {subcode}"
    major = major.replace("_", " ").title()
    table = _SUBCODES.get(code)
    if table is None:
        return major if subcode == 0 else f"{major}/subcode {subcode}"
    try:
        minor = table(subcode).name.replace("_", " ").title()
    except ValueError:
        minor = "Unspecific" if subcode == 0 else f"subcode {subcode}"
    return f"{major}/{minor}"


class BGPError(Exception):
    """A protocol error; ``(code, subcode, data)`` is the NOTIFICATION that answers it (RFC 4271
    §4.5). ``reason`` is free text for logs, never sent, and ignored by ``==`` and ``hash``."""

    def __init__(self, code: int, subcode: int = 0, data: bytes = b"", reason: str = "") -> None:
        self.code = int(code)
        self.subcode = int(subcode)
        self.data = bytes(data)
        self.reason = reason
        super().__init__(self.describe())

    def describe(self) -> str:
        """``error_name`` of code and subcode, then ``reason`` if any; the exception's text."""
        text = error_name(self.code, self.subcode)
        return f"{text}: {self.reason}" if self.reason else text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BGPError):
            return NotImplemented
        return (self.code, self.subcode, self.data) == (other.code, other.subcode, other.data)

    def __hash__(self) -> int:
        return hash((self.code, self.subcode, self.data))


def header_error(subcode: HeaderSubcode, data: bytes = b"", reason: str = "") -> BGPError:
    """A Message Header Error (RFC 4271 §6.1) for the caller to raise."""
    return BGPError(ErrorCode.MESSAGE_HEADER, subcode, data, reason)


def open_error(subcode: OpenSubcode, data: bytes = b"", reason: str = "") -> BGPError:
    """An OPEN Message Error (RFC 4271 §6.2) for the caller to raise."""
    return BGPError(ErrorCode.OPEN_MESSAGE, subcode, data, reason)


def update_error(subcode: UpdateSubcode, data: bytes = b"", reason: str = "") -> BGPError:
    """An UPDATE Message Error (RFC 4271 §6.3) for the caller to raise."""
    return BGPError(ErrorCode.UPDATE_MESSAGE, subcode, data, reason)
