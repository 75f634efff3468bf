"""The receiving side of enhanced route refresh (RFC 7313 §4), shared by every channel.

At a peer's BoRR for a family its routes of that family become stale; what it re-sends before
its EoRR is live again, and what is still stale at the EoRR is swept. A peer that never sends
the EoRR (a bug, or a session that stalls) must not keep stale routes forever: the refresh
ends at a deadline the core sets (``REFRESH_STALE_TIME`` after the BoRR) and the stale routes
go then, as RFC 7313 §4 suggests.
"""

from __future__ import annotations

from ..rib.adj_rib_in import AdjRibIn
from ..wire.constants import Family
from ..wire.prefix import Prefix

# Seconds from a BoRR to the sweep when no EoRR came. A refresh re-sends one table over an
# Established session: at the exabgp engine's slowest (~0.3 ms a prefix) a 1M-route table takes
# about 5 minutes; the same bound as a graceful-restart client's stale routes once it is back.
REFRESH_STALE_TIME = 360.0


class EnhancedRefresh:
    """Mixed into a channel that has an ``rib``; ``refreshing`` maps each family between its
    BoRR and its EoRR to the deadline of that refresh (seconds, the core's clock)."""

    rib: AdjRibIn
    refreshing: dict[Family, float]

    def begin_refresh(self, family: Family, deadline: float) -> None:
        """A BoRR for ``family``: its routes become stale until they are re-sent (RFC 7313 §4).
        A second BoRR before the EoRR starts the refresh again, with the new ``deadline``."""
        self.rib.mark_family_stale(family)
        self.refreshing[family] = deadline

    def end_refresh(self, family: Family) -> list[tuple[Family, Prefix]] | None:
        """An EoRR for ``family``: the routes still stale are swept and returned (RFC 7313 §4).
        None when no refresh of ``family`` was under way (an EoRR without a BoRR: ignored)."""
        if self.refreshing.pop(family, None) is None:
            return None
        return self.rib.sweep(family)

    def expire_refreshes(self, now: float) -> list[tuple[Family, Prefix]]:
        """The refreshes whose deadline passed at ``now`` (seconds) end as an EoRR would;
        the routes swept are returned."""
        swept: list[tuple[Family, Prefix]] = []
        for family, deadline in list(self.refreshing.items()):
            if now >= deadline:
                del self.refreshing[family]
                swept += self.rib.sweep(family)
        return swept

    def refresh_deadline(self) -> float | None:
        """The earliest refresh deadline (seconds), or None when no refresh is under way."""
        return min(self.refreshing.values()) if self.refreshing else None
