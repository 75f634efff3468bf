"""What a reloaded configuration changes: client and upstream import policies (applied live) and
session identities (which need a restart). Pure: compares two validated configurations."""

from __future__ import annotations

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


UPSTREAM_POLICY_FIELDS = frozenset({"accept", "max_prefixes"})


def upstream_identity(upstream: Upstream) -> dict[str, Any]:
    """The fields of an upstream that define its session (all but its import policy)."""
    return {k: v for k, v in upstream.model_dump().items() if k not in UPSTREAM_POLICY_FIELDS}


def upstream_policies(running: Config, new: Config) -> list[Upstream]:
    """The new ``Upstream`` of every upstream whose session identity is unchanged, so that
    its import policy can apply at once; none when upstreams were added, removed or
    reordered."""
    if [u.name for u in new.upstreams] != [u.name for u in running.upstreams]:
        return []
    pairs = zip(running.upstreams, new.upstreams, strict=True)
    return [u for old, u in pairs if upstream_identity(old) == upstream_identity(u)]


def identity(client: Client) -> dict[str, Any]:
    """The fields of a client that define its session (changing them needs a new session)."""
    return {k: v for k, v in client.model_dump().items() if k not in POLICY_FIELDS}


def diff(running: Config, new: Config) -> tuple[list[str], list[Client]]:
    """(changes that need a restart, in words; the new ``Client`` of every client whose
    session identity is unchanged, so its policy, changed or not, can apply at once). When
    clients were added, removed or reordered, no client policy is returned."""
    pending = [
        section
        for section in ("node", "engine", "gobgp", "exabgp", "metrics", "api")
        if getattr(new, section) != getattr(running, section)
    ]
    if len(upstream_policies(running, new)) != len(new.upstreams):
        pending.append("upstreams")
    if [c.name for c in new.clients] != [c.name for c in running.clients]:
        pending.append("clients (added, removed or reordered)")
        return pending, []
    policies: list[Client] = []
    for index, (old, client) in enumerate(zip(running.clients, new.clients, strict=True)):
        ours, theirs = identity(client), identity(old)
        changed = sorted(k for k in ours if ours[k] != theirs[k])
        if changed:
            pending.append(f"clients[{index}] ({client.name}): " + ", ".join(changed))
        else:
            policies.append(client)
    return pending, policies
