"""The session FSM on a fake clock, with two in-memory sessions wired back to back."""

from __future__ import annotations

import itertools
import struct
import time
from dataclasses import replace

import pytest

from bgpmux.session import (
    TRANSITIONS,
    ConnectRequested,
    DownReason,
    Event,
    RouteRefreshReceived,
    Session,
    SessionConfig,
    SessionDown,
    SessionEstablished,
    State,
    StateChanged,
    UpdateReceived,
    cease_shutdown,
    local_open,
    negotiate,
)
from bgpmux.wire import (
    ADD_PATH_RECEIVE,
    ADD_PATH_SEND,
    IPV4_UNICAST,
    IPV6_UNICAST,
    KEEPALIVE,
    Capabilities,
    Family,
    Framer,
    GracefulRestart,
    Message,
    Notification,
    Open,
    PathAttributes,
    RouteRefresh,
    Update,
    decode_body,
    encode_message,
    prefix_from_str,
)
from bgpmux.wire.constants import MAX_EXTENDED_MESSAGE_LEN

A_ID, B_ID = "198.51.100.1", "198.51.100.2"
NEXT_HOP = bytes((198, 51, 100, 1))


def config(**kw: object) -> SessionConfig:
    base: dict[str, object] = {"local_asn": 64512, "router_id": A_ID, "passive": True}
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def drain(session: Session) -> list[Event]:
    out: list[Event] = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def parse(data: bytes) -> list[Message]:
    framer = Framer(MAX_EXTENDED_MESSAGE_LEN)
    return [decode_body(kind, body) for kind, body in framer.feed(data)]


def pump(a: Session, b: Session, now: float) -> None:
    """Carry bytes both ways until neither side has anything to say."""
    for _ in range(100):
        ab, ba = a.data_to_send(), b.data_to_send()
        if not ab and not ba:
            return
        if ab and b.state is not State.IDLE:
            b.receive_data(ab, now)
        if ba and a.state is not State.IDLE:
            a.receive_data(ba, now)
    raise AssertionError("sessions did not go quiet")


def connect(a: Session, b: Session, now: float = 0.0) -> None:
    for s in (a, b):
        s.start(now)
        s.connection_made(now)
    pump(a, b, now)


def established_pair(
    a_kw: dict[str, object] | None = None, b_kw: dict[str, object] | None = None
) -> tuple[Session, Session]:
    a = Session(config(**(a_kw or {})), 0.0)
    b = Session(config(router_id=B_ID, **(b_kw or {})), 0.0)
    connect(a, b)
    assert a.state is b.state is State.ESTABLISHED
    drain(a)
    drain(b)
    return a, b


def open_sent(**kw: object) -> Session:
    s = Session(config(**kw), 0.0)
    s.start(0.0)
    s.connection_made(0.0)
    s.data_to_send()
    drain(s)
    return s


def peer_open(**kw: object) -> bytes:
    fields: dict[str, object] = {
        "asn": 64512,
        "hold_time": 90,
        "router_id": B_ID,
        "capabilities": Capabilities(
            multiprotocol=(IPV4_UNICAST, IPV6_UNICAST), four_octet_as=64512, route_refresh=True
        ),
    }
    fields.update(kw)
    return encode_message(Open(**fields))  # type: ignore[arg-type]


def update(*prefixes: str, **attrs: object) -> Update:
    pa = PathAttributes(as_path=((2, (64512,)),), next_hop=NEXT_HOP, **attrs)  # type: ignore[arg-type]
    return Update(attributes=pa, nlri=tuple(prefix_from_str(p)[1] for p in prefixes))


def downs(events: list[Event]) -> list[SessionDown]:
    return [e for e in events if isinstance(e, SessionDown)]


def sent_notification(session: Session) -> Notification:
    msgs = parse(session.data_to_send())
    assert isinstance(msgs[-1], Notification)
    return msgs[-1]


def assert_refused(session: Session, code: int, subcode: int) -> SessionDown:
    note = sent_notification(session)
    assert (note.code, note.subcode) == (code, subcode)
    (down,) = downs(drain(session))
    assert down.reason is DownReason.PROTOCOL_ERROR
    assert down.notification == note
    assert session.state is State.IDLE
    assert session.close_requested
    assert session.get_timer() is None
    return down


# ---------------------------------------------------------------------------- handshake


