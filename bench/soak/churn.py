"""The two load generators of the soak, each a thread with its own control socket.

``Churner``: the MetalLB role. A sliding window over a pool of LB addresses: every tick enables
the next address's static protocol and, once the window is full, disables the oldest one, so
``rate`` additions and ``rate`` removals happen per second and every address lives
``window / rate`` seconds. Ticks are scheduled on an absolute clock; a tick more than a second
late resynchronises instead of bursting (counted as ``skipped``).

``Flapper``: a client flapping every ``every`` seconds, alternating two kinds: ``disable``
(``birdc disable`` of Calico's session for FLAP_DOWN_S, then ``enable``: bgpmux withdraws at
once) and ``restart`` (SIGKILL of Calico's BIRD and a new ``bird -R``: bgpmux keeps its routes
stale, then refreshes and sweeps them at End-of-RIB, RFC 4724).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from ..birdctl import BirdCtl, BirdCtlError
from .rack import CALICO_PROTO, LB_POOL, Rack, lb_prefix, lb_protocol

FLAP_DOWN_S = 3.0
MAX_RECONNECTS = 3


class Churner(threading.Thread):
    def __init__(self, rack: Rack, rate: float, window: int, stop: threading.Event) -> None:
        super().__init__(name="soak-churner", daemon=True)
        if not 0 < window < LB_POOL:
            raise ValueError(f"window must be in 1..{LB_POOL - 1}")
        self.rack = rack
        self.rate = rate
        self.window = window
        self.stop = stop
        self.adds = self.removes = self.errors = self.skipped = 0
        self.failure: str | None = None
        self._active: deque[int] = deque()
        self._removed_at: dict[int, float] = {}
        self._lock = threading.Lock()
        self._ctl: BirdCtl | None = None
        self._reconnects = 0

    # ------------------------------------------------------------------ for the sampler

    def counters(self) -> tuple[int, int, int, int]:
        with self._lock:
            return self.adds, self.removes, self.errors, self.skipped

    def expected(self, grace: float) -> set[str]:
        """Prefixes active now or removed less than ``grace`` seconds ago."""
        now = time.monotonic()
        with self._lock:
            recent = {i for i, t in self._removed_at.items() if now - t < grace}
            return {lb_prefix(i) for i in (*self._active, *recent)}

    def active(self) -> set[str]:
        with self._lock:
            return {lb_prefix(i) for i in self._active}

    # ------------------------------------------------------------------ the thread

    def _cmd(self, command: str) -> bool:
        """One control-socket command; reconnects a bounded number of times."""
        while True:
            try:
                if self._ctl is None:
                    assert self.rack.metallb is not None
                    self._ctl = self.rack.ctl(self.rack.metallb)
                self._ctl.cmd(command)
                return True
            except BirdCtlError:
                self.errors += 1
                return False
            except OSError as error:
                if self._ctl is not None:
                    self._ctl.close()
                    self._ctl = None
                self._reconnects += 1
                if self._reconnects > MAX_RECONNECTS:
                    raise RuntimeError(f"MetalLB BIRD's socket: {error}") from error

    def run(self) -> None:
        try:
            self._loop()
        except Exception as error:  # reported by the runner, which then fails the phase
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            if self._ctl is not None:
                self._ctl.close()

    def _loop(self) -> None:
        period = 1.0 / self.rate
        step = 0
        due = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now < due:
                self.stop.wait(due - now)
                continue
            if now - due > 1.0:
                with self._lock:
                    self.skipped += int((now - due) / period)
                due = now
            index = step % LB_POOL
            ok = self._cmd(f"enable {lb_protocol(index)}")
            with self._lock:
                if ok:
                    self.adds += 1
                self._active.append(index)
                self._removed_at.pop(index, None)
            if len(self._active) > self.window:
                oldest = self._active[0]
                ok = self._cmd(f"disable {lb_protocol(oldest)}")
                with self._lock:
                    self._active.popleft()
                    self._removed_at[oldest] = time.monotonic()
                    if ok:
                        self.removes += 1
            step += 1
            due += period

    def withdraw_all(self) -> int:
        """After the thread has ended: disable every active address; returns how many."""
        if self.is_alive():
            raise RuntimeError("the churner is still running")
        assert self.rack.metallb is not None
        count = 0
        with self.rack.ctl(self.rack.metallb) as ctl:
            while self._active:
                index = self._active.popleft()
                ctl.cmd(f"disable {lb_protocol(index)}")
                count += 1
        return count


class Flapper(threading.Thread):
    def __init__(self, rack: Rack, every: float, first: float, stop: threading.Event) -> None:
        super().__init__(name="soak-flapper", daemon=True)
        self.rack = rack
        self.every = every
        self.first = first
        self.stop = stop
        self.events: list[dict[str, Any]] = []
        self.failure: str | None = None
        self.started = time.monotonic()
        # held while Calico's BIRD is being replaced: the runner's liveness check takes it
        self.restarting = threading.Lock()

    def run(self) -> None:
        due = self.started + self.first
        count = 0
        while not self.stop.wait(max(0.0, due - time.monotonic())):
            kind = ("disable", "restart")[count % 2]
            event: dict[str, Any] = {"t_s": round(time.monotonic() - self.started, 1), "kind": kind}
            try:
                self._flap(kind)
                event["reestablished_s"] = round(self.rack.wait_calico(), 2)
                event["ok"] = True
            except Exception as error:  # recorded; the runner fails the phase on it
                event["ok"] = False
                event["error"] = f"{type(error).__name__}: {str(error)[:300]}"
                self.failure = self.failure or event["error"]
            self.events.append(event)
            count += 1
            due += self.every
            while due < time.monotonic():  # a slow flap never makes the next ones burst
                due += self.every

    def _flap(self, kind: str) -> None:
        calico = self.rack.calico
        assert calico is not None
        if kind == "disable":
            with self.rack.ctl(calico) as ctl:
                ctl.cmd(f"disable {CALICO_PROTO}")
                self.stop.wait(FLAP_DOWN_S)
                ctl.cmd(f"enable {CALICO_PROTO}")
        else:
            with self.restarting:
                calico.kill9()
                calico.start()

    def ensure_up(self) -> None:
        """After the thread has ended: Calico's session enabled and Established."""
        if self.is_alive():
            raise RuntimeError("the flapper is still running")
        calico = self.rack.calico
        assert calico is not None
        if not calico.running:
            calico.start()
        with self.rack.ctl(calico) as ctl:
            ctl.cmd(f"enable {CALICO_PROTO}")  # answers "already enabled" when it is
        self.rack.wait_calico()
