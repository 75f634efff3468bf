"""The exabgp engine's upstreams changed on reload: one reset, added or removed.

Each rewrites ExaBGP's configuration and has ExaBGP reload it (SIGUSR1). ExaBGP 5.0.15
compares the neighbors it runs with the file's: a new one is dialled, a changed one is ended
(Cease) and dialled again, and the others are left alone, their sessions and Adj-RIB-Out
untouched. A removed one has its connection closed without a NOTIFICATION (ExaBGP offers no
choice there), which a ToR under graceful restart takes for a restart: so the routes it was
sent are withdrawn first, and the reload waits for ExaBGP to have taken those commands (at
most ``ACK_WAIT`` seconds).

A reload that removes and adds upstreams (or resets one) makes several changes to the file;
while a removal waits for its withdrawals, every other change only joins that wait
(``ReloadGate``): ExaBGP is signalled once, when the withdrawals were taken, so it never reads
a file without the removed neighbor before they went out.

A removed name added again later is matched by its address again: what ExaBGP says of that
address from then on (its old session's last words included, should they come that late) is
taken as the new upstream's. ExaBGP names neighbors by address only, so no generation can
tell them apart here; the old session ended before the removal's reload returned.

ExaBGP 5.0.15 drops a SIGUSR1 that comes while a session has UPDATEs waiting to go out, so the
signal is sent again ``RELOAD_AGAIN`` seconds later: a reload of an unchanged file leaves
every session alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..session.states import State
from ..wire.errors import CeaseSubcode
from . import exabgp_text as text
from .exabgp_session import ExaBGPSession

if TYPE_CHECKING:
    from ..config import Config, Upstream
    from .exabgp import ExaBGPEngine

log = logging.getLogger("bgpmux.engine.exabgp")

RELOAD_AGAIN = (1.0, 3.0, 10.0)  # seconds after the first SIGUSR1
ACK_WAIT = 5.0  # seconds a removal's reload waits for its withdrawals to be taken
ACK_POLL = 0.05


@dataclass
class ReloadGate:
    """The reload of ExaBGP waiting for withdrawals to be taken (``_reload_after``):
    ``awaited`` commands answered, or ``give_up`` (loop time, seconds) passed; ``why`` the
    reasons of every reload asked for meanwhile. ``awaited`` is None when none waits."""

    awaited: int | None = None
    give_up: float = 0.0
    why: list[str] = field(default_factory=list)


def _rewrite(engine: ExaBGPEngine, config: Config) -> None:
    """Make ``config`` the engine's and write ExaBGP's files; raises OSError or ValueError,
    with the engine's configuration as it was, when they cannot be written."""
    running, engine.config = engine.config, config
    try:
        engine.write_config()
    except (OSError, ValueError):
        engine.config = running
        raise


def _reload(engine: ExaBGPEngine, why: str) -> None:
    """SIGUSR1 to a running ExaBGP, by its PID, and again after ``RELOAD_AGAIN``; one that
    does not run reads the file when it starts. While a reload waits for withdrawals
    (``_reload_after``), only noted: that one signals for both."""
    gate = engine._reload_gate
    if gate.awaited is not None:
        gate.why.append(why)
        return
    _signal(engine, why)


def _signal(engine: ExaBGPEngine, why: str) -> None:
    proc = engine._proc
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGUSR1)
    log.info("ExaBGP told to reload its configuration (%s)", why)
    loop = asyncio.get_running_loop()
    for delay in RELOAD_AGAIN:
        loop.call_later(delay, _signal_again, proc)