def test_passive_handshake_reaches_established_with_negotiated_values() -> None:
    a = Session(config(hold_time=90), 0.0)
    b = Session(config(router_id=B_ID, hold_time=30, families=(IPV4_UNICAST,)), 0.0)
    connect(a, b)
    events = drain(a)
    assert events == [
        StateChanged(State.IDLE, State.ACTIVE),
        StateChanged(State.ACTIVE, State.OPEN_SENT),
        StateChanged(State.OPEN_SENT, State.OPEN_CONFIRM),
        StateChanged(State.OPEN_CONFIRM, State.ESTABLISHED),
        SessionEstablished(a.negotiated),  # type: ignore[arg-type]
    ]
    for s in (a, b):
        neg = s.negotiated
        assert s.state is State.ESTABLISHED
        assert neg is not None
        assert neg.hold_time == 30 and neg.keepalive_time == 10
        assert neg.families == (IPV4_UNICAST,)
        assert neg.asn4 and neg.route_refresh and neg.enhanced_route_refresh
        assert not neg.extended_message and not neg.peer_offered_add_path
        assert neg.peer_graceful_restart is None
        assert neg.options.asn4 and neg.options.max_message_len == 4096
    assert a.negotiated is not None and a.negotiated.peer_open.router_id == B_ID
    assert a.stats.messages_sent["OPEN"] == 1 and a.stats.messages_received["KEEPALIVE"] == 1
    assert a.stats.established == 1


def test_handshake_fed_one_byte_at_a_time() -> None:
    a, b = Session(config(), 0.0), Session(config(router_id=B_ID), 0.0)
    for s in (a, b):
        s.start(0.0)
        s.connection_made(0.0)
    for _ in range(3):
        ab, ba = a.data_to_send(), b.data_to_send()
        for i in range(len(ab)):
            b.receive_data(ab[i : i + 1], 0.0)
        for i in range(len(ba)):
            a.receive_data(ba[i : i + 1], 0.0)
    assert a.state is b.state is State.ESTABLISHED


def test_our_open_offers_what_is_configured_and_never_add_path() -> None:
    cfg = config(graceful_restart_time=120, extended_message=True)
    s = Session(cfg, 0.0)
    s.start(0.0)
    s.connection_made(0.0)
    (sent,) = parse(s.data_to_send())
    assert isinstance(sent, Open)
    caps = sent.capabilities
    assert sent.asn == 64512 and sent.hold_time == 90 and sent.router_id == A_ID
    assert caps.four_octet_as == 64512
    assert caps.multiprotocol == (IPV4_UNICAST, IPV6_UNICAST)
    assert caps.route_refresh and caps.enhanced_route_refresh and caps.extended_message
    assert caps.graceful_restart == GracefulRestart(
        120, False, False, ((IPV4_UNICAST, True), (IPV6_UNICAST, True))
    )
    assert caps.add_path == ()
    assert s.get_timer() == 240.0


def test_negotiate_without_multiprotocol_means_ipv4_unicast_only() -> None:
    local = local_open(config())
    peer = Open(asn=65000, hold_time=0, router_id=B_ID)
    neg = negotiate(local, peer)
    assert neg.families == (IPV4_UNICAST,)
    assert neg.hold_time == 0 and neg.keepalive_time == 0
    assert not neg.asn4 and not neg.options.asn4
    assert negotiate(local, replace(peer, hold_time=3)).keepalive_time == 1


def test_add_path_offered_by_the_peer_is_declined() -> None:
    s = open_sent()
    caps = Capabilities(
        multiprotocol=(IPV4_UNICAST,),
        four_octet_as=64512,
        add_path=((IPV4_UNICAST, ADD_PATH_SEND | ADD_PATH_RECEIVE),),
    )
    s.receive_data(peer_open(capabilities=caps) + encode_message(KEEPALIVE), 0.0)
    assert s.state is State.ESTABLISHED
    neg = s.negotiated
    assert neg is not None and neg.peer_offered_add_path
    assert local_open(s.config).capabilities.add_path == ()
    # Plain NLRI (no path identifiers) decode as such.
    s.receive_data(encode_message(update("203.0.113.0/24")), 1.0)
    got = [e for e in drain(s) if isinstance(e, UpdateReceived)]
    assert got[0].update.nlri == (prefix_from_str("203.0.113.0/24")[1],)


