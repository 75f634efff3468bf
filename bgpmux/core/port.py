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

from ..session.states import State
from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.prefix import Prefix

if TYPE_CHECKING:
    from ..config import Upstream


@dataclass
class UpstreamStatus:
    """A snapshot of one upstream session: ``state`` as RFC 4271 §8 names it, when it was
    established (the loop's clock, seconds), the last error in words, engine counters."""

    name: str
    state: State
    established_at: float | None = None
    detail: str = ""
    stats: dict[str, int] = field(default_factory=dict)


class UpstreamEvents(Protocol):
    """What an engine may report about its upstreams (the core's runner implements it)."""

    def established(self, upstream: str) -> None:
        """The session reached Established."""

    def down(
        self,
        upstream: str,
        stale_time: float | None = None,
        stale_families: frozenset[Family] | None = None,
    ) -> None:
        """The session ended; with ``stale_time`` (seconds) the upstream may restart
        gracefully for ``stale_families`` (RFC 4724 §4.2) and its routes stay that long."""

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

    def route_refresh(self, upstream: str, family: Family) -> None:
        """The upstream asked for our routes of ``family`` again (RFC 2918)."""

    def congested(self) -> bool:
        """True while the core is behind: stop reading the upstream until ``when_drained``."""

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the core has caught up."""


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
        """Queue End-of-RIB for ``family`` to ``upstream`` (RFC 4724 §2)."""

    def reset_upstream(self, upstream: Upstream) -> None:
        """End the session of the upstream named ``upstream.name`` and open a new one with
        these settings (its identity changed on reload: a new address, port, AS, ...). The
        core has already taken the old session down: the engine reports no ``down`` for it,
        then ``established`` once the new one is up. Raises NotImplementedError where the
        engine cannot (the change then needs a restart)."""
        raise NotImplementedError(f"the {self.name} engine cannot reset one upstream session")

    @abc.abstractmethod
    def status(self) -> list[UpstreamStatus]:
        """A snapshot of every upstream session, for /metrics and ``bgpmux status``."""
