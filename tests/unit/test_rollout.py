"""Rollouts that lose nothing (issue 9), on a fake clock: the graceful-restart capability
bgpmux offers each peer, how it closes sessions when it stops, RFC 8538's N bit, the upstream
End-of-RIB held for every client, and nothing sent for a family the peer did not negotiate."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace
from typing import Any

import pytest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import (
    ClientDown,
    ClientEstablished,
    ClientUpdate,
    UpstreamEndOfRib,
    UpstreamEstablished,
    UpstreamRouteRefresh,
)
from bgpmux.engines.fake import FakeEngine
from bgpmux.engines.native import NativeEngine, _Upstream
from bgpmux.session import DownReason, SessionDown, State, cease_shutdown, local_open
from bgpmux.session.events import SessionEstablished
from bgpmux.session.graceful import (
    ended_gracefully,
    peer_keeps_our_routes,
    shutdown_notification,
    stale_time_after,
)
from bgpmux.session.notifications import as_hard_reset
from bgpmux.transport.profiles import (
    CLIENT_RESTART_TIME,
    client_session_config,
    upstream_session_config,
)
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, CeaseSubcode, ErrorCode, Notification
from bgpmux.wire.messages import encode_message

from .core_helpers import CONFIG, EOR_V4, EOR_V6, FakeLink, announce
from .test_session import downs, drain, established_pair, sent_notification
from .test_upstream_restart import native_engine

T0 = 100.0
SHUTDOWN = cease_shutdown("bgpmux shutting down")
MAX_PREFIXES = Notification(ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, b"\x00\x01")
UPDATE_ERROR = Notification(ErrorCode.UPDATE_MESSAGE, 1)
GR = {"graceful_restart_time": 120}
GR_N = {"graceful_restart_time": 120, "graceful_notification": True}
HELPER = {"graceful_restart_time": 120, "graceful_restart_helper_only": True}


def config_() -> Any:
    return parse_config(CONFIG, env={})


# ------------------------------------------------------------------------ capability shapes


def test_a_client_that_receives_routes_gets_every_family_with_forwarding_bits() -> None:
    config = config_()
    calico = config.clients[0]
    assert calico.receive_upstream_routes
    gr = local_open(client_session_config(config, calico)).capabilities.graceful_restart
    assert gr is not None
    assert gr.restart_time == CLIENT_RESTART_TIME and gr.notification and not gr.restarting
    assert gr.families == ((IPV4_UNICAST, True), (IPV6_UNICAST, True))


def test_a_client_that_receives_nothing_gets_a_helper_only_capability() -> None:
    """FRR (MetalLB) seeing families would wait in "NSF passive" for bgpmux to dial it."""
    config = config_()
    metallb = config.clients[1]
    assert not metallb.receive_upstream_routes
    gr = local_open(client_session_config(config, metallb)).capabilities.graceful_restart
    assert gr is not None and gr.families == () and gr.notification


def test_upstreams_get_the_n_bit_with_graceful_restart_and_nothing_without() -> None:
    config = config_()
    tor = config.upstreams[0]
    caps = local_open(upstream_session_config(config, tor, (IPV4_UNICAST,))).capabilities
    assert caps.graceful_restart is not None and caps.graceful_restart.notification
    assert caps.graceful_restart.families == ((IPV4_UNICAST, True),)
    off = tor.model_copy(update={"graceful_restart": 0})
    caps = local_open(upstream_session_config(config, off, (IPV4_UNICAST,))).capabilities
    assert caps.graceful_restart is None


# ------------------------------------------------------------------------ closing on SIGTERM


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        (GR, GR, None),  # the peer keeps our routes: TCP close, no NOTIFICATION
        (GR, {"graceful_restart_time": 120, "graceful_restart_helper_only": True}, None),
        (GR_N, GR_N, SHUTDOWN),  # N bit: the graceful NOTIFICATION
        (GR_N, GR, None),  # N on one side only: as without it
        (GR, {}, SHUTDOWN),  # the peer has no graceful restart: Cease
        (HELPER, GR, SHUTDOWN),  # we listed no family: the peer keeps nothing anyway
        ({}, GR, SHUTDOWN),  # we offered no graceful restart
    ],
)
def test_shutdown_notification_decides_how_a_session_is_closed(
    ours: dict[str, object], theirs: dict[str, object], expected: Notification | None
) -> None:
    a, _b = established_pair(ours, theirs)
    assert shutdown_notification(a.negotiated, SHUTDOWN) == expected
    assert shutdown_notification(None, SHUTDOWN) == SHUTDOWN


def test_a_hard_reset_is_never_a_graceful_shutdown() -> None:
    a, _b = established_pair(GR_N, GR_N)
    with pytest.raises(ValueError, match="Hard Reset"):
        shutdown_notification(a.negotiated, as_hard_reset(SHUTDOWN))


def test_stop_without_a_notification_closes_silently() -> None:
    a, b = established_pair(GR, GR)
    a.stop(T0, None)
    assert a.data_to_send() == b"" and a.state is State.IDLE and a.close_requested
    (down,) = downs(drain(a))
    assert down.notification is None and down.reason is DownReason.ADMIN_SHUTDOWN
    # the peer sees the connection go without a NOTIFICATION: it keeps our routes
    b.connection_lost(T0)
    (peer_down,) = downs(drain(b))
    assert stale_time_after(b.negotiated, peer_down.reason, peer_down.notification) == 120


def test_the_peer_of_a_graceful_notification_keeps_our_routes() -> None:
    """RFC 8538: both N bits, our Cease/Administrative Shutdown is taken gracefully."""
    a, b = established_pair(GR_N, GR_N)
    notification = shutdown_notification(a.negotiated, SHUTDOWN)
    assert notification == SHUTDOWN
    a.stop(T0, notification)
    b.receive_data(a.data_to_send(), T0)
    (down,) = downs(drain(b))
    assert down.reason is DownReason.NOTIFICATION_RECEIVED and down.notification == SHUTDOWN
    assert stale_time_after(b.negotiated, down.reason, down.notification) == 120


# ------------------------------------------------------------------------ the N bit, receiving


@pytest.mark.parametrize(
    ("reason", "notification", "with_n", "without_n"),
    [
        (DownReason.NOTIFICATION_RECEIVED, SHUTDOWN, True, False),
        (DownReason.NOTIFICATION_RECEIVED, as_hard_reset(SHUTDOWN), False, False),
        (DownReason.PROTOCOL_ERROR, UPDATE_ERROR, True, False),  # sent by us: RFC 8538 §4
        (DownReason.MAX_PREFIXES, as_hard_reset(MAX_PREFIXES), False, False),
        (DownReason.HOLD_TIMER_EXPIRED, Notification(ErrorCode.HOLD_TIMER_EXPIRED, 0), True, True),
        (DownReason.CONNECTION_LOST, None, True, True),
        (DownReason.ADMIN_SHUTDOWN, None, False, False),  # stopped by us, no NOTIFICATION
    ],
)
def test_which_session_ends_keep_routes_stale(
    reason: DownReason, notification: Notification | None, with_n: bool, without_n: bool
) -> None:
    n, _ = established_pair(GR_N, GR_N)
    plain, _ = established_pair(GR, GR)
    assert ended_gracefully(n.negotiated, reason, notification) is with_n
    assert ended_gracefully(plain.negotiated, reason, notification) is without_n
    assert (stale_time_after(n.negotiated, reason, notification) == 120) is with_n


def test_a_received_notification_under_n_keeps_the_peers_routes_end_to_end() -> None:
    a, b = established_pair(GR_N, GR_N)
    b.stop(T0, Notification(ErrorCode.CEASE, CeaseSubcode.OUT_OF_RESOURCES))
    a.receive_data(b.data_to_send(), T0)
    (down,) = downs(drain(a))
    assert stale_time_after(a.negotiated, down.reason, down.notification) == 120


def test_a_max_prefixes_cut_off_under_n_is_a_hard_reset_and_keeps_nothing() -> None:
    """The deliberate cut-off goes out as Cease/Hard Reset (session.stop), so neither side
    keeps the other's routes as stale."""
    a, b = established_pair(GR_N, GR_N)
    a.stop(T0, MAX_PREFIXES, DownReason.MAX_PREFIXES)
    sent = sent_notification(a)
    assert (sent.code, sent.subcode) == (ErrorCode.CEASE, CeaseSubcode.HARD_RESET)
    (ours,) = downs(drain(a))
    assert stale_time_after(a.negotiated, ours.reason, ours.notification) is None
    b.receive_data(encode(sent), T0)
    (theirs,) = downs(drain(b))
    assert stale_time_after(b.negotiated, theirs.reason, theirs.notification) is None