def _reload_after(engine: ExaBGPEngine, commands: list[str], why: str) -> None:
    """Queue ``commands``, then reload once ExaBGP has answered every command queued or sent
    so far (``ACK_WAIT`` seconds at most: a command lost with a crashed ExaBGP is never
    answered). Another call meanwhile waits for its commands too, within the same wait."""
    counters = engine.counters
    gate = engine._reload_gate
    awaited = counters["commands_sent"] + len(engine._queue) + len(commands)
    engine._send(commands)
    loop = asyncio.get_running_loop()
    gate.why.append(why)
    if gate.awaited is not None:  # a check runs already: it waits for these too
        gate.awaited = max(gate.awaited, awaited)
        gate.give_up = loop.time() + ACK_WAIT
        return
    gate.awaited, gate.give_up = awaited, loop.time() + ACK_WAIT

    def check() -> None:
        target = gate.awaited
        assert target is not None
        done = counters["commands_done"] + counters["commands_failed"] >= target
        if done or loop.time() >= gate.give_up:
            reasons = ", ".join(gate.why)
            gate.awaited, gate.why = None, []
            _signal(engine, reasons)
        else:
            loop.call_later(ACK_POLL, check)

    check()


def _signal_again(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGUSR1)


def reset(engine: ExaBGPEngine, upstream: Upstream) -> None:
    """``ExaBGPEngine.reset_upstream``: where the neighbor block changed, a reload; where it
    did not (a password file moved, say), a ``teardown`` with Cease/Other Configuration
    Change."""
    name = upstream.name
    config = engine.config
    old = next(u for u in config.upstreams if u.name == name)
    upstreams = tuple(upstream if u.name == name else u for u in config.upstreams)
    new_config = config.model_copy(update={"upstreams": upstreams})
    before = text.exabgp_config(config.model_copy(update={"upstreams": (old,)}), [])
    after = text.exabgp_config(new_config.model_copy(update={"upstreams": (upstream,)}), [])
    _rewrite(engine, new_config)
    old_address, address = engine.addresses[name], text.peer_address(upstream)
    if address != old_address:
        del engine.names[old_address]
        engine._retired.add(old_address)
        engine._retired.discard(address)
        engine.names[address] = name
        engine.addresses[name] = address
    engine._states[name] = State.IDLE  # the core took the old session down already
    engine._established_at[name] = None
    engine._graceful.reset(upstream)
    engine._sessions[name].forget()
    engine._details[name] = "reset: its configuration changed"
    if before == after:
        engine._send([text.format_teardown(old_address, CeaseSubcode.OTHER_CONFIGURATION_CHANGE)])
    else:
        _reload(engine, f"{name} changed")


def add(engine: ExaBGPEngine, upstream: Upstream) -> None:
    """``ExaBGPEngine.add_upstream``: a neighbor more, and a reload."""
    name = upstream.name
    upstreams = (*engine.config.upstreams, upstream)
    _rewrite(engine, engine.config.model_copy(update={"upstreams": upstreams}))
    address = text.peer_address(upstream)
    engine._retired.discard(address)
    engine.addresses[name] = address
    engine.names[address] = name
    engine._states[name] = State.IDLE
    engine._details[name] = ""
    engine._established_at[name] = None
    engine._received[name] = 0
    engine._families[name] = None
    engine._sessions[name] = ExaBGPSession(name)
    engine._graceful.reset(upstream)
    _reload(engine, f"{name} added")


def remove(engine: ExaBGPEngine, name: str) -> None:
    """``ExaBGPEngine.remove_upstream``: a neighbor less; while its session is up, every
    route it was sent withdrawn; then a reload (ExaBGP closes the connection). What ExaBGP
    still says of it is ignored."""
    upstreams = tuple(u for u in engine.config.upstreams if u.name != name)
    _rewrite(engine, engine.config.model_copy(update={"upstreams": upstreams}))
    address = engine.addresses.pop(name)
    del engine.names[address]
    engine._retired.add(address)
    up = engine._states[name] is State.ESTABLISHED
    del engine._states[name], engine._details[name], engine._established_at[name]
    del engine._received[name], engine._families[name], engine._sessions[name]
    held = engine.rib_out.held.pop(name, {})
    engine.rib_out.unconfirmed.pop(name, None)
    engine._graceful.forget(name)
    proc = engine._proc
    withdrawals = [
        line
        for family, prefixes in held.items()
        if prefixes
        for line in text.format_withdraw([address], family, list(prefixes))
    ]
    if up and withdrawals and proc is not None and proc.returncode is None:
        _reload_after(engine, withdrawals, f"{name} removed")
    else:
        _reload(engine, f"{name} removed")