def test_peer_graceful_restart_is_reported_only_when_we_offer_it_too() -> None:
    gr = GracefulRestart(120, True, False, ((IPV4_UNICAST, True),))
    a, _ = established_pair({"graceful_restart_time": 60}, {"graceful_restart_time": 120})
    assert a.negotiated is not None
    assert a.negotiated.peer_graceful_restart == GracefulRestart(
        120, False, False, ((IPV4_UNICAST, True), (IPV6_UNICAST, True))
    )
    for ours, expected in ((30, gr), (None, None)):
        s = open_sent(graceful_restart_time=ours)
        caps = Capabilities(multiprotocol=(IPV4_UNICAST,), four_octet_as=64512, graceful_restart=gr)
        s.receive_data(peer_open(capabilities=caps), 0.0)
        assert s.negotiated is not None and s.negotiated.peer_graceful_restart == expected


def test_extended_message_raises_the_framer_limit() -> None:
    big = update(*(f"10.{i // 256}.{i % 256}.0/24" for i in range(1500)))
    a, b = established_pair({"extended_message": True}, {"extended_message": True})
    assert a.negotiated is not None and a.negotiated.options.max_message_len == 65535
    b.send_update(big, 1.0)
    data = b.data_to_send()
    assert len(data) > 4096
    a.receive_data(data, 1.0)
    (got,) = drain(a)
    assert isinstance(got, UpdateReceived) and len(got.update.nlri) == 1500

    # Offered by one side only: a large message is a header error, even though the framer of
    # the side that offered it could read it.
    a, b = established_pair({"extended_message": True}, {})
    with pytest.raises(ValueError):
        b.send_update(big, 1.0)
    a.receive_data(encode_message(big, replace(a.negotiated.options, max_message_len=65535)), 1.0)  # type: ignore[union-attr]
    down = assert_refused(a, 1, 2)
    assert down.notification is not None
    assert struct.unpack("!H", down.notification.data)[0] > 4096


# ---------------------------------------------------------------------------- timers


def test_hold_timer_expires_at_the_negotiated_time_and_not_before() -> None:
    a, _ = established_pair({"hold_time": 30}, {"hold_time": 60})
    assert a.get_timer() == 10.0  # the keepalive comes first
    a.handle_timer(29.999)
    assert a.state is State.ESTABLISHED
    assert [type(m) for m in parse(a.data_to_send())] == [type(KEEPALIVE)]
    a.handle_timer(30.0)
    note = sent_notification(a)
    assert (note.code, note.subcode) == (4, 0)
    (down,) = downs(drain(a))
    assert down.reason is DownReason.HOLD_TIMER_EXPIRED and down.notification == note
    assert a.state is State.IDLE and a.close_requested
    assert a.stats.notifications_sent == {(4, 0): 1}


def test_every_received_message_restarts_the_hold_timer() -> None:
    a, _b = established_pair({"hold_time": 30}, {"hold_time": 30})
    a.receive_data(encode_message(KEEPALIVE), 25.0)
    a.handle_timer(54.9)
    assert a.state is State.ESTABLISHED
    update_bytes = encode_message(update("203.0.113.0/24"))
    a.receive_data(update_bytes[:30], 50.0)  # part of a message does not count
    a.receive_data(update_bytes[30:], 54.9)
    a.handle_timer(84.8)
    assert a.state is State.ESTABLISHED
    a.handle_timer(84.9)
    assert a.state is State.IDLE


def test_keepalives_every_third_of_the_hold_time_keep_the_session_up() -> None:
    a, b = established_pair({"hold_time": 30}, {"hold_time": 90})
    now = 0.0
    times: list[float] = []
    while now < 300.0:
        deadline = min(t for t in (a.get_timer(), b.get_timer()) if t is not None)
        now = deadline
        for s in (a, b):
            s.handle_timer(now)
        out = a.data_to_send()
        if KEEPALIVE in parse(out):
            times.append(now)
        b.receive_data(out, now)
        pump(a, b, now)
    assert a.state is b.state is State.ESTABLISHED
    assert times[:3] == [10.0, 20.0, 30.0]
    assert all(t2 - t1 == 10.0 for t1, t2 in itertools.pairwise(times))


def test_sending_an_update_restarts_the_keepalive_timer() -> None:
    a, _ = established_pair({"hold_time": 30}, {"hold_time": 30})
    a.send_update(update("203.0.113.0/24"), 8.0)
    assert a.get_timer() == 18.0
    a.send_updates([encode_message(update("203.0.113.0/25"))], 9.0)
    assert a.get_timer() == 19.0
    assert a.stats.messages_sent["UPDATE"] == 2


