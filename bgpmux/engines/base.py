"""The one small interface every engine implements, and the calls it makes back into the core.

The core calls ``announce``/``withdraw``/``end_of_rib`` (non-blocking: the engine queues and
sends at its own pace). The engine reports upstream events by posting to the core:

    core.post(core.upstream_up, name, now)
    core.post(core.upstream_down, name, now)
    core.post(core.upstream_announce, name, family, attributes, next_hop, prefixes, now)
    core.post(core.upstream_withdraw, name, family, prefixes, now)

``upstream_up`` makes the core send that upstream its whole table and then End-of-RIB (held
until the clients have synced), so an engine that lost its state (a restarted child process)
just reports the upstreams down and up again.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.prefix import Prefix


@dataclass
class UpstreamStatus:
    name: str
    state: str  # "ESTABLISHED", "IDLE", "CONNECT", ... as the engine knows it
    established_at: float | None = None
    detail: str = ""
    stats: dict[str, int] = field(default_factory=dict)


class Engine(abc.ABC):
    name: str = "engine"
    restarts: int = 0  # times the engine had to restart its speaker (a metric)

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin connecting to the upstreams. Returns once the engine runs."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close the upstream sessions cleanly (Cease/Administrative Shutdown where possible)."""

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
        that session's maximum message length (4096, or 65535 with RFC 8654): they were not
        sent, and the caller withdraws them. Empty when everything was queued.
        """

    @abc.abstractmethod
    def withdraw(
        self, upstreams: Sequence[str], family: Family, prefixes: Sequence[Prefix]
    ) -> None: ...

    @abc.abstractmethod
    def end_of_rib(self, upstream: str, family: Family) -> None: ...

    @abc.abstractmethod
    def status(self) -> list[UpstreamStatus]:
        """A snapshot of every upstream session, for /metrics and ``bgpmux status``."""
