"""Channels: what joins one peer to the Loc-RIB, in BIRD's sense. A channel holds the peer's
Adj-RIB-In and everything that judges what goes into it: the import filter, tagging, the
prefix limit, the record of refused prefixes, graceful-restart stale state and counters.

Channels are pure: an UPDATE (or a reload, or a timer) goes in, and what changed comes out as
values (``Imported``: the prefixes whose path changed, the new refusals to log, a cut-off). They
never log, send or read a clock; the core does that with what they return.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from ..rib.adj_rib_in import AdjRibIn
from ..rib.paths import Path, PathInterner, Source
from ..wire.attributes import PathAttributes
from ..wire.constants import IPV4_UNICAST, Family
from ..wire.messages import Update
from ..wire.prefix import Prefix
from .enhanced_refresh import EnhancedRefresh
from .prefix_list import PrefixList, PrefixRule
from .room import keep_within
from .transforms import ClientExport, RejectReason, Tagger
from .upstream_import import UpstreamImport, UpstreamImported, UpstreamPolicy

# (family, prefixes, the path they now have from this peer, or None: removed)
RouteChange = tuple[Family, Sequence[Prefix], Path | None]


class ClientPolicy(Protocol):
    """What a client channel needs of the client's configuration (``config.Client`` is one)."""

    @property
    def name(self) -> str:
        """The client's name, unique among the clients."""

    @property
    def asn(self) -> int:
        """The client's AS; equal to the node AS means iBGP."""

    @property
    def accept(self) -> tuple[PrefixRule, ...]:
        """The prefixes the client may announce (deny by default)."""

    @property
    def max_prefixes(self) -> int:
        """Most prefixes the client may hold, accepted or refused (RFC 4486 §4 cut-off)."""

    @property
    def max_prefixes_action(self) -> str:
        """What passing ``max_prefixes`` does: ``restart`` (cut off), ``block`` or ``warn``."""

    @property
    def priority(self) -> int:
        """Rank among clients announcing one prefix: higher wins (``rib.decision``)."""

    @property
    def receive_upstream_routes(self) -> bool:
        """Whether the client is sent the upstreams' routes."""

    @property
    def keep_client_as_path(self) -> bool:
        """Whether the upstreams see the client's AS path after the node AS."""

    @property
    def add_communities(self) -> tuple[int, ...]:
        """Communities (RFC 1997, ``A << 16 | B``) added to the client's routes."""

    @property
    def add_large_communities(self) -> tuple[tuple[int, int, int], ...]:
        """Large communities (RFC 8092) added to the client's routes."""


class CutOffReason(Enum):
    """Why a channel ends its peer's session."""

    MAX_PREFIXES = "max_prefixes"  # RFC 4486 §4: Cease/Maximum Number of Prefixes Reached


@dataclass(frozen=True, slots=True)
class CutOff:
    """The channel's verdict that the session must end: why, for which family, at what limit."""

    reason: CutOffReason
    family: Family
    limit: int


@dataclass(frozen=True, slots=True)
class LimitReached:
    """The peer reached ``limit`` and the action (``block`` or ``warn``) keeps its session."""

    family: Family
    limit: int
    action: str


@dataclass(slots=True)
class Imported:
    """What one UPDATE (or a reload) did to a channel.

    ``changes``: prefixes whose path from this peer changed, for the Loc-RIB to decide.
    ``rejected``: prefixes refused now for a reason they were not refused for before (log once).
    ``cut_off``: set when the peer went over its limit; the caller ends the session.
    ``limit_reached``: set when the peer reached its limit and the session stays (log once).
    """

    changes: list[RouteChange] = field(default_factory=list)
    rejected: list[tuple[Family, Prefix, RejectReason]] = field(default_factory=list)
    cut_off: CutOff | None = None
    limit_reached: LimitReached | None = None


