"""Every reachable state x every kind of input: the session either handles it or, for a caller
bug, raises RuntimeError; and its invariants hold afterwards (h2's state-machine sweep)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgpmux.session import (
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
)
from bgpmux.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    KEEPALIVE,
    Capabilities,
    Framer,
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

EVENT_TYPES = (
    StateChanged,
    SessionEstablished,
    UpdateReceived,
    RouteRefreshReceived,
    SessionDown,
    ConnectRequested,
)
HEADER = b"\xff" * 16


def _frame(kind: int, body: bytes) -> bytes:
    return HEADER + (19 + len(body)).to_bytes(2, "big") + bytes((kind,)) + body


def _open(**kw: object) -> bytes:
    fields: dict[str, object] = {
        "asn": 64512,
        "hold_time": 9,
        "router_id": "198.51.100.2",
        "capabilities": Capabilities(
            multiprotocol=(IPV4_UNICAST, IPV6_UNICAST),
            four_octet_as=64512,
            route_refresh=True,
            enhanced_route_refresh=True,
        ),
    }
    fields.update(kw)
    return encode_message(Open(**fields))  # type: ignore[arg-type]


_ATTRS = PathAttributes(as_path=((2, (64512,)),), next_hop=bytes((198, 51, 100, 1)))
_NET = prefix_from_str("203.0.113.0/24")[1]

# Named wire inputs: valid and invalid messages of every type.
MESSAGES: dict[str, bytes] = {
    "open": _open(),
    "open-bad-as": _open(asn=65001, capabilities=Capabilities(four_octet_as=65001)),
    "open-hold-1": _open(hold_time=1),
    "open-same-id": _open(router_id="198.51.100.1"),
    "open-bad-version": _open(version=3),
    "open-bad-param": _frame(1, bytes.fromhex("04fc000009c633640203090100")),
    "keepalive": encode_message(KEEPALIVE),
    "keepalive-long": _frame(4, b"\x00"),
    "update": encode_message(Update(attributes=_ATTRS, nlri=(_NET,))),
    "update-withdraw": encode_message(Update(withdrawn=(_NET,))),
    "update-treat-as-withdraw": encode_message(Update(nlri=(_NET,))),
    "update-bad-attr-length": _frame(2, b"\x00\x00\x00\x04\x40\x01\x09\x00"),
    "update-bad-nlri": _frame(2, b"\x00\x00\x00\x00\x21\x0a"),
    "update-short": _frame(2, b"\x00\x05\x00\x00"),
    "notification": encode_message(cease_shutdown("bye")),
    "route-refresh": encode_message(RouteRefresh(IPV4_UNICAST)),
    "route-refresh-borr": encode_message(RouteRefresh(IPV6_UNICAST, 1)),
    "route-refresh-bad-length": _frame(5, b"\x00\x01\x00\x01\x00"),
    "bad-marker": b"\x00" * 16 + b"\x00\x13\x04",
    "bad-type": HEADER + b"\x00\x13\x07",
    "bad-length": HEADER + b"\x00\x12\x04",
    "too-long": HEADER + b"\x10\x01\x02" + b"\x00" * 4078,
}


# ---------------------------------------------------------------------------- reaching states


def _config(**kw: object) -> SessionConfig:
    base: dict[str, object] = {
        "local_asn": 64512,
        "router_id": "198.51.100.1",
        "peer_asn": 64512,
        "hold_time": 9,
        "passive": True,
    }
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def _idle() -> Session:
    return Session(_config(), 0.0)


def _idle_after_down() -> Session:
    s = _open_sent(passive=False)
    s.connection_lost(0.0)
    return s


def _connect() -> Session:
    s = Session(_config(passive=False), 0.0)
    s.start(0.0)
    return s


def _active_passive() -> Session:
    s = _idle()
    s.start(0.0)
    return s


def _active_after_failure() -> Session:
    s = _connect()
    s.connection_failed(0.0)
    return s


def _open_sent(**kw: object) -> Session:
    s = Session(_config(**kw), 0.0)
    s.start(0.0)
    s.connection_made(0.0)
    return s


def _open_confirm() -> Session:
    s = _open_sent()
    s.receive_data(MESSAGES["open"], 0.0)
    return s


def _established() -> Session:
    s = _open_confirm()
    s.receive_data(MESSAGES["keepalive"], 0.0)
    return s


STARTS: dict[str, tuple[Callable[[], Session], State]] = {
    "idle": (_idle, State.IDLE),
    "idle-after-down": (_idle_after_down, State.IDLE),
    "connect": (_connect, State.CONNECT),
    "active-passive": (_active_passive, State.ACTIVE),
    "active-after-failure": (_active_after_failure, State.ACTIVE),
    "open-sent": (_open_sent, State.OPEN_SENT),
    "open-confirm": (_open_confirm, State.OPEN_CONFIRM),
    "established": (_established, State.ESTABLISHED),
}


# ---------------------------------------------------------------------------- the checker


@dataclass
class Checker:
    """Drives one session and checks its invariants after every input."""

    session: Session
    now: float = 0.0
    state: State = State.IDLE
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.session.state
        self.session.data_to_send()
        while self.session.next_event() is not None:
            pass

    def apply(self, action: tuple[str, object]) -> None:
        kind, arg = action
        s = self.session
        before = s.state
        self.log.append(f"{before.value}: {kind} {arg!r:.60}")
        caller_api = kind in ("start", "made", "failed", "send", "refresh")
        try:
            if kind == "data":
                assert isinstance(arg, bytes)
                s.receive_data(arg, self.now)
            elif kind == "timer":
                assert isinstance(arg, float)
                self.now += arg
                s.handle_timer(self.now)
            elif kind == "fire":
                deadline = s.get_timer()
                if deadline is not None:
                    self.now = max(self.now, deadline)
                    s.handle_timer(self.now)
            elif kind == "lost":
                s.connection_lost(self.now)
            elif kind == "stop":
                s.stop(self.now, cease_shutdown("sweep"), DownReason.ADMIN_SHUTDOWN)
            elif kind == "start":
                s.start(self.now)
            elif kind == "made":
                s.connection_made(self.now)
            elif kind == "failed":
                s.connection_failed(self.now)
            elif kind == "send":
                s.send_update(Update(attributes=_ATTRS, nlri=(_NET,)), self.now)
            elif kind == "refresh":
                s.send_route_refresh(IPV4_UNICAST, self.now)
        except RuntimeError:
            # Only caller bugs raise, and only without changing anything.
            assert caller_api or (kind == "data" and before in (State.CONNECT, State.ACTIVE))
            assert s.state is before
        self.check(before)

    def check(self, before: State) -> None:
        s = self.session
        out = s.data_to_send()
        sent = [decode_body(k, b) for k, b in Framer(MAX_EXTENDED_MESSAGE_LEN).feed(out)]
        events: list[Event] = []
        while (event := s.next_event()) is not None:
            events.append(event)
        state = before
        for event in events:
            assert isinstance(event, EVENT_TYPES), event
            if isinstance(event, StateChanged):
                assert event.old is state, (event, self.log)
                state = event.new
            elif isinstance(event, SessionEstablished):
                assert state is State.ESTABLISHED and event.negotiated == s.negotiated
            elif isinstance(event, (UpdateReceived, RouteRefreshReceived)):
                assert state is State.ESTABLISHED
            elif isinstance(event, SessionDown):
                assert state is State.IDLE and s.close_requested
                if event.reason in (DownReason.PROTOCOL_ERROR, DownReason.HOLD_TIMER_EXPIRED):
                    # An error answered: the NOTIFICATION is the last thing queued.
                    assert isinstance(event.notification, Notification)
                    assert sent and sent[-1] == event.notification, self.log
                    assert s.stats.notifications_sent
        assert state is s.state, self.log
        if s.state is State.IDLE and not any(isinstance(e, SessionDown) for e in events):
            assert not out or before is not State.IDLE
        timer = s.get_timer()
        assert timer is None or isinstance(timer, float)
        if timer is not None and s.state in (State.IDLE, State.CONNECT):
            assert not s.config.passive  # only the connect-retry timer runs with no connection
        if s.state is State.OPEN_SENT:
            assert s.negotiated is None
        elif s.state in (State.OPEN_CONFIRM, State.ESTABLISHED):
            assert s.negotiated is not None


# ---------------------------------------------------------------------------- exhaustive pairs

INPUTS: list[tuple[str, object]] = [("data", m) for m in MESSAGES.values()] + [
    ("data", b""),
    ("data", b"\x00"),
    ("data", MESSAGES["update"] * 3 + MESSAGES["keepalive"]),
    ("data", MESSAGES["open"] + MESSAGES["keepalive"] + MESSAGES["update"]),
    ("timer", 0.5),
    ("timer", 3.0),
    ("timer", 9.0),
    ("timer", 300.0),
    ("fire", None),
    ("lost", None),
    ("stop", None),
    ("start", None),
    ("made", None),
    ("failed", None),
    ("send", None),
    ("refresh", None),
]


@pytest.mark.parametrize("start", STARTS)
def test_every_state_times_every_input(start: str) -> None:
    make, expected = STARTS[start]
    for action in INPUTS:
        checker = Checker(make())
        assert checker.session.state is expected
        checker.apply(action)
        checker.apply(("fire", None))
        checker.apply(("data", MESSAGES["keepalive"]))


# ---------------------------------------------------------------------------- random sequences


def _split(data: bytes, cut: int) -> list[tuple[str, object]]:
    cut = cut % (len(data) + 1)
    return [("data", data[:cut]), ("data", data[cut:])]


message = st.sampled_from(sorted(MESSAGES)).map(lambda name: MESSAGES[name])
wire = st.one_of(
    message,
    st.binary(max_size=64),
    st.builds(lambda m, junk: m + junk, message, st.binary(max_size=24)),
    st.builds(lambda m, n: m[:n], message, st.integers(0, 64)),
    st.builds(lambda k, b: _frame(k, b), st.integers(0, 8), st.binary(max_size=48)),
    st.lists(message, min_size=2, max_size=5).map(b"".join),
)
action = st.one_of(
    st.tuples(st.just("data"), wire),
    st.builds(_split, wire, st.integers(0, 200)),
    st.tuples(st.just("timer"), st.floats(0.0, 400.0, allow_nan=False)),
    st.tuples(
        st.sampled_from(["fire", "lost", "stop", "start", "made", "failed", "send", "refresh"]),
        st.none(),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(STARTS)), st.lists(action, max_size=12))
def test_random_input_sequences(start: str, actions: list[object]) -> None:
    checker = Checker(STARTS[start][0]())
    for item in actions:
        steps = item if isinstance(item, list) else [item]
        for step in steps:
            assert isinstance(step, tuple)
            checker.apply(step)


# ---------------------------------------------------------------------------- random bodies

_ATTR_TLV = st.builds(
    lambda flags, code, value: bytes((flags, code, len(value))) + value,
    st.sampled_from([0x40, 0x80, 0xC0, 0x50, 0xE0, 0x00]),
    st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 17, 18, 32, 99]),
    st.binary(max_size=20),
)
_UPDATE_BODY = st.builds(
    lambda withdrawn, attrs, nlri: (
        len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big") + attrs + nlri
    ),
    st.binary(max_size=12),
    st.lists(_ATTR_TLV, max_size=6).map(b"".join),
    st.binary(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_UPDATE_BODY, st.binary(min_size=4, max_size=80)))
def test_random_update_bodies_when_established(body: bytes) -> None:
    checker = Checker(_established())
    checker.apply(("data", _frame(2, body)))
    assert checker.session.state in (State.ESTABLISHED, State.IDLE)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=10, max_size=60), st.binary(max_size=40))
def test_random_open_bodies_in_open_sent(head: bytes, params: bytes) -> None:
    body = b"\x04" + head[1:9] + bytes((len(params),)) + params
    checker = Checker(_open_sent())
    checker.apply(("data", _frame(1, body)))
    assert checker.session.state in (State.OPEN_CONFIRM, State.IDLE)
