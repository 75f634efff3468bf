"""What a reloaded configuration changes. Pure: compares two validated configurations, both as
this node runs them (``bgpmux.placement``: only the upstreams that apply here, each at its
resolved address, so a default gateway that moved is a changed ``address``).

Session identity (README "Reload"): the fields that make up what a session is. A change to
them resets that session; a change to anything else does not.
- An upstream's identity is ``UPSTREAM_IDENTITY``: a change resets its session, with the new
  settings, at once. Its import policy (``UPSTREAM_POLICY_FIELDS``) applies live.
- A client's identity is every field but ``POLICY_FIELDS``; its policy applies live. A client
  added starts, one removed stops, and one whose identity changed is removed and added again
  (``clients_added``, ``clients_removed``): the other clients' sessions are not touched. A pure
  reorder of the clients is no change.
- An upstream added or removed (by ``name``) is added or removed live: ``upstreams_added``,
  ``upstreams_removed``. A pure reorder of the upstreams is no change (their order at start
  keeps ranking their routes; an added one ranks after all of them).
- What the node is (``node``: AS, router id, addresses), the engine, and an upstream's other
  fields are reported as needing a restart. ``name`` and ``node_cidrs`` (which only select
  upstreams) are no part of a session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Client, Config, Upstream

POLICY_FIELDS = frozenset(
    {
        "accept",
        "max_prefixes",
        "max_prefixes_action",
        "max_prefixes_restart",
        "priority",
        "receive_upstream_routes",
        "keep_client_as_path",
        "add_communities",
        "add_large_communities",
    }
)

UPSTREAM_IDENTITY = frozenset(
    {"address", "port", "asn", "password_file", "hold_time", "graceful_restart", "ttl_security"}
)
"""The fields of an upstream that define its session: its OPEN, its TCP connection and its
peer. (The node's ``asn``, ``router_id`` and addresses are part of every upstream session's
identity too; a change to them is reported as needing a restart.)"""

UPSTREAM_POLICY_FIELDS = frozenset({"accept", "max_prefixes"})
"""An upstream's import policy: applies live, every route it sent judged again."""

_UPSTREAM_SELECTION = frozenset({"name", "node_cidrs"})


def identity(client: Client) -> dict[str, Any]:
    """The fields of a client that define its session (changing them needs a new session)."""
    return {k: v for k, v in client.model_dump().items() if k not in POLICY_FIELDS}


@dataclass
class Plan:
    """What to do for a new configuration. ``pending``: changes that need a restart, in
    words. ``policies``: the new ``Client`` of every client whose identity is unchanged (its
    policy, changed or not, applies at once). ``upstream_policies``: the new ``Upstream`` of
    every upstream (its import policy applies at once, after a reset where there is one).
    ``resets``: the new ``Upstream`` of every upstream whose identity changed (its session is
    reset with these settings), and ``reset_fields`` the fields that changed, by name.
    ``upstreams_added``: the new upstreams, in the new configuration's order;
    ``upstreams_removed``: the names of those gone, in the running configuration's order.
    ``clients_added``: the new ``Client`` of every client to start, in the new file's order;
    ``clients_removed``: the names of the clients to stop. A client whose identity changed is
    in both (stopped, then started with its new settings), with the fields that changed in
    ``client_fields``."""

    pending: list[str] = field(default_factory=list)
    policies: list[Client] = field(default_factory=list)
    upstream_policies: list[Upstream] = field(default_factory=list)
    resets: list[Upstream] = field(default_factory=list)
    reset_fields: dict[str, list[str]] = field(default_factory=dict)
    upstreams_added: list[Upstream] = field(default_factory=list)
    upstreams_removed: list[str] = field(default_factory=list)
    clients_added: list[Client] = field(default_factory=list)
    clients_removed: list[str] = field(default_factory=list)
    client_fields: dict[str, list[str]] = field(default_factory=dict)


def plan(running: Config, new: Config) -> Plan:
    """Compare ``running`` with ``new`` (see the module's docstring)."""
    out = Plan()
    out.pending = [
        section
        for section in ("node", "engine", "gobgp", "exabgp", "metrics", "api")
        if getattr(new, section) != getattr(running, section)
    ]
    _plan_upstreams(running, new, out)
    _plan_clients(running, new, out)
    return out


def _plan_clients(running: Config, new: Config, out: Plan) -> None:
    """Clients by name: kept (policy applies), added, removed, or replaced (identity changed)."""
    before = {c.name: c for c in running.clients}
    for client in new.clients:
        old = before.get(client.name)
        if old is None:
            out.clients_added.append(client)
            continue
        ours, theirs = identity(client), identity(old)
        changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        if changed:
            out.clients_removed.append(client.name)
            out.clients_added.append(client)
            out.client_fields[client.name] = changed
        else:
            out.policies.append(client)
    names = {c.name for c in new.clients}
    out.clients_removed.extend(c.name for c in running.clients if c.name not in names)


def _plan_upstreams(running: Config, new: Config, out: Plan) -> None:
    before = {u.name: u for u in running.upstreams}
    names = {u.name for u in new.upstreams}
    out.upstreams_removed = [u.name for u in running.upstreams if u.name not in names]
    for index, upstream in enumerate(new.upstreams):
        old = before.get(upstream.name)
        if old is None:
            out.upstreams_added.append(upstream)
            continue
        ours, theirs = upstream.model_dump(), old.model_dump()
        changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        reset = [k for k in changed if k in UPSTREAM_IDENTITY]
        kept = UPSTREAM_IDENTITY | UPSTREAM_POLICY_FIELDS | _UPSTREAM_SELECTION
        other = [k for k in changed if k not in kept]
        out.upstream_policies.append(upstream)
        if reset:
            out.resets.append(upstream)
            out.reset_fields[upstream.name] = reset
        if other:
            out.pending.append(f"upstreams[{index}] ({upstream.name}): " + ", ".join(other))