def test_hold_time_zero_means_no_timers() -> None:
    a, b = established_pair({"hold_time": 0}, {"hold_time": 90})
    assert a.negotiated is not None and a.negotiated.hold_time == 0
    assert a.get_timer() is None and b.get_timer() is None
    a.handle_timer(1e9)
    assert a.state is State.ESTABLISHED and a.data_to_send() == b""


def test_open_sent_hold_timer() -> None:
    s = open_sent()
    s.handle_timer(239.0)
    assert s.state is State.OPEN_SENT
    s.handle_timer(240.0)
    assert sent_notification(s) == Notification(4, 0)
    assert s.state is State.IDLE


# ---------------------------------------------------------------------------- OPEN checks


def test_bad_peer_as_is_refused_and_the_peer_sees_the_notification() -> None:
    a = Session(config(peer_asn=65001), 0.0)
    b = Session(config(router_id=B_ID), 0.0)
    for s in (a, b):
        s.start(0.0)
        s.connection_made(0.0)
    a.receive_data(b.data_to_send(), 0.0)
    out = a.data_to_send()
    msgs = parse(out)
    assert isinstance(msgs[0], Open) and msgs[-1] == Notification(2, 2)
    down = downs(drain(a))[0]
    assert down.reason is DownReason.PROTOCOL_ERROR and "64512" in down.detail
    assert a.state is State.IDLE and a.close_requested
    b.receive_data(out, 0.0)
    (bdown,) = downs(drain(b))
    assert bdown.reason is DownReason.NOTIFICATION_RECEIVED
    assert bdown.notification == Notification(2, 2)
    assert b.stats.notifications_received == {(2, 2): 1}
    assert not b.close_requested or b.state is State.IDLE


def test_as_zero_is_a_bad_peer_as_even_when_any_as_is_accepted() -> None:
    s = open_sent()
    s.receive_data(peer_open(asn=0, capabilities=Capabilities(four_octet_as=0)), 0.0)
    assert_refused(s, 2, 2)


@pytest.mark.parametrize("hold", [1, 2])
def test_unacceptable_hold_time(hold: int) -> None:
    s = open_sent()
    s.receive_data(peer_open(hold_time=hold), 0.0)
    assert_refused(s, 2, 6)


def test_same_router_id_on_ibgp_is_always_refused() -> None:
    s = open_sent(forbid_same_router_id=False)
    s.receive_data(peer_open(router_id=A_ID), 0.0)
    assert_refused(s, 2, 3)


def test_same_router_id_on_ebgp() -> None:
    caps = Capabilities(multiprotocol=(IPV4_UNICAST,), four_octet_as=65001)
    ok = open_sent(forbid_same_router_id=False)
    ok.receive_data(peer_open(asn=65001, router_id=A_ID, capabilities=caps), 0.0)
    assert ok.state is State.OPEN_CONFIRM
    refused = open_sent()
    refused.receive_data(peer_open(asn=65001, router_id=A_ID, capabilities=caps), 0.0)
    assert_refused(refused, 2, 3)


def test_zero_router_id_and_bad_version() -> None:
    s = open_sent()
    s.receive_data(peer_open(router_id="0.0.0.0"), 0.0)
    assert_refused(s, 2, 3)
    s = open_sent()
    s.receive_data(peer_open(version=3), 0.0)
    assert assert_refused(s, 2, 1).notification == Notification(2, 1, b"\x00\x04")


# ---------------------------------------------------------------------------- FSM errors


def test_update_before_established_is_an_fsm_error() -> None:
    s = open_sent()
    s.receive_data(encode_message(update("203.0.113.0/24")), 0.0)
    assert_refused(s, 5, 1)
    s = open_sent()
    s.receive_data(peer_open() + encode_message(update("203.0.113.0/24")), 0.0)
    assert s.state is State.IDLE
    msgs = parse(s.data_to_send())
    assert msgs == [KEEPALIVE, Notification(5, 2)]


def test_keepalive_in_open_sent_and_open_in_established() -> None:
    s = open_sent()
    s.receive_data(encode_message(KEEPALIVE), 0.0)
    assert_refused(s, 5, 1)
    a, _ = established_pair()
    a.receive_data(peer_open(), 1.0)
    assert_refused(a, 5, 3)


def test_notification_received_in_open_sent() -> None:
    s = open_sent()
    s.receive_data(encode_message(cease_shutdown("bye")), 0.0)
    (down,) = downs(drain(s))
    assert down.reason is DownReason.NOTIFICATION_RECEIVED
    assert down.notification == cease_shutdown("bye") and "bye" in down.detail
    assert s.data_to_send() == b"" and s.state is State.IDLE


