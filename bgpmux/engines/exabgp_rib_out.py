"""What ExaBGP's Adj-RIB-Out holds for each upstream, as bgpmux told it, and what to withdraw
from it after a session comes back.

With route refresh on, ExaBGP keeps an Adj-RIB-Out per neighbor (it answers ROUTE-REFRESH from
it) and re-announces all of it on each new session. While a session is down the core sends that
upstream nothing, so routes it stopped exporting meanwhile are still in there and would come
back. The core re-sends its whole table after the session is up and before End-of-RIB: what
ExaBGP held at session start and the core has not sent again by End-of-RIB is withdrawn then,
just before the End-of-RIB (the upstream sees what a graceful restart shows it: stale routes
refreshed, the rest swept at End-of-RIB).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..wire.constants import Family
from ..wire.prefix import Prefix
from . import exabgp_text as text

log = logging.getLogger("bgpmux.engine.exabgp")


class RibOutMirror:
    """Per upstream name and family, the prefixes announced through ExaBGP and not withdrawn
    (``held``), and of those held when its session last came up, the ones not announced
    since (``unconfirmed``)."""

    def __init__(self) -> None:
        self.held: dict[str, dict[Family, set[Prefix]]] = {}
        self.unconfirmed: dict[str, dict[Family, set[Prefix]]] = {}

    def announced(self, names: Iterable[str], family: Family, prefixes: Sequence[Prefix]) -> None:
        """``prefixes`` were handed to ExaBGP for ``names``."""
        for name in names:
            self.held.setdefault(name, {}).setdefault(family, set()).update(prefixes)
            waiting = self.unconfirmed.get(name, {}).get(family)
            if waiting:
                waiting.difference_update(prefixes)

    def withdrawn(self, names: Iterable[str], family: Family, prefixes: Sequence[Prefix]) -> None:
        """Withdrawals of ``prefixes`` were handed to ExaBGP for ``names``."""
        for name in names:
            for table in (self.held, self.unconfirmed):
                held = table.get(name, {}).get(family)
                if held:
                    held.difference_update(prefixes)

    def session_up(self, name: str) -> None:
        """``name``'s session is up: ExaBGP re-announces what it holds; each must be confirmed
        by the core's table before End-of-RIB."""
        self.unconfirmed[name] = {f: set(p) for f, p in self.held.get(name, {}).items() if p}

    def leftovers(self, name: str, family: Family) -> list[Prefix]:
        """At End-of-RIB of ``family`` to ``name``: what ExaBGP re-announced and the core did
        not send again, now forgotten (the caller withdraws it)."""
        left = self.unconfirmed.get(name, {}).pop(family, set())
        held = self.held.get(name, {}).get(family)
        if held and left:
            held.difference_update(left)
        return list(left)

    def end_of_rib(self, name: str, address: str, family: Family) -> list[str]:
        """The commands that end ``name``'s table of ``family`` (ExaBGP's neighbor
        ``address``): the withdrawal of its ``leftovers``, then End-of-RIB (RFC 4724 §2)."""
        lines = []
        leftovers = self.leftovers(name, family)
        if leftovers:
            log.info("withdrawing %d routes ExaBGP re-announced that are no longer exported",
                     len(leftovers), extra={"peer": name})  # fmt: skip
            lines = text.format_withdraw([address], family, leftovers)
        return [*lines, text.format_end_of_rib(address, family)]

    def clear(self) -> None:
        """ExaBGP ended: a new one starts with an empty Adj-RIB-Out."""
        self.held.clear()
        self.unconfirmed.clear()
