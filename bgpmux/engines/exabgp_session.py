"""What ExaBGP 5.0 tells its API process about a session beyond its routes, pure: the OPENs it
sent and received, the KEEPALIVEs, ROUTE-REFRESHes and NOTIFICATIONs it exchanged, and why a
session ended; turned into the engine's ``SessionStats`` and ``SessionFacts``.

What the engine's configuration asks ExaBGP for (``exabgp_text.exabgp_config``): ``send {
parsed; open; keepalive; notification; }`` and ``receive { parsed; update; open; keepalive;
refresh; }``. What it cannot count, and why (left out of the counters rather than shown as 0):

- UPDATEs sent: ExaBGP reports a sent UPDATE only by decoding it again for its API (``send {
  update; }``), a cost on the path that is already its slowest.
- ROUTE-REFRESHes sent (the BoRR and EoRR framing ExaBGP's answer to a refresh, RFC 7313):
  ExaBGP 5.0.15 sends them on its UPDATE path, and with ``send { refresh; }`` decodes each as
  an UPDATE for its API, fails, and resets the session with UPDATE Message Error.
- NOTIFICATIONs received: their code and subcode come from the ``down`` message's reason
  ("notification received (C,S)"), not from ``receive { notification; }``: with that on, ExaBGP
  5.0.15 calls its API with the wrong arguments when the peer's message header is malformed,
  and resets the session without the NOTIFICATION it owes (RFC 4271 §6.1). Their data (an RFC
  8203 shutdown message) is therefore not known.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any

from ..session.describe import capability_names, notification_words, with_negotiated
from ..session.facts import SessionFacts
from ..session.negotiation import Negotiated, negotiate
from ..session.stats import SessionStats
from ..wire.capabilities import ADD_PATH_RECEIVE, ADD_PATH_SEND, Capabilities
from ..wire.constants import CapabilityCode, Family, MessageType
from ..wire.errors import error_name
from ..wire.messages import Notification, Open
from .exabgp_graceful import FAMILY_BY_WORDS, graceful_restart, multiprotocol_families

log = logging.getLogger("bgpmux.engine.exabgp")
_NOTIFICATION_IN_REASON = re.compile(r"notification (sent|received) \((\d+),(\d+)\)")
_ADD_PATH_BITS = {"receive": ADD_PATH_RECEIVE, "send": ADD_PATH_SEND}


@dataclass(frozen=True)
class MessageSeen:
    """ExaBGP sent (``sent``) or received a message of ``kind`` (a ``MessageType`` name) on its
    session with ``peer``; an OPEN comes with ``open``, a sent NOTIFICATION with
    ``notification``."""

    peer: str
    kind: str
    sent: bool
    open: Open | None = None
    notification: Notification | None = None


def _family(words: Any) -> Family | None:
    return FAMILY_BY_WORDS.get(str(words).replace("/", " "))


# ExaBGP 5.0.15 keys the capabilities of an OPEN it received by code ("65"), and those of the
# OPEN it sent by its own name for the code ("asn4"): both are read.
_CODES_BY_NAME = {
    "multiprotocol": CapabilityCode.MULTIPROTOCOL,
    "route-refresh": CapabilityCode.ROUTE_REFRESH,
    "nexthop": CapabilityCode.EXTENDED_NEXT_HOP,
    "extended-message": CapabilityCode.EXTENDED_MESSAGE,
    "graceful-restart": CapabilityCode.GRACEFUL_RESTART,
    "asn4": CapabilityCode.FOUR_OCTET_AS,
    "add-path": CapabilityCode.ADD_PATH,
    "enhanced-route-refresh": CapabilityCode.ENHANCED_ROUTE_REFRESH,
    "hostname": CapabilityCode.FQDN,
    "cisco-route-refresh": CapabilityCode.ROUTE_REFRESH_CISCO,
}


def _by_code(capabilities: dict[str, Any]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for key, value in capabilities.items():
        word = str(key)
        code = int(word) if word.isdigit() else _CODES_BY_NAME.get(word)
        if code is not None:
            out[int(code)] = value
    return out


def capabilities_from_json(capabilities: dict[str, Any]) -> Capabilities:
    """ExaBGP's JSON of an OPEN's capabilities (keyed by code, ``{"65": {"name": "asn4",
    "asn4": N}, ...}``, or by ExaBGP's name for the code, ``{"asn4": {...}}``) as
    ``Capabilities``; families other than IPv4 and IPv6 unicast are left out, other
    capabilities kept by code only."""
    by_code = _by_code(capabilities)
    codes = set(by_code)
    four = by_code.get(CapabilityCode.FOUR_OCTET_AS)
    graceful = by_code.get(CapabilityCode.GRACEFUL_RESTART)
    add_path: list[tuple[Family, int]] = []
    for words, mode in by_code.get(CapabilityCode.ADD_PATH, {}).items():
        family = _family(words)
        if family is not None:
            bits = sum(bit for word, bit in _ADD_PATH_BITS.items() if word in str(mode))
            add_path.append((family, bits))
    known = {int(c) for c in CapabilityCode} - {int(CapabilityCode.EXTENDED_NEXT_HOP)}
    multiprotocol = by_code.get(CapabilityCode.MULTIPROTOCOL)
    return Capabilities(
        multiprotocol=multiprotocol_families({"1": multiprotocol}) if multiprotocol else (),
        route_refresh=bool(
            codes & {CapabilityCode.ROUTE_REFRESH, CapabilityCode.ROUTE_REFRESH_CISCO}
        ),
        enhanced_route_refresh=CapabilityCode.ENHANCED_ROUTE_REFRESH in codes,
        four_octet_as=int(four["asn4"]) if isinstance(four, dict) and "asn4" in four else None,
        graceful_restart=graceful_restart(graceful) if graceful is not None else None,
        add_path=tuple(add_path),
        extended_message=CapabilityCode.EXTENDED_MESSAGE in codes,
        unknown=tuple((code, b"") for code in sorted(codes - known)),
    )


def open_from_json(message: dict[str, Any]) -> Open:
    """ExaBGP's JSON of an OPEN (``{"version", "asn", "hold_time", "router_id",
    "capabilities"}``) as an ``Open``, its AS taken from the 4-octet AS capability when there
    is one (RFC 6793 §3). Raises KeyError, ValueError or TypeError when a field is missing or
    not a number."""
    capabilities = capabilities_from_json(message.get("capabilities", {}))
    asn = capabilities.four_octet_as or int(message["asn"])
    return Open(
        asn=asn,
        hold_time=int(message["hold_time"]),
        router_id=str(message["router_id"]),
        capabilities=capabilities,
        version=int(message.get("version", 4)),
    )


def parse_seen(peer: str, kind: str, neighbor: dict[str, Any]) -> MessageSeen | None:
    """The ``neighbor`` object of an ExaBGP JSON message of type ``kind`` as ``MessageSeen``
    (KEEPALIVE, OPEN, a sent NOTIFICATION, ROUTE-REFRESH); None for anything else."""
    sent = neighbor.get("direction") == "send"
    if kind == "keepalive":
        return MessageSeen(peer, MessageType.KEEPALIVE.name, sent)
    if kind == "open":
        return MessageSeen(peer, MessageType.OPEN.name, sent, open_from_json(neighbor["open"]))
    if kind == "refresh":
        return MessageSeen(peer, MessageType.ROUTE_REFRESH.name, sent)
    if kind == "notification" and sent:
        body = neighbor["notification"]
        data = bytes.fromhex(str(body.get("data", "")).removeprefix("0x"))
        notification = Notification(int(body["code"]), int(body["subcode"]), data)
        return MessageSeen(peer, MessageType.NOTIFICATION.name, sent, notification=notification)
    return None


class ExaBGPSession:
    """One upstream's session as ExaBGP reports it: message counters over every session since
    start (no UPDATE or ROUTE-REFRESH sent count: see the module docstring), the OPENs of the
    current one, what they negotiated once it is up, the last error with its Unix time, and
    until when (the loop's clock) its routes are kept stale after it went down."""

    def __init__(self, name: str) -> None:
        self.name = name  # the upstream's, for the log
        self.stats = SessionStats()
        for unknown in (MessageType.UPDATE, MessageType.ROUTE_REFRESH):  # not shown as 0
            del self.stats.messages_sent[unknown.name]
        self.local_open: Open | None = None
        self.peer_open: Open | None = None
        self.negotiated: Negotiated | None = None
        self.last_error = ""
        self.last_error_at: float | None = None
        self._sent_notification: str = ""  # words of the NOTIFICATION sent on this session
        self.stale_until: float | None = None

    def seen(self, message: MessageSeen, now: float) -> None:
        """Count ``message`` (``now``: Unix time); keep an OPEN, note a sent NOTIFICATION."""
        counts = self.stats.messages_sent if message.sent else self.stats.messages_received
        counts[message.kind] = counts.get(message.kind, 0) + 1
        if message.open is not None:
            if message.sent:
                self.local_open = message.open
            else:
                self.peer_open = message.open
        if message.notification is not None:
            key = (message.notification.code, message.notification.subcode)
            sent = self.stats.notifications_sent
            sent[key] = sent.get(key, 0) + 1
            self._sent_notification = notification_words(message.notification, False)
            self.last_error, self.last_error_at = self._sent_notification, now

    def received(self, kind: str) -> None:
        """A message of ``kind`` (a ``MessageType`` name) arrived that ``seen`` does not get:
        an UPDATE (End-of-RIB included), a BoRR or EoRR."""
        counts = self.stats.messages_received
        counts[kind] = counts.get(kind, 0) + 1

    def up(self) -> Negotiated | None:
        """The session is Established: what both OPENs negotiated (None when ExaBGP did not
        report both)."""
        self.stats.established += 1
        self.stale_until = None
        if self.local_open is not None and self.peer_open is not None:
            self.negotiated = neg = negotiate(self.local_open, self.peer_open)
            log.info("session established (hold %ds; %s)", neg.hold_time,
                     ", ".join(capability_names(neg)), extra={"peer": self.name})  # fmt: skip
        return self.negotiated

    def down(self, reason: str, now: float) -> None:
        """The session ended for ``reason`` (ExaBGP's words, ``now`` Unix time): a
        NOTIFICATION received in it is counted, and it becomes the last error."""
        found = _NOTIFICATION_IN_REASON.match(reason)
        words = reason
        if found is not None:
            direction, code, subcode = found.group(1), int(found.group(2)), int(found.group(3))
            if direction == "received":
                received = self.stats.notifications_received
                received[(code, subcode)] = received.get((code, subcode), 0) + 1
                counts = self.stats.messages_received
                counts[MessageType.NOTIFICATION.name] += 1
                words = f"received {error_name(code, subcode)}"
            else:
                words = self._sent_notification or f"sent {error_name(code, subcode)}"
        if words:
            self.last_error, self.last_error_at = words, now
        self.forget()

    def forget(self) -> None:
        """The session (or ExaBGP) is gone: its OPENs and what they negotiated go too."""
        self.local_open = self.peer_open = self.negotiated = None
        self._sent_notification = ""

    def ended(self, stale_time: float | None, now: float) -> None:
        """The Established session ended at ``now`` (the loop's clock); its routes are kept
        stale ``stale_time`` seconds (None: not at all, RFC 4724 §4.2)."""
        self.stale_until = now + stale_time if stale_time else None

    def facts(self, identity: SessionFacts, up: bool, now: float) -> SessionFacts:
        """``identity`` (address, AS, local address) with what the session negotiated while
        ``up``, its graceful-restart state at ``now`` (the loop's clock) and its last error."""
        facts = dataclasses.replace(
            identity, last_error=self.last_error, last_error_at=self.last_error_at
        )
        stale_left = None if self.stale_until is None else self.stale_until - now
        return with_negotiated(facts, self.negotiated if up else None, stale_left)
