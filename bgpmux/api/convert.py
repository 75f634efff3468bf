"""Between bgpmux's plain data and the API's messages (proto/bgpmux/v1), both ways.

To messages: the core's route rows (``core.views``), a peer's snapshot, the core's watch
changes. From messages: the plain, JSON-ready dicts of the CLI's ``-o json`` contract (see
``route_dict`` and ``peer_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.watch import Change, ConflictSeen, RouteChange, SessionChange
from ..session.facts import SessionFacts
from ..session.states import State
from ..v1 import events_pb2, peers_pb2, routes_pb2

ROLES = {"client": peers_pb2.ROLE_CLIENT, "upstream": peers_pb2.ROLE_UPSTREAM}
ROLE_NAMES = {v: k for k, v in ROLES.items()}
STATES = {
    State.IDLE: peers_pb2.SESSION_STATE_IDLE,
    State.CONNECT: peers_pb2.SESSION_STATE_CONNECT,
    State.ACTIVE: peers_pb2.SESSION_STATE_ACTIVE,
    State.OPEN_SENT: peers_pb2.SESSION_STATE_OPENSENT,
    State.OPEN_CONFIRM: peers_pb2.SESSION_STATE_OPENCONFIRM,
    State.ESTABLISHED: peers_pb2.SESSION_STATE_ESTABLISHED,
}
# The JSON contract's spelling, the same for every engine: IDLE ... OPENSENT, OPENCONFIRM ...
STATE_NAMES = {v: k.name.replace("_", "") for k, v in STATES.items()}
DIRECTIONS = {True: events_pb2.RouteEvent.DIRECTION_TO_UPSTREAMS,
              False: events_pb2.RouteEvent.DIRECTION_TO_CLIENTS}  # fmt: skip
DIRECTION_NAMES = {v: "to_upstreams" if k else "to_clients" for k, v in DIRECTIONS.items()}

# ---------------------------------------------------------------------------- to messages


def route_message(row: Mapping[str, Any]) -> routes_pb2.Route:
    """A ``core.views.route_view`` row as a ``Route``."""
    route = routes_pb2.Route(
        upstream=row["upstream"] or "",
        client=row["client"] or "",
        prefix=row["prefix"],
        family=row["family"],
        next_hop=row["next_hop"] or "",
        as_path=row["as_path"],
        communities=row["communities"],
        large_communities=row["large_communities"],
        origin=row["origin"] or "",
        stale=row["stale"],
        best=row["best"],
        reason=row["reason"] or "",
    )
    if row["med"] is not None:
        route.med = row["med"]
    if row["local_pref"] is not None:
        route.local_pref = row["local_pref"]
    return route


@dataclass
class PeerSnapshot:
    """What the server knows of one session, from the listeners or the engine (``facts``
    possibly empty), the configuration (the fallback address and AS) and the core
    (``counts``, a ``core.views.peer_counts`` entry). Times are Unix seconds."""

    name: str
    role: str
    state: State
    facts: SessionFacts
    address: str
    asn: int | None
    since: float | None
    now: float
    counts: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""


def peer_message(peer: PeerSnapshot) -> peers_pb2.Peer:
    """A ``Peer`` from its snapshot: the session's own address and AS (``facts``) where known,
    else the configuration's."""
    facts = peer.facts
    counts = peer.counts
    message = peers_pb2.Peer(
        name=peer.name,
        role=ROLES[peer.role],
        address=facts.address or peer.address,
        local_address=facts.local_address,
        state=STATES[peer.state],
        last_error=facts.last_error,
        capabilities=facts.capabilities,
        graceful_restart=facts.graceful_restart,
        detail=peer.detail,
        flaps=counts.get("flaps", 0),
        counts=peers_pb2.PrefixCounts(
            received=counts.get("received", 0),
            accepted=counts.get("accepted", 0),
            rejected=counts.get("rejected", 0),
            rejected_by_reason=counts.get("rejected_by_reason", {}),
            stale=counts.get("stale", 0),
            advertised=counts.get("advertised", 0),
        ),
    )
    asn = facts.asn if facts.asn is not None else peer.asn
    if asn is not None:
        message.asn = asn
    if peer.since is not None and peer.state is State.ESTABLISHED:
        message.since = peer.since
        message.uptime = max(0.0, peer.now - peer.since)
    if facts.last_error_at is not None:
        message.last_error_at = facts.last_error_at
    if facts.hold_time is not None:
        message.hold_time = facts.hold_time
    if facts.keepalive is not None:
        message.keepalive = facts.keepalive
    return message


def event_message(change: Change, now: float) -> events_pb2.Event:
    """One of the core's watch changes as an ``Event`` at ``now`` (Unix seconds)."""
    if isinstance(change, SessionChange):
        state = peers_pb2.SESSION_STATE_ESTABLISHED if change.up else peers_pb2.SESSION_STATE_IDLE
        session = events_pb2.SessionEvent(
            peer=change.peer, role=ROLES[change.role], state=state, stale_time=change.stale_time
        )
        return events_pb2.Event(time=now, session=session)
    if isinstance(change, RouteChange):
        route = events_pb2.RouteEvent(
            direction=DIRECTIONS[change.to_upstreams],
            family=change.family,
            announced=change.announced,
            withdrawn=change.withdrawn,
        )
        return events_pb2.Event(time=now, route=route)
    assert isinstance(change, ConflictSeen)
    conflict = events_pb2.ConflictEvent(
        prefix=change.prefix,
        family=change.family,
        best=change.best,
        losers=change.losers,
        reason=change.reason,
    )
    return events_pb2.Event(time=now, conflict=conflict)


