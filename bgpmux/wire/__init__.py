"""The BGP wire codec: bytes <-> immutable message values. Pure; no I/O."""

from .attributes import PathAttributes
from .capabilities import ADD_PATH_RECEIVE, ADD_PATH_SEND, Capabilities, GracefulRestart
from .constants import IPV4_UNICAST, IPV6_UNICAST, Family
from .errors import BGPError, CeaseSubcode, ErrorCode, OpenSubcode, UpdateSubcode, error_name
from .framer import Framer
from .messages import (
    KEEPALIVE,
    CodecOptions,
    Keepalive,
    Message,
    MpReach,
    MpUnreach,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_body,
    encode_message,
    encode_update,
)
from .prefix import Prefix, prefix_from_str, prefix_to_str

__all__ = [
    "ADD_PATH_RECEIVE",
    "ADD_PATH_SEND",
    "IPV4_UNICAST",
    "IPV6_UNICAST",
    "KEEPALIVE",
    "BGPError",
    "Capabilities",
    "CeaseSubcode",
    "CodecOptions",
    "ErrorCode",
    "Family",
    "Framer",
    "GracefulRestart",
    "Keepalive",
    "Message",
    "MpReach",
    "MpUnreach",
    "Notification",
    "Open",
    "OpenSubcode",
    "PathAttributes",
    "Prefix",
    "RouteRefresh",
    "Update",
    "UpdateSubcode",
    "decode_body",
    "encode_message",
    "encode_update",
    "error_name",
    "prefix_from_str",
    "prefix_to_str",
]
