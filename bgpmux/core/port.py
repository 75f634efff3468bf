"""The engine port: the one interface through which the core reaches the upstreams, and the
events an engine reports back. It sits below the core and above the engines: the core imports
it, engines implement it, and neither the core nor this module imports any engine.

Calls from the core (``announce``, ``withdraw``, ``end_of_rib``) never block: an engine queues
and sends at its own pace. An engine reports through the ``UpstreamEvents`` it is given; an
engine that lost its state (a restarted child process) reports its upstreams down and up
again, and the core sends each its whole table once more.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..session.facts import SessionFacts
from ..session.states import State
from ..session.stats import SessionStats
from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.prefix import Prefix

if TYPE_CHECKING:
    from ..config import Upstream


@dataclass
class UpstreamStatus:
    """A snapshot of one upstream session: ``state`` as RFC 4271 §8 names it, when it was
    established (the loop's clock, seconds), the last error in words (``detail``), engine
    counters (``stats``), the session's identity and negotiated parameters (``facts``) and its
    message counters (``messages``: by type, NOTIFICATIONs by code and subcode; None where the
    engine cannot count them)."""

    name: str
    state: State
    established_at: float | None = None
    detail: str = ""
    stats: dict[str, int] = field(default_factory=dict)
    facts: SessionFacts = field(default_factory=SessionFacts)
    messages: SessionStats | None = None


class UpstreamEvents(Protocol):
    """What an engine may report about its upstreams (the core's runner implements it)."""

    def established(
        self,
        upstream: str,
        stale_kept: frozenset[Family] | None = None,
        families: Sequence[Family] | None = None,
        table_first: bool = False,
    ) -> None:
        """The session reached Established. ``stale_kept``: the families whose stale routes
        (kept since a graceful restart) may wait for the upstream's End-of-RIB, after its new
        graceful-restart capability (RFC 4724 §4.2); the others go at once. None: all wait
        (the engine cannot tell). ``families``: those the session negotiated (None: the
        engine does not know; every family of the node is assumed). ``table_first``: not
        yet, but the engine needs the whole table and End-of-RIB before it opens the session
        (gobgpd sends End-of-RIB right after its first table); it reports ``established``
        again, without it, once the session is up, and the upstream's own table (initial
        sync) is waited for from then."""

    def down(
        self,
        upstream: str,
        stale_time: float | None = None,
        stale_families: frozenset[Family] | None = None,
    ) -> None:
        """The session ended; with ``stale_time`` (seconds) the upstream may restart
        gracefully for ``stale_families`` (RFC 4724 §4.2) and its routes stay that long,
        marked stale. Engines give it when graceful restart was negotiated and the session
        ended without a NOTIFICATION (or on our hold timer), including when the engine's own
        speaker died."""

    def routes(
        self,
        upstream: str,
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> None:
        """Routes received, with one attribute set and next hop."""

    def withdrawn(self, upstream: str, family: Family, prefixes: Sequence[Prefix]) -> None:
        """Routes withdrawn."""

    def end_of_rib(self, upstream: str, family: Family) -> None:
        """The upstream's table of ``family`` is complete (RFC 4724 §2)."""

    def route_refresh(self, upstream: str, family: Family, subtype: int = 0) -> None:
        """A ROUTE-REFRESH from the upstream for ``family``: subtype 0 asks for our routes
        again (RFC 2918), 1 and 2 (BoRR, EoRR) frame its own re-advertisement (RFC 7313 §4).
        An engine whose speaker answers subtype 0 itself does not report it."""

    def congested(self) -> bool:
        """True while the core is behind: stop reading the upstream until ``when_drained``."""

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the core has caught up."""

    def handle_pending(self) -> None:
        """What was reported so far may be handled now (the engine finished a read): the
        core's fast path for a lone UPDATE. Doing nothing is correct, only slower."""


class SupervisorTask(Protocol):
    """What the daemon watches of an engine's long-lived task (an ``asyncio.Task``)."""

    def get_name(self) -> str:
        """The task's name, for the log line that reports its end."""

    def add_done_callback(self, fn: Callable[[Any], object], /, *, context: Any = None) -> None:
        """Call ``fn`` with the task once it ends."""


class Engine(abc.ABC):
    """What speaks BGP to the upstreams (``engine:`` in the config)."""

    name: str = "engine"
    restarts: int = 0  # times the engine had to restart its speaker (a metric)

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin connecting to the upstreams; returns once the engine runs (it retries failed
        connections itself). Raises OSError or ValueError, saying what, when its configuration
        cannot be used (an unreadable password file, say)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close the upstream sessions (Cease/Administrative Shutdown where possible)."""

    def supervisors(self) -> list[SupervisorTask]:
        """The engine's long-lived tasks, running after ``start``. Each must end only through
        ``stop``: the daemon treats any other end as fatal (``/healthz`` fails, exit 1)."""
        return []

    @abc.abstractmethod
    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> Mapping[str, Sequence[Prefix]]:
        """Queue ``prefixes`` for ``upstreams`` with one attribute set and next hop.

        Returns, per upstream, the prefixes that fit in no UPDATE with these attributes under
        that session's maximum message length (4096 octets, or 65535 with RFC 8654): they were
        not sent, and the caller withdraws them. Empty when everything was queued.
        """

    @abc.abstractmethod
    def withdraw(
        self, upstreams: Sequence[str], family: Family, prefixes: Sequence[Prefix]
    ) -> None:
        """Queue the withdrawal of ``prefixes`` from ``upstreams``."""

    @abc.abstractmethod
    def end_of_rib(self, upstream: str, family: Family) -> None:
        """Queue End-of-RIB for ``family`` to ``upstream`` (RFC 4724 §2). Like ``announce``
        and ``withdraw``, it must send nothing for a family the session did not negotiate."""

    def send_route_refresh(self, upstream: str, family: Family, subtype: int) -> bool:
        """Queue a BoRR (1) or EoRR (2) for ``family`` to ``upstream`` (RFC 7313 §4), behind
        what was queued before. Returns False, with nothing sent, where the session did not
        negotiate enhanced route refresh and ``family``, or is not Established; the default,
        for an engine that cannot send them, always does."""
        return False

    def reset_upstream(self, upstream: Upstream) -> None:
        """End the session of the upstream named ``upstream.name`` and open a new one with
        these settings (its identity changed on reload: a new address, port, AS, ...). The
        core has already taken the old session down: the engine reports no ``down`` for it,
        then ``established`` once the new one is up. Raises NotImplementedError where the
        engine cannot (the change then needs a restart)."""
        raise NotImplementedError(f"the {self.name} engine cannot reset one upstream session")

    def add_upstream(self, upstream: Upstream) -> None:
        """Dial a new upstream (added on reload; no session of that name runs), leaving the
        other sessions alone. The engine reports ``established`` once it is up, as for any
        upstream. Raises NotImplementedError where the engine cannot (the change then needs
        a restart), OSError or ValueError when it cannot use the settings (an unreadable
        password file, say); nothing is changed then."""
        raise NotImplementedError(f"the {self.name} engine cannot add an upstream session")

    def remove_upstream(self, name: str) -> None:
        """End the session of the upstream ``name`` (removed on reload) with Cease/Peer
        De-configured (RFC 4486 §3) where the engine lets us choose, and forget it: no
        further event about it, no ``status`` entry. The core takes it down itself. Raises
        NotImplementedError, OSError or ValueError, with nothing changed, where it cannot."""
        raise NotImplementedError(f"the {self.name} engine cannot remove an upstream session")

    @abc.abstractmethod
    def status(self) -> list[UpstreamStatus]:
        """A snapshot of every upstream session, for /metrics and ``bgpmux status``."""
