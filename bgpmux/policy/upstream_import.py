"""An upstream's import policy: its ``accept`` prefix list and ``max_prefixes``, the prefixes it
refused (kept with their path, so that a reload can judge them again) and its limit counters.

Unlike a client's, an upstream's default is to accept everything, and passing its limit never
ends the session: that session also carries the node's own routes to the fabric, and a Cease
(RFC 4486 §4) would cut the node off to save bgpmux some memory. So past ``max_prefixes`` the
new prefixes are dropped (counted in ``blocked``), those already held are still updated and
withdrawn, and the ToR's session stays up. Pure: no logging, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..rib.adj_rib_in import AdjRibIn
from ..rib.paths import Path
from ..wire.constants import Family
from ..wire.prefix import Prefix
from .prefix_list import PrefixList, PrefixRule
from .room import keep_within
from .transforms import RejectReason


class UpstreamPolicy(Protocol):
    """What an upstream's import policy needs of its configuration (``config.Upstream``)."""

    @property
    def accept(self) -> tuple[PrefixRule, ...] | None:
        """The prefixes the upstream may send; None: every prefix."""

    @property
    def max_prefixes(self) -> int | None:
        """Most prefixes held from the upstream, accepted or refused; None: no limit."""


@dataclass(slots=True)
class UpstreamImported:
    """What one announcement from an upstream did: ``changes`` (family, prefixes, their new
    path or None: removed), ``looped`` (prefixes newly dropped as AS loops), ``rejected``
    (prefixes refused now for a reason they were not refused for before: log once),
    ``limit_reached`` (the ``max_prefixes`` just reached, to log once; None otherwise)."""

    changes: list[tuple[Family, Sequence[Prefix], Path | None]] = field(default_factory=list)
    looped: list[Prefix] = field(default_factory=list)
    rejected: list[tuple[Family, Prefix, RejectReason]] = field(default_factory=list)
    limit_reached: int | None = None


class UpstreamImport:
    """The import policy of one upstream, applied to its Adj-RIB-In ``rib``."""

    def __init__(self, rib: AdjRibIn, policy: UpstreamPolicy | None) -> None:
        self.rib = rib
        self.rejected: dict[tuple[Family, Prefix], tuple[RejectReason, Path]] = {}
        self.blocked = 0  # new prefixes dropped at the limit, since start
        self.at_limit = False  # reached and not yet back under it
        self.configure(policy)

    def configure(self, policy: UpstreamPolicy | None) -> None:
        """Take a new policy (for routes judged from now on; see ``UpstreamChannel``)."""
        accept = policy.accept if policy is not None else None
        self.accept = PrefixList(accept) if accept is not None else None
        self.max_prefixes = policy.max_prefixes if policy is not None else None

    def reset(self) -> None:
        """Nothing is refused and the limit is not reached (the routes are gone, or are to be
        judged again); the counters stay."""
        self.rejected.clear()
        self.at_limit = False

    def held(self) -> int:
        """Prefixes held from the upstream: in the Adj-RIB-In (stale too) or refused."""
        return self.rib.count() + len(self.rejected)

    def judge(
        self, family: Family, prefixes: Sequence[Prefix], path: Path, out: UpstreamImported
    ) -> list[Prefix]:
        """Announced ``prefixes`` with ``path``: records the refused ones (taking them out of
        the Adj-RIB-In) and the changes in ``out``; returns those to set in the Adj-RIB-In."""
        refused: list[Prefix]
        if self.accept is None:
            accepted, refused = list(prefixes), []
        else:
            accepted, refused = self.accept.split(family, prefixes)
        if self.max_prefixes is not None:
            accepted, refused = self._within_limit(family, accepted, refused, out)
        rejected = self.rejected
        if refused:
            out.changes.append((family, self.rib.remove_many(family, refused), None))
            for prefix in refused:
                previous = rejected.get((family, prefix))
                rejected[(family, prefix)] = (RejectReason.NOT_ACCEPTED, path)
                if previous is None:
                    out.rejected.append((family, prefix, RejectReason.NOT_ACCEPTED))
        if rejected:
            for prefix in accepted:
                rejected.pop((family, prefix), None)
        return accepted

    def forget(self, family: Family, prefixes: Sequence[Prefix]) -> None:
        """The upstream withdrew ``prefixes`` (or they were dropped as loops)."""
        if self.rejected:
            for prefix in prefixes:
                self.rejected.pop((family, prefix), None)
        self.update_limit()

    def update_limit(self) -> None:
        """Note whether the upstream is back under its limit."""
        if self.at_limit and (self.max_prefixes is None or self.held() < self.max_prefixes):
            self.at_limit = False

    def _within_limit(
        self, family: Family, accepted: list[Prefix], refused: list[Prefix], out: UpstreamImported
    ) -> tuple[list[Prefix], list[Prefix]]:
        assert self.max_prefixes is not None
        kept_accepted, kept_refused, dropped = keep_within(
            self.max_prefixes - self.held(), self.rib, self.rejected, family, accepted, refused
        )
        if dropped:
            self.blocked += dropped
            if not self.at_limit:
                self.at_limit = True
                out.limit_reached = self.max_prefixes
        return kept_accepted, kept_refused
