"""Route refresh, both ways, for clients and upstreams alike (RFC 2918, RFC 7313).

- A peer's ROUTE-REFRESH (subtype 0) for a family is answered by re-sending everything bgpmux
  exports to that peer for that family, through the same export path as any other change,
  without a reset. Where enhanced route refresh was negotiated, the answer is framed by BoRR
  and EoRR (RFC 7313 §4), so the peer sweeps what is no longer sent. While the peer still waits
  for bgpmux's End-of-RIB (the initial sync), the answer goes without BoRR/EoRR: an EoRR then
  would sweep the graceful-restart routes the End-of-RIB hold keeps in place.
- A peer's BoRR marks its routes of that family stale; what it re-sends before its EoRR is live
  again, the rest is swept at the EoRR, or ``REFRESH_STALE_TIME`` after the BoRR when no EoRR
  comes. An EoRR without a BoRR is ignored. Unknown subtypes never get here (the session
  ignores them, RFC 7313 §5).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..policy.channels import ClientChannel, UpstreamChannel
from ..policy.enhanced_refresh import REFRESH_STALE_TIME
from ..wire.constants import Family, RefreshSubtype
from .events import ClientRouteRefresh, UpstreamRouteRefresh

if TYPE_CHECKING:
    from .routing import Core

log = logging.getLogger("bgpmux.core")

REQUEST, BORR, EORR = RefreshSubtype  # ROUTE-REFRESH subtypes (RFC 7313 §3)


class Refresher:
    """The route-refresh handlers of one ``Core``; times are seconds on the runner's clock."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def client(self, event: ClientRouteRefresh, now: float) -> None:
        """A client's ROUTE-REFRESH (``event.family`` None: every family it negotiated)."""
        core = self.core
        client = core.clients[event.client]
        link = client.link
        if link is None:
            return
        if event.family is None:
            families = list(link.families)
        else:
            families = [event.family] if event.family in link.families else []
        if event.subtype != REQUEST:
            for family in families:
                self._framing(client.channel, family, event.subtype, now)
            return
        core.flush(now)  # what is pending goes first: the answer is the table as it stands
        wrap = client.name not in core.sync.eor_owed
        receives = client.channel.policy.receive_upstream_routes
        for family in families:
            enhanced = wrap and link.send_route_refresh(family, BORR)
            if receives:
                core.client_export.send_table(client, core.for_clients, [family])
            if enhanced:
                link.send_route_refresh(family, EORR)
            log.info(
                "route refresh for %s answered%s",
                family,
                " (BoRR ... EoRR)" if enhanced else "",
                extra={"peer": client.name},
            )

    def upstream(self, event: UpstreamRouteRefresh, now: float) -> None:
        """An upstream's ROUTE-REFRESH for ``event.family``."""
        core = self.core
        upstream = core.upstreams[event.upstream]
        family = event.family
        if not upstream.up or family not in upstream.families:  # negotiated and exported
            log.info(
                "route refresh for %s ignored: %s",
                family,
                "session not up" if not upstream.up else "a family this session does not carry",
                extra={"peer": upstream.name},
            )
            return
        if event.subtype != REQUEST:
            self._framing(upstream.channel, family, event.subtype, now)
            return
        core.flush(now)
        engine = core.engine
        enhanced = upstream.eor_sent and engine.send_route_refresh(upstream.name, family, BORR)
        core.table_to_upstream(upstream, family)
        if enhanced:
            engine.send_route_refresh(upstream.name, family, EORR)
        log.info(
            "route refresh for %s answered%s",
            family,
            " (BoRR ... EoRR)" if enhanced else "",
            extra={"peer": upstream.name},
        )

    def _framing(
        self, channel: ClientChannel | UpstreamChannel, family: Family, subtype: int, now: float
    ) -> None:
        """A BoRR or EoRR from the peer of ``channel`` (RFC 7313 §4)."""
        if subtype == BORR:
            channel.begin_refresh(family, now + REFRESH_STALE_TIME)
            log.info("BoRR for %s: routes stale until EoRR", family, extra={"peer": channel.name})
            return
        swept = channel.end_refresh(family)
        if swept is None:
            log.warning("EoRR for %s without a BoRR: ignored", family, extra={"peer": channel.name})
            return
        log.info(
            "EoRR for %s: %d stale routes swept", family, len(swept), extra={"peer": channel.name}
        )
        if swept:
            self.core._drop(channel, swept)

    def deadline(self, channels: list[ClientChannel | UpstreamChannel]) -> float | None:
        """The earliest end of a refresh under way (seconds), or None."""
        deadlines = [t for c in channels if (t := c.refresh_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, channels: list[ClientChannel | UpstreamChannel], now: float) -> None:
        """Refreshes whose EoRR did not come within ``REFRESH_STALE_TIME`` end: their stale
        routes are swept."""
        for channel in channels:
            if not channel.refreshing:
                continue
            swept = channel.expire_refreshes(now)
            if swept:
                log.warning(
                    "no EoRR within %gs of the BoRR: %d stale routes withdrawn",
                    REFRESH_STALE_TIME,
                    len(swept),
                    extra={"peer": channel.name},
                )
                self.core._drop(channel, swept)