class ClientChannel(EnhancedRefresh):
    """One client's side of the Loc-RIB.

    ``exportable``: the families bgpmux has a next hop for upstream; announcements of other
    families are refused (``RejectReason.NO_IPV6_NEXT_HOP``, or ``NO_IPV4_NEXT_HOP`` on an
    IPv6-only node). ``order``: the client's place in
    the config, the decision's last tie-breaker.
    """

    def __init__(
        self,
        policy: ClientPolicy,
        order: int,
        node_asn: int,
        exportable: Collection[Family],
    ) -> None:
        self.rib = AdjRibIn()
        # refused prefixes, with what the client sent, so a policy reload can judge them again
        self.rejected: dict[tuple[Family, Prefix], tuple[RejectReason, Path | None]] = {}
        self.stale_deadline: float | None = None  # graceful restart: when stale routes go
        self.awaiting_eor: set[Family] = set()  # graceful restart: families not yet re-sent
        self.refreshing: dict[Family, float] = {}  # enhanced route refresh: family -> deadline
        self.cutoffs = 0
        self.limit_hits = 0  # times the limit was reached (every action)
        self.blocked = 0  # announced prefixes dropped by the ``block`` action
        self.at_limit = False  # reached and not yet back under it
        self._order = order
        self._node_asn = node_asn
        self._exportable = frozenset(exportable)
        self._apply(policy)

    def _apply(self, policy: ClientPolicy) -> None:
        self.policy = policy
        self.source = Source(policy.name, False, policy.priority, self._order)
        self.accept = PrefixList(policy.accept)
        self.tag = Tagger(tuple(policy.add_communities), tuple(policy.add_large_communities))
        self.export = ClientExport(self._node_asn, ibgp=policy.asn == self._node_asn)
        self._paths = PathInterner()

    @property
    def name(self) -> str:
        """The client's name."""
        return self.policy.name

    # ------------------------------------------------------------------ import

    def receive(self, update: Update) -> Imported:
        """An UPDATE from the client (not an End-of-RIB: see ``end_of_rib``). Withdrawals go
        first. When the routes held plus refused pass ``max_prefixes``: with ``restart`` the
        announcement that passed it sets ``cut_off`` and the ones after it are not imported;
        with ``block`` the new prefixes over the limit are dropped (counted in ``blocked``);
        with ``warn`` all are kept. Reaching the limit sets ``limit_reached`` once, until the
        client is back under it."""
        out = Imported()
        rejected = self.rejected
        for family, withdrawn in update.withdrawals():
            out.changes.append((family, self.rib.remove_many(family, withdrawn), None))
            if rejected:
                for prefix in withdrawn:
                    rejected.pop((family, prefix), None)
        for family, attrs, next_hop, prefixes in update.announcements():
            self._import(family, attrs, next_hop, prefixes, out)
            if self._over_limit():  # the family whose announcement crossed the limit
                if self.policy.max_prefixes_action == "restart":
                    out.cut_off = self._cut_off(family)
                    break
                self._reach_limit(family, out)
        if self.at_limit and self._held() < self.policy.max_prefixes:
            self.at_limit = False
        return out

    def _import(
        self,
        family: Family,
        attrs: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
        out: Imported,
    ) -> None:
        path = self._paths.get(self.source, attrs, next_hop)
        if family not in self._exportable:
            out.changes.append((family, self.rib.remove_many(family, prefixes), None))
            reason = (
                RejectReason.NO_IPV4_NEXT_HOP if family.afi == 1 else RejectReason.NO_IPV6_NEXT_HOP
            )
            for prefix in prefixes:
                self._reject(family, prefix, reason, path, out)
            return
        accepted, refused = self.accept.split(family, prefixes)
        if self.policy.max_prefixes_action == "block":
            accepted, refused = self._within_limit(family, accepted, refused, out)
        if refused:
            out.changes.append((family, self.rib.remove_many(family, refused), None))
            for prefix in refused:
                self._reject(family, prefix, RejectReason.NOT_ACCEPTED, path, out)
        if self.rejected:
            for prefix in accepted:
                self.rejected.pop((family, prefix), None)
        out.changes.append((family, self.rib.set_many(family, accepted, path), path))

    def _reject(
        self, family: Family, prefix: Prefix, reason: RejectReason, path: Path, out: Imported
    ) -> None:
        key = (family, prefix)
        previous = self.rejected.get(key)
        self.rejected[key] = (reason, path)
        if previous is None or previous[0] is not reason:
            out.rejected.append((family, prefix, reason))

    def _held(self) -> int:
        return self.rib.count() + len(self.rejected)

    def _over_limit(self) -> bool:
        return self.rib.count() + len(self.rejected) > self.policy.max_prefixes

    def _cut_off(self, family: Family) -> CutOff:
        self.cutoffs += 1
        self.limit_hits += 1
        return CutOff(CutOffReason.MAX_PREFIXES, family, self.policy.max_prefixes)

    def _reach_limit(self, family: Family, out: Imported) -> None:
        if not self.at_limit:
            self.at_limit = True
            self.limit_hits += 1
            action = self.policy.max_prefixes_action
            out.limit_reached = LimitReached(family, self.policy.max_prefixes, action)

    def _within_limit(
        self,
        family: Family,
        accepted: list[Prefix],
        refused: list[Prefix],
        out: Imported,
    ) -> tuple[list[Prefix], list[Prefix]]:
        """The ``block`` action: of the prefixes not yet held (accepted or refused), only as
        many as fit under the limit are kept; the rest are dropped and counted."""
        room = self.policy.max_prefixes - self._held()
        kept_accepted, kept_refused, dropped = keep_within(
            room, self.rib, self.rejected, family, accepted, refused
        )
        if dropped:
            self.blocked += dropped
            self._reach_limit(family, out)
        return kept_accepted, kept_refused

    # ------------------------------------------------------------------ graceful restart

    def end_of_rib(self, family: Family) -> list[tuple[Family, Prefix]]:
        """End-of-RIB for ``family`` (RFC 4724 §4.2): its stale routes are swept; returned."""
        self.awaiting_eor.discard(family)
        swept = self.rib.sweep(family)
        if not self.rib.stale_count():
            self.stale_deadline = None
        return swept

    def keep_stale(
        self, families: Collection[Family] | None, deadline: float
    ) -> list[tuple[Family, Prefix]]:
        """The session went down gracefully (RFC 4724 §4.2): routes of ``families`` (default:
        all) stay, stale, until ``deadline`` (seconds, the core's clock); those of other
        families are removed and returned."""
        self.awaiting_eor.clear()
        self.refreshing.clear()
        dropped = self.rib.mark_stale(families)
        self.stale_deadline = deadline
        return dropped

    def sweep_stale(self) -> list[tuple[Family, Prefix]]:
        """Every stale route goes (the restart timer ended, or the client came back without
        graceful restart); returned."""
        self.stale_deadline = None
        return self.rib.sweep()

    def clear(self) -> list[tuple[Family, Prefix]]:
        """The session ended for good: every route goes, and the refusals are forgotten."""
        self.awaiting_eor.clear()
        self.refreshing.clear()
        self.rejected.clear()
        self.stale_deadline = None
        self.at_limit = False
        return self.rib.clear()

    # ------------------------------------------------------------------ reload

    def reconfigure(self, policy: ClientPolicy) -> Imported:
        """A new policy: every route the client sent, accepted or not, is judged again; stale
        routes stay stale (those the new accept list refuses are dropped).

        The returned ``changes`` carry no path: every prefix in them may have a new path (the
        client's ``Source`` changes with its priority), so each must be decided again over all
        sources. ``cut_off`` is set when the routes held plus refused exceed the new
        ``max_prefixes``. The Adj-RIB-In's tables are replaced (``AdjRibIn.clear``), so those
        ``AdjRibIn.tables`` gave before still hold the routes as they were.
        """
        routes = list(self.rib.items())
        refused = [(f, p, path) for (f, p), (_r, path) in self.rejected.items() if path]
        self._apply(policy)
        self.rib.clear()
        self.rejected = {}
        self.at_limit = False
        imported = Imported()
        groups: dict[tuple[Family, PathAttributes, bytes, bool], list[Prefix]] = {}
        touched: dict[Family, list[Prefix]] = {}
        for family, prefix, path, stale in routes:
            groups.setdefault((family, path.attributes, path.next_hop, stale), []).append(prefix)
            touched.setdefault(family, []).append(prefix)
        for family, prefix, path in refused:
            groups.setdefault((family, path.attributes, path.next_hop, False), []).append(prefix)
        for (family, attrs, next_hop, stale), prefixes in groups.items():
            if stale:  # still waiting for the client to send them again
                keep, _refused = self.accept.split(family, prefixes)
                path = self._paths.get(self.source, attrs, next_hop)
                self.rib.stale.setdefault(family, {}).update(dict.fromkeys(keep, path))
            else:
                self._import(family, attrs, next_hop, prefixes, imported)
        for family, changed, _path in imported.changes:
            touched.setdefault(family, []).extend(changed)
        out = Imported([(f, p, None) for f, p in touched.items()], imported.rejected)
        out.limit_reached = imported.limit_reached
        if self._over_limit():
            family = next(reversed(touched), IPV4_UNICAST)
            if self.policy.max_prefixes_action == "restart":
                out.cut_off = self._cut_off(family)
            else:
                self._reach_limit(family, out)
        return out


