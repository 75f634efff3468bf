"""GR helper towards the upstreams (RFC 4724 §4.2): the pure rules in session/graceful.py, the
core keeping and sweeping an upstream's stale routes, and what the native engine reports."""

from __future__ import annotations

import ipaddress
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from bgpmux.config import parse_config
from bgpmux.core.events import (
    UpstreamDown,
    UpstreamEndOfRib,
    UpstreamEstablished,
    UpstreamRoutes,
)
from bgpmux.core.upstream_restart import STALE_PATH_TIME
from bgpmux.engines.native import NativeEngine
from bgpmux.session import DownReason
from bgpmux.session.events import SessionDown, SessionEstablished
from bgpmux.session.graceful import restart_note, stale_kept_on_return, stale_window
from bgpmux.session.negotiation import negotiate
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, Capabilities, GracefulRestart
from bgpmux.wire.messages import Notification, Open
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import CONFIG, attrs

BOTH = (IPV4_UNICAST, IPV6_UNICAST)
TOR_NH = ipaddress.ip_address("10.0.0.1").packed
TOR_NH6 = ipaddress.ip_address("2001:db8:ff::1").packed
TOR_ATTRS = attrs((65000,), next_hop=TOR_NH)


def gr(time: int = 120, restarting: bool = False, **families: bool) -> GracefulRestart:
    names = {"v4": IPV4_UNICAST, "v6": IPV6_UNICAST}
    return GracefulRestart(
        time, restarting, False, tuple((names[k], v) for k, v in families.items())
    )


# ------------------------------------------------------------------------ the pure rules


def test_stale_window_after_a_graceful_end() -> None:
    cap = gr(90, v4=False, v6=True)
    for reason in (DownReason.CONNECTION_LOST, DownReason.HOLD_TIMER_EXPIRED):
        assert stale_window(cap, BOTH, reason) == (90, frozenset(BOTH))
    assert stale_window(cap, (IPV4_UNICAST,), DownReason.CONNECTION_LOST) == (
        90,
        frozenset({IPV4_UNICAST}),
    )


@pytest.mark.parametrize(
    ("cap", "reason"),
    [
        (None, DownReason.CONNECTION_LOST),  # no graceful restart negotiated
        (gr(90), DownReason.CONNECTION_LOST),  # helper only: no family listed
        (gr(0, v4=True), DownReason.CONNECTION_LOST),  # restart time 0
        (gr(90, v4=True), DownReason.NOTIFICATION_RECEIVED),
        (gr(90, v4=True), DownReason.PROTOCOL_ERROR),
        (gr(90, v4=True), DownReason.ADMIN_SHUTDOWN),
    ],
)
def test_stale_window_none(cap: GracefulRestart | None, reason: DownReason) -> None:
    assert stale_window(cap, BOTH, reason) == (None, frozenset())


def test_stale_kept_on_return() -> None:
    # restarted (R): only families whose forwarding state was kept (F)
    assert stale_kept_on_return(gr(restarting=True, v4=True, v6=False), BOTH) == {IPV4_UNICAST}
    # not restarted (our side or the path failed): F means nothing, every listed family waits
    assert stale_kept_on_return(gr(v4=False, v6=False), BOTH) == set(BOTH)
    assert stale_kept_on_return(gr(restarting=True, v4=True), (IPV6_UNICAST,)) == set()
    assert stale_kept_on_return(gr(v6=True), BOTH) == {IPV6_UNICAST}  # v4 no longer listed
    assert stale_kept_on_return(None, BOTH) == set()  # no capability any more


def test_restart_note() -> None:
    assert restart_note(None) == "" and restart_note(gr(v4=True)) == ""
    assert restart_note(gr(restarting=True, v4=True, v6=False)) == (
        "the peer restarted (graceful restart), forwarding kept for: ipv4-unicast"
    )
    assert restart_note(gr(restarting=True, v4=False)).endswith("forwarding kept for: none")


# ------------------------------------------------------------------------ the core


def route(*texts: str) -> list[bytes]:
    return [prefix_from_str(t)[1] for t in texts]


def tor_routes(*texts: str) -> UpstreamRoutes:
    family = prefix_from_str(texts[0])[0]
    next_hop = TOR_NH if family == IPV4_UNICAST else TOR_NH6
    return UpstreamRoutes("tor", family, TOR_ATTRS, next_hop, route(*texts))


def test_refreshed_routes_stay_the_others_go_at_end_of_rib(setup: Any) -> None:
    core, _engine, calico, _metallb = setup
    core.handle(UpstreamEstablished("tor"), 0.5)
    core.handle(tor_routes("10.1.0.0/16", "10.2.0.0/16"), 1.0)
    core.flush(1.0)
    sent = len(calico.sent)
    core.handle(UpstreamDown("tor", 120, frozenset(BOTH)), 2.0)
    core.flush(2.0)
    assert len(calico.sent) == sent  # nothing withdrawn from the clients
    channel = core.upstreams["tor"].channel
    assert channel.rib.stale_count() == 2 and channel.stale_deadline == 122.0
    core.handle(UpstreamEstablished("tor", frozenset(BOTH)), 10.0)
    assert channel.stale_deadline == 10.0 + STALE_PATH_TIME  # now bounded by the stale-path time
    core.handle(tor_routes("10.1.0.0/16"), 11.0)
    core.flush(11.0)
    assert set(calico.table()) == {"10.1.0.0/16", "10.2.0.0/16"}
    core.handle(UpstreamEndOfRib("tor", IPV4_UNICAST), 12.0)
    core.flush(12.0)
    assert set(calico.table()) == {"10.1.0.0/16"}
    assert channel.rib.stale_count() == 0 and channel.stale_deadline is None
    assert core.handle_timer(10.0 + STALE_PATH_TIME) is None


