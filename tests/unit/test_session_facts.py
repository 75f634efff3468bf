"""Session facts from negotiated parameters (``session.describe``) and from what ExaBGP reports
(``engines.exabgp_session``)."""

from __future__ import annotations

import pytest

from bgpmux.engines import exabgp_text as text
from bgpmux.engines.exabgp_session import ExaBGPSession, MessageSeen, open_from_json
from bgpmux.session import negotiate
from bgpmux.session.describe import (
    capability_names,
    down_words,
    graceful_phrase,
    stale_phrase,
    with_negotiated,
)
from bgpmux.session.facts import CAPABILITY_NAMES, SessionFacts
from bgpmux.session.states import DownReason
from bgpmux.wire import (
    ADD_PATH_RECEIVE,
    ADD_PATH_SEND,
    IPV4_UNICAST,
    IPV6_UNICAST,
    Capabilities,
    GracefulRestart,
    Notification,
    Open,
)

GR = GracefulRestart(120, False, True, ((IPV4_UNICAST, False), (IPV6_UNICAST, False)))
OURS = Capabilities(
    multiprotocol=(IPV4_UNICAST, IPV6_UNICAST),
    route_refresh=True,
    enhanced_route_refresh=True,
    four_octet_as=64512,
    graceful_restart=GR,
    add_path=((IPV4_UNICAST, ADD_PATH_SEND),),
    extended_message=True,
)


def opens(peer: Capabilities, hold: int = 90) -> tuple[Open, Open]:
    return Open(64512, 90, "10.0.0.2", OURS), Open(65000, hold, "10.0.0.1", peer)


def test_capability_names_in_the_documented_order() -> None:
    peer = Capabilities(
        multiprotocol=(IPV6_UNICAST, IPV4_UNICAST),
        route_refresh=True,
        enhanced_route_refresh=True,
        four_octet_as=65000,
        graceful_restart=GR,
        add_path=((IPV4_UNICAST, ADD_PATH_RECEIVE),),
        extended_message=True,
    )
    names = capability_names(negotiate(*opens(peer)))
    assert names == (
        "ipv4-unicast", "ipv6-unicast", "route-refresh", "enhanced-route-refresh",
        "4-octet-as", "graceful-restart", "graceful-notification", "add-path-send",
        "extended-message",
    )  # fmt: skip
    assert set(names[2:]) <= set(CAPABILITY_NAMES)


def test_a_plain_peer_negotiates_only_what_it_offered() -> None:
    negotiated = negotiate(*opens(Capabilities(), hold=9))
    facts = with_negotiated(SessionFacts("10.0.0.1", 65000), negotiated)
    # no multiprotocol capability: IPv4 unicast only (RFC 4760 §8); no 4-octet AS
    assert facts.capabilities == ("ipv4-unicast",)
    assert (facts.hold_time, facts.keepalive, facts.graceful_restart) == (9, 3, "")
    assert with_negotiated(facts, None) == SessionFacts("10.0.0.1", 65000)


def test_graceful_restart_phrases() -> None:
    helper = GracefulRestart(120)  # FRR's default: no families, helper only
    assert graceful_phrase(negotiate(*opens(Capabilities(graceful_restart=helper)))) == "helper"
    full = Capabilities(multiprotocol=(IPV4_UNICAST,), graceful_restart=GR)
    assert graceful_phrase(negotiate(*opens(full))) == "negotiated, restart time 120 s"
    assert graceful_phrase(None) == ""
    assert stale_phrase(117.2) == "stale for 118 s"
    assert stale_phrase(-1) == "stale for 0 s"


@pytest.mark.parametrize(
    ("reason", "notification", "detail", "words"),
    [
        (DownReason.NOTIFICATION_RECEIVED, Notification(4, 0), "", "received Hold Timer Expired"),
        (DownReason.ADMIN_SHUTDOWN, Notification(6, 2, b"\x03bye"), "",
         'sent Cease/Administrative Shutdown "bye"'),
        (DownReason.HOLD_TIMER_EXPIRED, Notification(4, 0), "", "sent Hold Timer Expired"),
        (DownReason.CONNECTION_LOST, None, "", "connection lost"),
        (DownReason.PROTOCOL_ERROR, Notification(1, 2), "bad length",
         "sent Message Header/Bad Message Length (bad length)"),
    ],
)  # fmt: skip
def test_down_words(
    reason: DownReason, notification: Notification | None, detail: str, words: str
) -> None:
    assert down_words(reason, notification, detail) == words


# ----------------------------------------------------------------------- ExaBGP's reports