def reload_message(
    errors: list[tuple[str, str]], needs_restart: list[str]
) -> events_pb2.ReloadEvent:
    """A reload's outcome: ok when ``errors`` (field path, message) is empty."""
    return events_pb2.ReloadEvent(
        ok=not errors,
        errors=[events_pb2.ConfigFieldError(field=f, message=m) for f, m in errors],
        needs_restart=needs_restart,
    )


# ---------------------------------------------------------------------------- from messages


def route_dict(route: routes_pb2.Route) -> dict[str, Any]:
    """A ``Route`` as the CLI's JSON row: upstream, client, prefix, family, next_hop, as_path
    (list of int), med (int or None), local_pref, communities ("64514:10"), large_communities
    ("64512:1:2"), origin, stale, best, reason (None unless refused). Empty strings are None."""
    return {
        "upstream": route.upstream or None,
        "client": route.client or None,
        "prefix": route.prefix,
        "family": route.family,
        "next_hop": route.next_hop or None,
        "as_path": list(route.as_path),
        "med": route.med if route.HasField("med") else None,
        "local_pref": route.local_pref if route.HasField("local_pref") else None,
        "communities": list(route.communities),
        "large_communities": list(route.large_communities),
        "origin": route.origin or None,
        "stale": route.stale,
        "best": route.best,
        "reason": route.reason or None,
    }


def peer_dict(peer: peers_pb2.Peer) -> dict[str, Any]:
    """A ``Peer`` as the CLI's JSON object: name, role ("client"/"upstream"), state (IDLE,
    CONNECT, ACTIVE, OPENSENT, OPENCONFIRM, ESTABLISHED), address, asn (int or None), since
    and uptime (seconds or None), local_address, capabilities, hold_time, keepalive,
    graceful_restart, last_error, last_error_at, the counts (received, accepted, rejected,
    rejected_by_reason, stale, advertised, and prefixes = accepted), flaps and detail."""
    counts = peer.counts

    def opt(name: str) -> Any:
        return getattr(peer, name) if peer.HasField(name) else None  # type: ignore[arg-type]

    return {
        "name": peer.name,
        "role": ROLE_NAMES.get(peer.role, "unknown"),
        "state": STATE_NAMES.get(peer.state, "UNKNOWN"),
        "address": peer.address or None,
        "asn": opt("asn"),
        "since": opt("since"),
        "uptime": opt("uptime"),
        "local_address": peer.local_address or None,
        "capabilities": list(peer.capabilities),
        "hold_time": opt("hold_time"),
        "keepalive": opt("keepalive"),
        "graceful_restart": peer.graceful_restart or None,
        "last_error": peer.last_error or None,
        "last_error_at": opt("last_error_at"),
        "received": counts.received,
        "accepted": counts.accepted,
        "prefixes": counts.accepted,
        "rejected": counts.rejected,
        "rejected_by_reason": dict(counts.rejected_by_reason),
        "stale": counts.stale,
        "advertised": counts.advertised,
        "flaps": peer.flaps,
        "detail": peer.detail,
    }


def event_dict(event: events_pb2.Event) -> dict[str, Any]:
    """An ``Event`` as plain data: ``{"time": ..., "type": "session"|"route"|"conflict"|
    "reload"|"lost", ...}`` with the kind's fields."""
    kind = event.WhichOneof("kind")
    out: dict[str, Any] = {"time": event.time, "type": kind}
    if kind == "session":
        s = event.session
        out.update(peer=s.peer, role=ROLE_NAMES.get(s.role), state=STATE_NAMES.get(s.state),
                   stale_time=s.stale_time)  # fmt: skip
    elif kind == "route":
        r = event.route
        out.update(direction=DIRECTION_NAMES.get(r.direction), family=r.family,
                   announced=list(r.announced), withdrawn=list(r.withdrawn))  # fmt: skip
    elif kind == "conflict":
        c = event.conflict
        out.update(prefix=c.prefix, family=c.family, best=c.best, losers=list(c.losers),
                   reason=c.reason)  # fmt: skip
    elif kind == "reload":
        out.update(reload_dict(event.reload))
    elif kind == "lost":
        out["lost"] = event.lost
    return out


def reload_dict(reload: events_pb2.ReloadEvent) -> dict[str, Any]:
    """A ``ReloadEvent`` as ``{"ok", "errors": [{"field", "message"}], "needs_restart"}``."""
    return {
        "ok": reload.ok,
        "errors": [{"field": e.field, "message": e.message} for e in reload.errors],
        "needs_restart": list(reload.needs_restart),
    }
