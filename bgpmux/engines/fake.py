"""An engine that records what the core asks of it, for unit tests of the core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.port import Engine, UpstreamStatus
from ..session.states import State
from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.packing import nlri_room, split_too_large
from ..wire.prefix import Prefix, prefix_to_str

if TYPE_CHECKING:
    from ..config import Upstream


@dataclass(frozen=True)
class AnnounceCall:
    """One ``announce`` call, with the prefixes that fit (those too large are left out)."""

    upstreams: tuple[str, ...]
    family: Family
    attributes: PathAttributes
    next_hop: bytes
    prefixes: tuple[Prefix, ...]


@dataclass(frozen=True)
class WithdrawCall:
    """One ``withdraw`` call."""

    upstreams: tuple[str, ...]
    family: Family
    prefixes: tuple[Prefix, ...]


@dataclass(frozen=True)
class EndOfRibCall:
    """One ``end_of_rib`` call."""

    upstream: str
    family: Family


@dataclass(frozen=True)
class RouteRefreshCall:
    """One ``send_route_refresh`` call that sent (``enhanced`` upstreams only)."""

    upstream: str
    family: Family
    subtype: int


Call = AnnounceCall | WithdrawCall | EndOfRibCall | RouteRefreshCall


class FakeEngine(Engine):
    """Records every call in ``calls`` (and per kind); sizes announcements as if every session
    negotiated ``max_message_len`` octets. ``states`` is what ``status`` reports; tests set it."""

    name = "fake"

    def __init__(self, upstreams: Sequence[str] = (), max_message_len: int = 4096) -> None:
        self.upstreams = list(upstreams)
        self.max_message_len = max_message_len  # as if every session negotiated this
        self.calls: list[Call] = []  # every call, in order
        self.announces: list[AnnounceCall] = []
        self.withdraws: list[WithdrawCall] = []
        self.eors: list[EndOfRibCall] = []
        self.enhanced: set[str] = set()  # upstreams that negotiated enhanced route refresh
        self.started = False
        self.resets: list[Upstream] = []  # every reset_upstream call
        self.added: list[Upstream] = []  # every add_upstream call
        self.removed: list[str] = []  # every remove_upstream call
        self.refuse: Exception | None = None  # raised by add_upstream and remove_upstream
        self.stopped = False
        self.states: dict[str, State] = dict.fromkeys(self.upstreams, State.IDLE)

    async def start(self) -> None:
        """Set ``started``."""
        self.started = True

    async def stop(self) -> None:
        """Set ``stopped``."""
        self.stopped = True

    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> dict[str, list[Prefix]]:
        """Record the prefixes that fit; return the rest for every upstream."""
        room = nlri_room(family, attributes, next_hop, max_len=self.max_message_len)
        fit, too_large = split_too_large(prefixes, room)
        if fit:
            call = AnnounceCall(tuple(upstreams), family, attributes, next_hop, tuple(fit))
            self.calls.append(call)
            self.announces.append(call)
        return dict.fromkeys(upstreams, too_large) if too_large else {}

    def withdraw(
        self, upstreams: Sequence[str], family: Family, prefixes: Sequence[Prefix]
    ) -> None:
        """Record the withdrawal."""
        call = WithdrawCall(tuple(upstreams), family, tuple(prefixes))
        self.calls.append(call)
        self.withdraws.append(call)

    def end_of_rib(self, upstream: str, family: Family) -> None:
        """Record the End-of-RIB."""
        call = EndOfRibCall(upstream, family)
        self.calls.append(call)
        self.eors.append(call)

    def send_route_refresh(self, upstream: str, family: Family, subtype: int) -> bool:
        """Record a BoRR/EoRR for an upstream in ``enhanced``; False for the others."""
        if upstream not in self.enhanced:
            return False
        self.calls.append(RouteRefreshCall(upstream, family, subtype))
        return True

    def reset_upstream(self, upstream: Upstream) -> None:
        """Recorded in ``resets``."""
        self.resets.append(upstream)

    def add_upstream(self, upstream: Upstream) -> None:
        """Recorded in ``added`` (its state IDLE); raises ``refuse`` when set."""
        if self.refuse is not None:
            raise self.refuse
        self.added.append(upstream)
        self.states[upstream.name] = State.IDLE

    def remove_upstream(self, name: str) -> None:
        """Recorded in ``removed`` (its state gone); raises ``refuse`` when set."""
        if self.refuse is not None:
            raise self.refuse
        self.removed.append(name)
        self.states.pop(name, None)

    def status(self) -> list[UpstreamStatus]:
        """One ``UpstreamStatus`` per entry of ``states``."""
        return [UpstreamStatus(name, state) for name, state in self.states.items()]

    def clear(self) -> None:
        """Forget every recorded call."""
        self.calls.clear()
        self.announces.clear()
        self.withdraws.clear()
        self.eors.clear()

    def table(
        self, family: Family, upstream: str | None = None
    ) -> dict[str, tuple[PathAttributes, bytes]]:
        """The net effect of every call so far: prefix as text -> (attributes, next hop).

        With ``upstream``, only the calls that named that upstream count.
        """
        out: dict[str, tuple[PathAttributes, bytes]] = {}
        for call in self.calls:
            if isinstance(call, EndOfRibCall | RouteRefreshCall) or call.family != family:
                continue
            if upstream is not None and upstream not in call.upstreams:
                continue
            if isinstance(call, AnnounceCall):
                for prefix in call.prefixes:
                    out[prefix_to_str(family, prefix)] = (call.attributes, call.next_hop)
            else:
                for prefix in call.prefixes:
                    out.pop(prefix_to_str(family, prefix), None)
        return out

    def eor_sent(self, upstream: str, family: Family) -> bool:
        """Whether End-of-RIB for ``family`` went to ``upstream``."""
        return EndOfRibCall(upstream, family) in self.eors