class UpstreamChannel(EnhancedRefresh):
    """One upstream's side of the Loc-RIB that serves the clients: its Adj-RIB-In, the AS
    loop check and its import policy (``policy``: ``accept`` and ``max_prefixes``, see
    ``upstream_import``; None: everything). Routes from an eBGP upstream whose AS_PATH holds
    the node AS are loops (RFC 4271 §9.1.2) unless ``allow_node_as``: they are kept out, and
    remembered so each is reported once."""

    def __init__(
        self,
        name: str,
        order: int,
        ebgp: bool,
        allow_node_as: bool,
        node_asn: int,
        policy: UpstreamPolicy | None = None,
    ) -> None:
        self.name = name
        self.source = Source(name, True, -order, order)
        self.ebgp = ebgp
        self.allow_node_as = allow_node_as
        self.node_asn = node_asn
        self.rib = AdjRibIn()
        self.looped: set[tuple[Family, Prefix]] = set()
        self.stale_deadline: float | None = None  # graceful restart: when stale routes go
        self.refreshing: dict[Family, float] = {}  # enhanced route refresh: family -> deadline
        self.imports = UpstreamImport(self.rib, policy)
        self._paths = PathInterner()

    def is_loop(self, attrs: PathAttributes) -> bool:
        """Whether routes with ``attrs`` are dropped as AS loops (RFC 4271 §9.1.2)."""
        return self.ebgp and not self.allow_node_as and self.node_asn in attrs.as_path_flat()

    def receive(
        self, family: Family, attrs: PathAttributes, next_hop: bytes, prefixes: Sequence[Prefix]
    ) -> UpstreamImported:
        """Routes announced with one attribute set: what changed, the prefixes newly dropped
        as loops or refused by the import policy, and a limit reached."""
        out = UpstreamImported()
        if self.is_loop(attrs):
            out.looped = [p for p in prefixes if (family, p) not in self.looped]
            self.looped.update((family, p) for p in out.looped)
            out.changes.append((family, self.rib.remove_many(family, prefixes), None))
            self.imports.forget(family, prefixes)
            return out
        if self.looped:
            self.looped.difference_update((family, p) for p in prefixes)
        path = self._paths.get(self.source, attrs, next_hop)
        accepted = self.imports.judge(family, prefixes, path, out)
        out.changes.append((family, self.rib.set_many(family, accepted, path), path))
        return out

    def withdraw(self, family: Family, prefixes: Sequence[Prefix]) -> RouteChange:
        """The upstream withdrew ``prefixes``: (family, those it held, None)."""
        if self.looped:
            self.looped.difference_update((family, p) for p in prefixes)
        removed = self.rib.remove_many(family, prefixes)
        self.imports.forget(family, prefixes)
        return family, removed, None

    def reconfigure(self, policy: UpstreamPolicy) -> UpstreamImported:
        """A new import policy: every route the upstream sent, accepted or refused, is judged
        again (stale routes stay stale; those now refused go). Prefixes dropped at the old
        limit are not known any more: they come back when the upstream sends them again.
        The returned changes carry no path: each prefix must be decided again. The
        Adj-RIB-In's tables are replaced (``AdjRibIn.clear``), so those ``AdjRibIn.tables``
        gave before still hold the routes as they were."""
        imports = self.imports
        routes = list(self.rib.items())
        refused = [(f, p, path) for (f, p), (_reason, path) in imports.rejected.items()]
        imports.configure(policy)
        self.rib.clear()
        imports.reset()
        groups: dict[tuple[Family, Path, bool], list[Prefix]] = {}
        touched: dict[Family, list[Prefix]] = {}
        for family, prefix, path, stale in routes:
            groups.setdefault((family, path, stale), []).append(prefix)
            touched.setdefault(family, []).append(prefix)
        for family, prefix, path in refused:
            groups.setdefault((family, path, False), []).append(prefix)
        out = UpstreamImported()
        for (family, path, stale), prefixes in groups.items():
            accepted = imports.judge(family, prefixes, path, out)
            if stale:  # still waiting for the upstream to send them again
                self.rib.stale.setdefault(family, {}).update(dict.fromkeys(accepted, path))
            else:
                self.rib.set_many(family, accepted, path)
                touched.setdefault(family, []).extend(accepted)  # refused before, maybe
        out.changes = [(family, list(dict.fromkeys(ps)), None) for family, ps in touched.items()]
        return out

    def keep_stale(
        self, families: Collection[Family] | None, deadline: float
    ) -> list[tuple[Family, Prefix]]:
        """The session went down and the upstream may restart gracefully (RFC 4724 §4.2):
        routes of ``families`` (default: all) stay, stale, until ``deadline`` (seconds, the
        core's clock), its End-of-RIB or a sweep; those of other families are removed and
        returned."""
        self.stale_deadline = deadline
        self.refreshing.clear()
        self.imports.rejected.clear()  # judged again when the upstream sends them again
        return self.rib.mark_stale(families)

    def end_of_rib(self, family: Family) -> list[tuple[Family, Prefix]]:
        """End-of-RIB for ``family`` (RFC 4724 §4.2): its stale routes are swept; returned."""
        swept = self.rib.sweep(family)
        if not self.rib.stale_count():
            self.stale_deadline = None
        return swept

    def sweep_stale(self) -> list[tuple[Family, Prefix]]:
        """Every stale route goes (the restart timer ended, RFC 4724 §4.2); returned."""
        self.stale_deadline = None
        return self.rib.sweep()

    def clear(self) -> list[tuple[Family, Prefix]]:
        """The session ended for good: every route goes; returned."""
        self.looped.clear()
        self.refreshing.clear()
        self.stale_deadline = None
        self.imports.reset()
        return self.rib.clear()