def test_family_not_kept_on_return_is_swept_at_once(setup: Any) -> None:
    core, _engine, calico, _metallb = setup
    core.handle(tor_routes("10.1.0.0/16"), 1.0)
    core.handle(tor_routes("2001:db8:10::/48"), 1.0)
    core.flush(1.0)
    core.handle(UpstreamDown("tor", 120, frozenset(BOTH)), 2.0)
    core.handle(UpstreamEstablished("tor", frozenset({IPV6_UNICAST})), 3.0)
    core.flush(3.0)
    assert set(calico.table()) == {"2001:db8:10::/48"}


def test_no_end_of_rib_sweeps_at_the_stale_path_time(setup: Any) -> None:
    core, _engine, calico, _metallb = setup
    core.handle(tor_routes("10.1.0.0/16"), 1.0)
    core.handle(UpstreamDown("tor", 60, None), 2.0)
    core.handle(UpstreamEstablished("tor"), 30.0)
    core.handle_timer(62.0)  # the restart time no longer applies: the session is back
    core.flush(62.0)
    assert set(calico.table()) == {"10.1.0.0/16"}
    assert core.get_timer() == 30.0 + STALE_PATH_TIME
    core.handle_timer(30.0 + STALE_PATH_TIME)
    core.flush(30.0 + STALE_PATH_TIME)
    assert calico.table() == {}


def test_consecutive_restart_drops_what_was_still_stale(setup: Any) -> None:
    core, _engine, calico, _metallb = setup
    core.handle(tor_routes("10.1.0.0/16", "10.2.0.0/16"), 1.0)
    core.handle(UpstreamDown("tor", 120, None), 2.0)
    core.handle(UpstreamEstablished("tor"), 3.0)
    core.handle(tor_routes("10.1.0.0/16"), 4.0)
    core.handle(UpstreamDown("tor", 120, None), 5.0)  # down again before its End-of-RIB
    core.flush(5.0)
    assert set(calico.table()) == {"10.1.0.0/16"}
    assert core.upstreams["tor"].channel.stale_deadline == 125.0


def test_down_without_stale_time_withdraws_stale_and_live(setup: Any) -> None:
    core, _engine, calico, _metallb = setup
    core.handle(tor_routes("10.1.0.0/16"), 1.0)
    core.handle(UpstreamDown("tor", 120, None), 2.0)
    core.handle(UpstreamEstablished("tor"), 3.0)
    core.handle(tor_routes("10.2.0.0/16"), 4.0)
    core.handle(UpstreamDown("tor"), 5.0)  # a NOTIFICATION: everything goes
    core.flush(5.0)
    assert calico.table() == {}
    assert core.upstreams["tor"].channel.stale_deadline is None


# ------------------------------------------------------------------------ the native engine


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def established(self, *args: Any) -> None:
        self.calls.append(("established", args))

    def down(self, *args: Any) -> None:
        self.calls.append(("down", args))


def negotiated(ours: int | None, theirs: GracefulRestart | None) -> Any:
    local_gr = GracefulRestart(ours) if ours is not None else None
    local = Open(64512, 90, "10.0.0.2", Capabilities(BOTH, graceful_restart=local_gr))
    peer = Open(65000, 90, "10.0.0.1", Capabilities(BOTH, graceful_restart=theirs))
    return negotiate(local, peer)


def native_engine(neg: Any) -> tuple[NativeEngine, Recorder, Any]:
    events = Recorder()
    engine = NativeEngine(parse_config(CONFIG, env={}), events)  # type: ignore[arg-type]
    conn = SimpleNamespace(
        session=SimpleNamespace(config=SimpleNamespace(peer_name="tor"), negotiated=neg),
        log=logging.getLogger("test"),
        loop=SimpleNamespace(time=lambda: 1.0),
    )
    engine.upstreams["tor"] = SimpleNamespace(  # type: ignore[assignment]
        conn=conn, established_at=None, detail="", stale_until=None, failed=lambda words: None
    )
    return engine, events, conn


@pytest.mark.parametrize(
    ("reason", "notification", "stale"),
    [
        (DownReason.CONNECTION_LOST, None, (120, frozenset(BOTH))),
        (DownReason.HOLD_TIMER_EXPIRED, Notification(4, 0), (120, frozenset(BOTH))),
        (DownReason.NOTIFICATION_RECEIVED, Notification(6, 2), (None, None)),
    ],
)
def test_native_engine_reports_the_restart_time(
    reason: DownReason, notification: Notification | None, stale: tuple[Any, Any]
) -> None:
    neg = negotiated(120, gr(120, True, v4=True, v6=False))
    engine, events, conn = native_engine(neg)
    engine._on_event(conn, SessionEstablished(neg))
    engine._on_event(conn, SessionDown(reason, notification, ""))
    assert events.calls == [
        ("established", ("tor", frozenset({IPV4_UNICAST}), BOTH)),
        ("down", ("tor", *stale)),
    ]


def test_native_engine_without_graceful_restart_offered() -> None:
    neg = negotiated(None, gr(120, v4=True))
    engine, events, conn = native_engine(neg)
    engine._on_event(conn, SessionEstablished(neg))
    engine._on_event(conn, SessionDown(DownReason.CONNECTION_LOST, None, ""))
    assert events.calls == [
        ("established", ("tor", frozenset(), BOTH)),
        ("down", ("tor", None, None)),
    ]