# ---------------------------------------------------------------------------- header errors


def test_bad_marker() -> None:
    a, _ = established_pair()
    a.receive_data(b"\x00" * 16 + b"\x00\x13\x04", 1.0)
    assert_refused(a, 1, 1)


def test_bad_length_and_bad_type() -> None:
    a, _ = established_pair()
    a.receive_data(b"\xff" * 16 + b"\x00\x14\x04\x00", 1.0)
    assert assert_refused(a, 1, 2).notification == Notification(1, 2, b"\x00\x14")
    a, _ = established_pair()
    a.receive_data(b"\xff" * 16 + b"\x00\x13\x09", 1.0)
    assert assert_refused(a, 1, 3).notification == Notification(1, 3, b"\x09")


def test_error_in_a_later_message_of_the_same_read() -> None:
    a, _ = established_pair()
    good = encode_message(update("203.0.113.0/24"))
    a.receive_data(good, 1.0)
    a.receive_data(good + b"\x00" * 19 + good, 1.0)
    events = drain(a)
    assert isinstance(events[0], UpdateReceived)
    # The framer checks every header of a read before returning any frame, so the good UPDATE
    # in front of the bad header is not reported; the session is reset anyway.
    assert [type(e) for e in events[1:]] == [StateChanged, SessionDown]
    assert parse(a.data_to_send()) == [Notification(1, 1)]
    a.receive_data(good, 2.0)  # late bytes after the error are ignored
    assert drain(a) == []


# ---------------------------------------------------------------------------- updates


def test_updates_received_including_treat_as_withdraw() -> None:
    a, b = established_pair()
    bad = Update(nlri=(prefix_from_str("203.0.113.0/24")[1],))  # NLRI without attributes
    many = [update(f"10.0.{i}.0/24") for i in range(50)]
    b.send_updates([encode_message(u) for u in [*many, bad]], 1.0)
    a.receive_data(b.data_to_send(), 1.0)
    got = [e.update for e in drain(a) if isinstance(e, UpdateReceived)]
    assert got[:50] == many
    assert got[50].treat_as_withdraw is not None
    assert list(got[50].withdrawals()) == [(IPV4_UNICAST, bad.nlri)]
    assert a.stats.messages_received["UPDATE"] == 51


def test_a_hundred_thousand_prefixes_are_fast() -> None:
    a, _b = established_pair({"extended_message": True}, {"extended_message": True})
    prefixes = [bytes((32, 10, i >> 16, i >> 8 & 255, i & 255)) for i in range(100_000)]
    attrs = update().attributes
    opts = a.negotiated.options  # type: ignore[union-attr]
    msgs = [
        encode_message(Update(attributes=attrs, nlri=tuple(prefixes[i : i + 10_000])), opts)
        for i in range(0, 100_000, 10_000)
    ]
    msgs += [
        encode_message(Update(attributes=attrs, nlri=tuple(prefixes[i : i + 800])))
        for i in range(0, 100_000, 800)
    ]
    data = b"".join(msgs)
    start = time.perf_counter()
    a.receive_data(data, 1.0)
    elapsed = time.perf_counter() - start
    total = sum(len(e.update.nlri) for e in drain(a) if isinstance(e, UpdateReceived))
    assert total == 200_000
    assert elapsed < 2.0


def test_send_update_outside_established_is_a_caller_bug() -> None:
    s = open_sent()
    with pytest.raises(RuntimeError):
        s.send_updates([b""], 0.0)
    with pytest.raises(RuntimeError):
        s.send_update(update("203.0.113.0/24"), 0.0)
    with pytest.raises(RuntimeError):
        s.send_route_refresh(IPV4_UNICAST, 0.0)


def test_route_refresh_both_ways() -> None:
    a, b = established_pair()
    b.send_route_refresh(IPV6_UNICAST, 1.0)
    a.receive_data(b.data_to_send(), 1.0)
    assert drain(a) == [RouteRefreshReceived(RouteRefresh(IPV6_UNICAST, 0))]
    # A family we did not advertise, and an unknown subtype, are ignored (RFC 2918, 7313).
    odd = RouteRefresh(Family(25, 70))
    a.receive_data(encode_message(odd) + encode_message(RouteRefresh(IPV4_UNICAST, 7)), 1.0)
    assert drain(a) == [] and a.state is State.ESTABLISHED
    with pytest.raises(RuntimeError):
        b.send_route_refresh(Family(25, 70), 1.0)
    a.receive_data(b"\xff" * 16 + b"\x00\x18\x05" + b"\x00\x01\x00\x01\x00", 1.0)
    assert_refused(a, 7, 1)


