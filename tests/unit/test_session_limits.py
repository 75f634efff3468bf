"""The session's bounds on a fake clock: the send hold timer (RFC 9687), the OpenSent hold a
listener asks for, and Cease/Hard Reset where RFC 8538's N bit was negotiated."""

from __future__ import annotations

import pytest

from bgpmux.session import DownReason, Session, State
from bgpmux.session.idle_hold import MAX_IDLE_HOLD, IdleHold
from bgpmux.session.notifications import as_hard_reset
from bgpmux.session.timers import default_send_hold_time
from bgpmux.wire import CeaseSubcode, ErrorCode, Notification

from .test_session import config, downs, drain, established_pair, sent_notification

MAX_PREFIXES = Notification(ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, b"\x00\x01")
T0 = 100.0


def test_send_hold_time_defaults_to_rfc_9687() -> None:
    assert default_send_hold_time(90) == 480.0
    assert default_send_hold_time(300) == 600.0
    assert default_send_hold_time(0) == 480.0


def test_send_hold_timer_runs_only_while_output_waits_without_progress() -> None:
    a, _b = established_pair()
    a.output_status(T0, unsent=0, sent=1000)
    assert a._timers.send_hold is None  # nothing waits: no send hold timer
    a.output_status(T0, unsent=5000, sent=1000)
    assert a._timers.send_hold == T0 + 480
    a.output_status(T0 + 100, unsent=9000, sent=1000)  # more queued, nothing left: no restart
    assert a._timers.send_hold == T0 + 480
    a.output_status(T0 + 200, unsent=9000, sent=1200)  # progress restarts it
    assert a._timers.send_hold == T0 + 200 + 480
    a.output_status(T0 + 300, unsent=0, sent=10200)  # all out: it stops
    assert a._timers.send_hold is None


def test_send_hold_timer_expiry_sends_code_8_and_ends_the_session() -> None:
    a, _b = established_pair({"hold_time": 0}, {"hold_time": 0})  # no other timer runs
    a.output_status(T0, unsent=4096, sent=0)
    assert a.get_timer() == T0 + 480
    a.handle_timer(T0 + 479.999)
    assert a.state is State.ESTABLISHED
    a.handle_timer(T0 + 480)
    note = sent_notification(a)
    assert (note.code, note.subcode) == (ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0)
    (down,) = downs(drain(a))
    assert down.reason is DownReason.SEND_HOLD_TIMER_EXPIRED
    assert a.state is State.IDLE and a.close_requested


def test_a_configured_send_hold_time_is_used() -> None:
    a, _b = established_pair({"send_hold_time": 30.0})
    a.output_status(T0, unsent=1, sent=0)
    assert a._timers.send_hold == T0 + 30


def test_output_status_outside_established_does_nothing() -> None:
    s = Session(config(), 0.0)
    s.start(0.0)
    s.connection_made(0.0)
    s.output_status(1.0, unsent=100, sent=0)  # OpenSent
    assert s._timers.send_hold is None


def test_open_hold_time_is_the_listeners_choice() -> None:
    s = Session(config(open_hold_time=10.0), 0.0)
    s.start(0.0)
    s.connection_made(5.0)
    assert s.get_timer() == 15.0
    s.handle_timer(15.0)
    assert s.state is State.IDLE
    (down,) = downs(drain(s))
    assert down.reason is DownReason.HOLD_TIMER_EXPIRED


@pytest.mark.parametrize("n_bits", [(True, True), (True, False), (False, True)])
def test_max_prefixes_cease_is_a_hard_reset_only_with_both_n_bits(
    n_bits: tuple[bool, bool],
) -> None:
    ours, theirs = n_bits
    a, _b = established_pair(
        {"graceful_restart_time": 120, "graceful_notification": ours},
        {"graceful_restart_time": 120, "graceful_notification": theirs},
    )
    assert a.negotiated is not None and a.negotiated.hard_reset is (ours and theirs)
    a.stop(T0, MAX_PREFIXES, DownReason.MAX_PREFIXES)
    note = sent_notification(a)
    if ours and theirs:
        assert (note.code, note.subcode) == (ErrorCode.CEASE, CeaseSubcode.HARD_RESET)
        assert note.data == bytes((6, 1)) + MAX_PREFIXES.data  # RFC 8538 §3
    else:
        assert note == MAX_PREFIXES


def test_an_administrative_shutdown_is_never_wrapped() -> None:
    a, _b = established_pair(
        {"graceful_restart_time": 120, "graceful_notification": True},
        {"graceful_restart_time": 120, "graceful_notification": True},
    )
    shutdown = Notification(ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
    a.stop(T0, shutdown)
    assert sent_notification(a) == shutdown


def test_as_hard_reset_leaves_a_hard_reset_alone() -> None:
    hard = as_hard_reset(MAX_PREFIXES)
    assert as_hard_reset(hard) is hard


# ---------------------------------------------------------------------------- idle hold


def test_idle_hold_doubles_on_each_repeat_up_to_the_cap() -> None:
    hold = IdleHold(60)
    now = 0.0
    seen = []
    for _ in range(9):
        seen.append(hold.trip(now, up_for=1.0))  # back and over the limit within a second
        now += seen[-1]
    assert seen[:7] == [60, 120, 240, 480, 960, 1920, MAX_IDLE_HOLD]
    assert seen[7:] == [MAX_IDLE_HOLD, MAX_IDLE_HOLD]


def test_idle_hold_starts_over_after_a_session_that_stayed_up() -> None:
    hold = IdleHold(60)
    assert hold.trip(0.0, up_for=None) == 60
    assert hold.remaining(30.0) == 30.0
    assert hold.remaining(60.0) == 0.0
    assert hold.trip(61.0, up_for=1.0) == 120
    assert hold.trip(500.0, up_for=300.0) == 60  # up longer than the last hold: not a repeat


def test_idle_hold_zero_holds_until_a_release() -> None:
    hold = IdleHold(0)
    assert hold.trip(0.0, up_for=None) == float("inf")
    assert hold.remaining(1e9) == float("inf")
    hold.release()
    assert hold.remaining(1.0) == 0.0


def test_a_base_above_the_cap_is_kept() -> None:
    assert IdleHold(7200).trip(0.0, up_for=None) == 7200
