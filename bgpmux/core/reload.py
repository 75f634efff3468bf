"""What a reloaded configuration changes: client policies (applied live) and session identities
(which need a restart). Pure: compares two validated configurations."""

from __future__ import annotations

from typing import Any

from ..config import Client, Config

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


def identity(client: Client) -> dict[str, Any]:
    """The fields of a client that define its session (changing them needs a new session)."""
    return {k: v for k, v in client.model_dump().items() if k not in POLICY_FIELDS}


def diff(running: Config, new: Config) -> tuple[list[str], list[Client]]:
    """(changes that need a restart, in words; the new ``Client`` of every client whose
    session identity is unchanged, so its policy, changed or not, can apply at once). When
    clients were added, removed or reordered, no client policy is returned."""
    pending = [
        section
        for section in ("node", "engine", "gobgp", "exabgp", "upstreams", "metrics", "api")
        if getattr(new, section) != getattr(running, section)
    ]
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