# ---------------------------------------------------------------------------- stop, loss


def test_stop_sends_cease_admin_shutdown_with_the_message() -> None:
    a, b = established_pair()
    a.stop(5.0, cease_shutdown("maintenance: replacing the ToR"))
    out = a.data_to_send()
    assert parse(out) == [Notification(6, 2, b"\x1emaintenance: replacing the ToR")]
    (down,) = downs(drain(a))
    assert down.reason is DownReason.ADMIN_SHUTDOWN and "replacing" in down.detail
    assert a.state is State.IDLE and a.close_requested and a.get_timer() is None
    b.receive_data(out, 5.0)
    (bdown,) = downs(drain(b))
    assert bdown.reason is DownReason.NOTIFICATION_RECEIVED
    assert '"maintenance: replacing the ToR"' in bdown.detail


def test_stop_before_a_connection_sends_nothing() -> None:
    s = Session(config(), 0.0)
    s.start(0.0)
    s.stop(0.0, cease_shutdown(), DownReason.MAX_PREFIXES)
    assert s.data_to_send() == b""
    assert downs(drain(s))[0].reason is DownReason.MAX_PREFIXES
    s.stop(0.0, cease_shutdown())  # already idle: nothing more
    assert drain(s) == []


def test_cease_shutdown_is_bounded_to_255_octets_on_a_character_boundary() -> None:
    assert cease_shutdown() == Notification(6, 2, b"")
    note = cease_shutdown("é" * 200)
    assert note.data[0] == 254 and len(note.data) == 255
    assert note.data[1:].decode("utf-8") == "é" * 127


def test_connection_lost() -> None:
    a, _ = established_pair()
    a.connection_lost(3.0)
    (down,) = downs(drain(a))
    assert down == SessionDown(DownReason.CONNECTION_LOST, None, "connection lost")
    assert a.state is State.IDLE and a.data_to_send() == b"" and a.get_timer() is None
    a.connection_lost(4.0)
    assert drain(a) == []


# ---------------------------------------------------------------------------- active role


def test_active_role_dials_retries_and_redials_after_a_failure() -> None:
    s = Session(config(passive=False, connect_retry_time=5.0), 0.0)
    s.start(0.0)
    assert drain(s) == [StateChanged(State.IDLE, State.CONNECT), ConnectRequested()]
    s.connection_failed(1.0)
    assert s.state is State.ACTIVE and s.get_timer() == 6.0
    s.handle_timer(5.9)
    assert drain(s) == [StateChanged(State.CONNECT, State.ACTIVE)]
    s.handle_timer(6.0)
    assert drain(s) == [StateChanged(State.ACTIVE, State.CONNECT), ConnectRequested()]
    s.connection_made(7.0)
    assert s.state is State.OPEN_SENT and not s.close_requested
    s.connection_lost(8.0)
    assert s.state is State.IDLE and s.get_timer() == 13.0
    drain(s)
    s.handle_timer(13.0)
    assert drain(s) == [StateChanged(State.IDLE, State.CONNECT), ConnectRequested()]
    s.stop(14.0, cease_shutdown())
    assert s.get_timer() is None


def test_caller_bugs_raise_runtime_error() -> None:
    s = Session(config(), 0.0)
    with pytest.raises(RuntimeError):
        s.connection_made(0.0)
    s.start(0.0)
    with pytest.raises(RuntimeError):
        s.start(0.0)
    with pytest.raises(RuntimeError):
        s.connection_failed(0.0)  # passive sessions never dial
    with pytest.raises(RuntimeError):
        s.receive_data(b"x", 0.0)  # no connection yet


def test_transition_table_has_no_shortcuts() -> None:
    assert (State.IDLE, State.ESTABLISHED) not in TRANSITIONS
    assert (State.OPEN_SENT, State.ESTABLISHED) not in TRANSITIONS
    assert all(new is not State.IDLE or old is not State.IDLE for old, new in TRANSITIONS)
    assert all((s, State.IDLE) in TRANSITIONS for s in State if s is not State.IDLE)


def test_config_is_checked() -> None:
    for bad in (
        {"hold_time": 2},
        {"router_id": "0.0.0.0"},
        {"router_id": "a"},
        {"local_asn": 0},
        {"families": ()},
        {"graceful_restart_time": 5000},
    ):
        with pytest.raises(ValueError):
            config(**bad)