def encode(notification: Notification) -> bytes:
    return encode_message(notification)


def test_peer_keeps_our_routes_needs_its_capability_and_our_families() -> None:
    assert peer_keeps_our_routes(established_pair(GR, HELPER)[0].negotiated)
    assert not peer_keeps_our_routes(established_pair(HELPER, GR)[0].negotiated)
    assert not peer_keeps_our_routes(established_pair(GR, {})[0].negotiated)
    assert not peer_keeps_our_routes(None)


# ------------------------------------------------------------------------ End-of-RIB upstream


def started_core() -> tuple[Core, FakeEngine]:
    engine = FakeEngine()
    core = Core(config_(), engine, now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    core.flush(0.0)
    return core, engine


def test_end_of_rib_upstream_waits_for_a_client_without_graceful_restart() -> None:
    """MetalLB's FRR without graceful restart: End-of-RIB waits for its UPDATEs and a quiet
    second after them, not only for its session to be up."""
    core, engine = started_core()
    core.handle(ClientEstablished("calico", FakeLink(), True), 0.5)
    core.handle(ClientUpdate("calico", EOR_V4), 0.5)
    core.handle(ClientUpdate("calico", EOR_V6), 0.5)
    core.handle(ClientEstablished("metallb", FakeLink(), False), 0.5)
    core.flush(0.5)
    core.handle_timer(1.0)  # the ToR's table counts as in (a quiet second): Calico's End-of-RIB
    assert engine.eors == [] and core.get_timer() == 30.0  # nothing from metallb yet
    core.handle(ClientUpdate("metallb", announce("198.51.100.10/32", as_path=(64514,))), 1.5)
    core.flush(1.5)
    assert engine.eors == [] and core.get_timer() == pytest.approx(2.5)
    core.handle(ClientUpdate("metallb", announce("198.51.100.11/32", as_path=(64514,))), 2.0)
    core.flush(2.0)
    assert core.get_timer() == pytest.approx(3.0)  # the quiet second starts again
    core.handle_timer(2.9)
    assert engine.eors == []
    core.handle_timer(3.0)
    assert {str(e.family) for e in engine.eors} == {"ipv4-unicast", "ipv6-unicast"}
    # the routes went out before the End-of-RIB
    first_eor = engine.calls.index(engine.eors[0])
    announced = {p for c in engine.announces for p in c.prefixes}
    assert len(announced) == 2 and all(engine.calls.index(c) < first_eor for c in engine.announces)


def test_a_client_that_sends_nothing_holds_end_of_rib_until_the_timeout() -> None:
    core, engine = started_core()
    core.handle(ClientEstablished("calico", FakeLink(), True), 0.5)
    core.handle(ClientUpdate("calico", EOR_V4), 0.5)
    core.handle(ClientUpdate("calico", EOR_V6), 0.5)
    core.handle(ClientEstablished("metallb", FakeLink(), False), 0.5)
    core.flush(0.5)
    core.handle_timer(29.9)
    assert engine.eors == []
    core.handle_timer(30.0)  # node.initial_sync_timeout
    assert len(engine.eors) == 2


def test_a_client_end_of_rib_counts_without_graceful_restart() -> None:
    core, engine = started_core()
    for name in ("calico", "metallb"):
        core.handle(ClientEstablished(name, FakeLink(), False), 0.5)
        core.handle(ClientUpdate(name, EOR_V4), 0.6)
        core.handle(ClientUpdate(name, EOR_V6), 0.6)
    core.flush(0.6)
    assert len(engine.eors) == 2


def test_a_client_that_drops_before_its_table_is_waited_for_again() -> None:
    core, engine = started_core()
    core.handle(ClientEstablished("calico", FakeLink(), True), 0.5)
    core.handle(ClientUpdate("calico", EOR_V4), 0.5)
    core.handle(ClientUpdate("calico", EOR_V6), 0.5)
    core.handle(ClientEstablished("metallb", FakeLink(), False), 0.5)
    core.handle(ClientUpdate("metallb", announce("198.51.100.10/32")), 0.6)
    core.handle(ClientDown("metallb"), 0.7)
    core.flush(0.7)
    core.handle_timer(5.0)
    assert engine.eors == []  # metallb is down: its table is not in


# ------------------------------------------------------------------------ families


def test_an_ipv4_only_upstream_gets_nothing_of_ipv6() -> None:
    engine = FakeEngine()
    core = Core(config_(), engine, now=0.0)
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26")), 0.0)  # no link: ignored
    core.handle(UpstreamEstablished("tor", families=(IPV4_UNICAST,)), 0.0)
    for name in ("calico", "metallb"):
        core.handle(ClientEstablished(name, FakeLink(), True), 0.1)
    core.handle(ClientUpdate("calico", announce("10.244.1.0/26", "2001:db8:244:1::/64")), 0.2)
    for name in ("calico", "metallb"):
        core.handle(ClientUpdate(name, EOR_V4), 0.3)
        core.handle(ClientUpdate(name, EOR_V6), 0.3)
    core.flush(0.3)
    assert [str(e.family) for e in engine.eors] == ["ipv4-unicast"]
    assert {c.family for c in engine.calls if not hasattr(c, "upstream")} == {IPV4_UNICAST}
    assert set(engine.table(IPV4_UNICAST)) == {"10.244.1.0/26"}
    engine.clear()
    core.handle(UpstreamRouteRefresh("tor", IPV6_UNICAST), 1.0)
    core.flush(1.0)
    assert engine.calls == []


def test_an_ipv4_only_upstream_is_synced_by_its_ipv4_end_of_rib() -> None:
    core = Core(config_(), FakeEngine(), now=0.0)
    core.handle(UpstreamEstablished("tor", families=(IPV4_UNICAST,)), 0.0)
    calico = FakeLink()
    core.handle(ClientEstablished("calico", calico, True), 0.0)
    core.handle(UpstreamEndOfRib("tor", IPV4_UNICAST), 0.2)
    assert {u.end_of_rib() for u in calico.updates()} == {IPV4_UNICAST, IPV6_UNICAST}


class _Conn:
    """What the native engine uses of a ``BGPConnection``."""

    def __init__(self, families: tuple[Any, ...]) -> None:
        self.closed = False
        self.session = SimpleNamespace(state=State.ESTABLISHED)
        self.families = families
        self.options = SimpleNamespace(asn4=True, max_message_len=4096)
        self.sent: list[bytes] = []

    def send(self, messages: list[bytes]) -> None:
        self.sent.extend(messages)


def test_the_native_engine_sends_nothing_of_a_family_not_negotiated() -> None:
    config = config_()
    engine = NativeEngine(config, events=None)  # type: ignore[arg-type]
    conn = _Conn((IPV4_UNICAST,))
    engine.upstreams["tor"] = _Upstream(config.upstreams[0], conn)  # type: ignore[arg-type]
    nh6 = ipaddress.ip_address("2001:db8:ff::2").packed
    engine.end_of_rib("tor", IPV6_UNICAST)
    engine.withdraw(["tor"], IPV6_UNICAST, [b"\x40\x20\x01\x0d\xb8\x02\x44\x00\x01"])
    engine.announce(["tor"], IPV6_UNICAST, announce().attributes, nh6, [b"\x00"])
    assert conn.sent == []
    engine.end_of_rib("tor", IPV4_UNICAST)
    assert conn.sent == [bytes(16 * [0xFF]) + b"\x00\x17\x02\x00\x00\x00\x00"]


def test_session_down_reports_what_was_sent() -> None:
    a, _b = established_pair(GR, GR)
    a.stop(T0, SHUTDOWN)
    (down,) = (e for e in drain(a) if isinstance(e, SessionDown))
    assert down.notification == SHUTDOWN


@pytest.mark.parametrize(
    ("notification", "stale_time"),
    [(Notification(ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_RESET), 120),
     (as_hard_reset(SHUTDOWN), None)],
)  # fmt: skip
def test_the_native_engine_keeps_an_upstreams_routes_after_a_notification_under_n(
    notification: Notification, stale_time: int | None
) -> None:
    """RFC 8538 §4 towards the upstreams: with both N bits, a NOTIFICATION from the ToR other
    than Cease/Hard Reset is a graceful end: its routes stay, stale."""
    a, _b = established_pair(GR_N, GR_N)
    engine, events, conn = native_engine(a.negotiated)
    engine._on_event(conn, SessionEstablished(a.negotiated))
    engine._on_event(conn, SessionDown(DownReason.NOTIFICATION_RECEIVED, notification, ""))
    name, (_tor, *stale) = events.calls[-1]
    assert name == "down" and stale[0] == stale_time
