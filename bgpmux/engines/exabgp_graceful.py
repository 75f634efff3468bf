"""What ExaBGP 5.0 tells its API process about graceful restart (RFC 4724), pure: the
capability in a neighbor's OPEN (``receive { open; }``; its families too) and why a session
ended (the ``reason`` of its ``down`` message), and the engine's graceful-restart state built
from them. The ``exabgp`` engine needs them to act as a graceful-restart helper towards the
upstreams, which ExaBGP itself is not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..session.graceful import restart_note, stale_kept_on_return, stale_window
from ..session.states import DownReason
from ..wire.capabilities import GracefulRestart
from ..wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family

if TYPE_CHECKING:
    from ..config import Upstream

log = logging.getLogger("bgpmux.engine.exabgp")

FAMILY_BY_WORDS = {"ipv4 unicast": IPV4_UNICAST, "ipv6 unicast": IPV6_UNICAST}


def graceful_restart(capability: dict[str, Any]) -> GracefulRestart:
    """ExaBGP 5.0.15's JSON of a graceful-restart capability. It swaps two labels: a family
    whose F bit is set is listed with ``"restart"`` and an R bit shows as ``"forwarding"`` in
    ``restart-flags``; either word is taken for either bit, so a fixed ExaBGP reads the same.
    Families other than IPv4 and IPv6 unicast are left out."""
    flags = capability.get("restart-flags", [])
    families = []
    for words, family_flags in capability.get("address-family-flags", {}).items():
        family = FAMILY_BY_WORDS.get(str(words).replace("/", " "))
        if family is not None:
            families.append((family, bool({"restart", "forwarding"} & set(family_flags))))
    return GracefulRestart(
        restart_time=int(capability.get("time", 0)),
        restarting=bool({"restart", "forwarding"} & set(flags)),
        families=tuple(families),
    )


def multiprotocol_families(capabilities: dict[str, Any]) -> tuple[Family, ...]:
    """The families a neighbor's OPEN can carry, from ExaBGP's JSON of its capabilities (the
    multiprotocol one, code 1: ``{"families": ["ipv4/unicast", ...]}``); IPv4 unicast when it
    lists none (RFC 4760 §8). The session carries those of them that bgpmux offered too."""
    words = capabilities.get("1", {}).get("families", [])
    found = [FAMILY_BY_WORDS.get(str(w).replace("/", " ")) for w in words]
    return tuple(f for f in found if f is not None) if words else (IPV4_UNICAST,)


def down_reason(reason: str) -> DownReason:
    """Why ExaBGP 5.0 ended a session, from the ``reason`` of its ``down`` message: a
    NOTIFICATION received (``notification received (C,S)``), one it sent (``notification sent
    (C,S)``; code 4 is its hold timer, or a KEEPALIVE it could not send), a connection that
    was never Established (``connection received before …``); anything else (``closing
    connection``: the TCP connection ended; ``stop …``, ``process problem``) ended without a
    NOTIFICATION."""
    if reason.startswith("notification received"):
        return DownReason.NOTIFICATION_RECEIVED
    if reason.startswith("notification sent (4,"):
        return DownReason.HOLD_TIMER_EXPIRED
    if reason.startswith("notification sent"):
        return DownReason.PROTOCOL_ERROR
    if reason.startswith("connection received before"):
        return DownReason.COLLISION
    return DownReason.CONNECTION_LOST


class GracefulSessions:
    """The graceful-restart state of the engine's sessions, from what ExaBGP reports: per
    upstream, whether we offer graceful restart (``upstreams[].graceful_restart`` > 0), the
    capability of its last OPEN, and that of its Established session. ``families``: the
    families every session carries."""

    def __init__(self, upstreams: Iterable[Upstream], families: tuple[Family, ...]) -> None:
        self.families = families
        self._offered = {u.name: u.graceful_restart > 0 for u in upstreams}
        self._opened: dict[str, GracefulRestart | None] = {}
        self._established: dict[str, GracefulRestart | None] = {}

    def opened(self, name: str, capability: GracefulRestart | None) -> None:
        """The upstream's OPEN arrived (before its session is up), with ``capability``."""
        self._opened[name] = capability if self._offered[name] else None

    def established(self, name: str) -> frozenset[Family]:
        """The session is up: the families whose stale routes wait for its End-of-RIB (see
        ``session.graceful.stale_kept_on_return``). Logs what its capability says of a
        restart."""
        capability = self._established[name] = self._opened.pop(name, None)
        log.debug("graceful restart: %s", capability, extra={"peer": name})
        if note := restart_note(capability):
            log.info("%s", note, extra={"peer": name})
        return stale_kept_on_return(capability, self.families)

    def ended(
        self, name: str, reason: DownReason = DownReason.CONNECTION_LOST
    ) -> tuple[int | None, frozenset[Family] | None]:
        """The Established session ended for ``reason``: (seconds its routes stay stale,
        for which families), or (None, None) when they go at once (RFC 4724 §4.2). The
        default, a lost connection, is also how a session ends when ExaBGP itself ends: with
        graceful restart it sends no NOTIFICATION, and a killed one cannot."""
        capability = self._established.pop(name, None)
        stale_time, families = stale_window(capability, self.families, reason)
        return stale_time, families or None

    def new_run(self) -> None:
        """ExaBGP starts again: OPENs of the previous run are forgotten."""
        self._opened.clear()

    def reset(self, upstream: Upstream) -> None:
        """The upstream's session was reset with new settings (``reset_upstream``)."""
        self._offered[upstream.name] = upstream.graceful_restart > 0
        self._opened.pop(upstream.name, None)
        self._established.pop(upstream.name, None)

    def forget(self, name: str) -> None:
        """The upstream was removed (``remove_upstream``)."""
        self._offered.pop(name, None)
        self._opened.pop(name, None)
        self._established.pop(name, None)