HEAD = (
    '{ "exabgp": "5.0.15", "time": 1796045275.8, "host" : "vm", "pid" : 1, "ppid" : 1,'
    ' "counter": 1, "type": "%s", "neighbor": { "address": { "local": "10.0.0.2", "peer":'
    ' "10.0.0.1" }, "asn": { "local": 64512, "peer": 65000 }, "router-id": "10.0.0.2" , '
)
OPEN = HEAD % "open" + (
    '"direction": "%s", "open": { "version": 4, "asn": %d, "hold_time": %d, "router_id":'
    ' "%s", "capabilities": { "1": { "name": "multiprotocol", "families": [ "ipv4/unicast",'
    ' "ipv6/unicast" ] }, "2": { "name": "route-refresh", "variant": "RFC" }, "70": { "name":'
    ' "enhanced-route-refresh" }, "65": { "name": "asn4", "asn4": %d }, "64": { "name":'
    ' "graceful restart", "time": 120, "address-family-flags": { "ipv4/unicast": [ ] },'
    ' "restart-flags": [ ] }, "69": { "name": "addpath", "ipv4/unicast": "send/receive" } } } } }'
)
# as ExaBGP 5.0.15 writes the OPEN it sent: capabilities keyed by its names, not codes
SENT_OPEN = HEAD % "open" + (
    '"direction": "send", "open": { "version": 4, "asn": 64512, "hold_time": 9, "router_id":'
    ' "10.0.0.2", "capabilities": { "multiprotocol": { "name": "multiprotocol", "families": ['
    ' "ipv4/unicast", "ipv6/unicast" ] }, "asn4": { "name": "asn4", "asn4": 64512 },'
    ' "graceful-restart": { "name": "graceful restart", "time": 120, "address-family-flags": {'
    ' "ipv4/unicast": [ "restart" ] , "ipv6/unicast": [ "restart" ] }, "restart-flags": ['
    ' "forwarding" ]  }, "route-refresh": { "name": "route-refresh", "variant": "RFC" },'
    ' "enhanced-route-refresh": { "name": "enhanced-route-refresh" }, "hostname": {'
    ' "host-name": null, "domain-name": null } } } } }'
)
RECEIVED_OPEN = OPEN % ("receive", 23456, 30, "10.0.0.1", 4200000000)  # AS_TRANS in the header
KEEPALIVE = HEAD % "keepalive" + '"direction": "%s"  } }'
NOTIFICATION_SENT = HEAD % "notification" + (
    '"direction": "send", "notification": { "code": 6, "subcode": 2, "data": "0x03627965",'
    ' "message": "bye" }  } }'
)


def test_sent_open_from_exabgp_json_keyed_by_names() -> None:
    parsed = text.parse_message(SENT_OPEN)
    assert isinstance(parsed, MessageSeen) and parsed.open is not None
    caps = parsed.open.capabilities
    assert caps.multiprotocol == (IPV4_UNICAST, IPV6_UNICAST)
    assert caps.route_refresh and caps.enhanced_route_refresh and caps.four_octet_as == 64512
    assert caps.graceful_restart is not None and caps.graceful_restart.restart_time == 120


def test_open_from_exabgp_json() -> None:
    parsed = text.parse_message(RECEIVED_OPEN)
    assert isinstance(parsed, text.OpenReceived) and parsed.open is not None
    caps = parsed.open.capabilities
    assert parsed.open.asn == 4200000000 and parsed.open.hold_time == 30
    assert caps.multiprotocol == (IPV4_UNICAST, IPV6_UNICAST)
    assert caps.route_refresh and caps.enhanced_route_refresh and not caps.extended_message
    assert caps.add_path == ((IPV4_UNICAST, ADD_PATH_SEND | ADD_PATH_RECEIVE),)
    assert caps.graceful_restart == GracefulRestart(120, False, False, ((IPV4_UNICAST, False),))
    assert open_from_json({"asn": 65000, "hold_time": 0, "router_id": "1.1.1.1"}) == Open(
        65000, 0, "1.1.1.1"
    )


def seen(session: ExaBGPSession, line: str) -> None:
    message = text.parse_message(line)
    if isinstance(message, text.OpenReceived):
        message = MessageSeen(message.peer, "OPEN", False, message.open)
    assert isinstance(message, MessageSeen), message
    session.seen(message, 100.0)


def test_exabgp_session_counts_negotiates_and_keeps_the_last_error() -> None:
    session = ExaBGPSession("tor")
    # ExaBGP does not report them
    assert not {"UPDATE", "ROUTE_REFRESH"} & set(session.stats.messages_sent)
    for line in (SENT_OPEN, RECEIVED_OPEN, KEEPALIVE % "send", KEEPALIVE % "receive",
                 KEEPALIVE % "receive"):  # fmt: skip
        seen(session, line)
    session.received("UPDATE")
    negotiated = session.up()
    assert negotiated is not None
    assert (negotiated.hold_time, negotiated.keepalive_time) == (9, 3)
    facts = with_negotiated(SessionFacts(), negotiated)
    assert facts.capabilities[:2] == ("ipv4-unicast", "ipv6-unicast")
    assert facts.capabilities[2:] == (
        "route-refresh", "enhanced-route-refresh", "4-octet-as", "graceful-restart",
    )  # fmt: skip
    stats = session.stats
    assert stats.messages_sent["OPEN"] == 1 and stats.messages_sent["KEEPALIVE"] == 1
    assert stats.messages_received["KEEPALIVE"] == 2 and stats.messages_received["UPDATE"] == 1
    assert stats.established == 1

    session.down("notification received (6,4)", 200.0)
    assert stats.notifications_received == {(6, 4): 1}
    assert stats.messages_received["NOTIFICATION"] == 1
    assert (session.last_error, session.last_error_at) == (
        "received Cease/Administrative Reset",
        200.0,
    )
    assert session.negotiated is None and session.up() is None  # no OPENs of the new session

    seen(session, NOTIFICATION_SENT)
    session.down("notification sent (6,2)", 300.0)
    assert stats.notifications_sent == {(6, 2): 1}
    assert stats.messages_sent["NOTIFICATION"] == 1
    assert session.last_error == 'sent Cease/Administrative Shutdown "bye"'
    assert session.last_error_at == 300.0
    session.down("connection to 10.0.0.1:179 failed", 400.0)
    assert session.last_error == "connection to 10.0.0.1:179 failed"
    assert stats.notifications_received == {(6, 4): 1}  # unchanged


def test_a_received_notification_is_not_reported_as_a_message() -> None:
    line = NOTIFICATION_SENT.replace('"send"', '"receive"')
    assert text.parse_message(line) is None  # its code comes with the "down" message
