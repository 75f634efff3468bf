"""Applying a reloaded configuration to the core (``Reconfigure``): client and upstream import
policies live, a reset of every upstream whose session identity changed, clients added and
removed (``client_set``), and upstreams added and removed (``reload.plan`` says which;
``upstream_set`` adds and removes)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..config import Client, Upstream
from . import reload
from .client_import import client_imported
from .client_set import apply_client_set
from .events import Reconfigure, UpstreamDown
from .peers import ClientPeer
from .upstream_policy import apply_upstream_policies
from .upstream_set import add_upstreams, remove_upstreams

if TYPE_CHECKING:
    from .routing import Core

log = logging.getLogger("bgpmux.core")


def reconfigure(core: Core, event: Reconfigure, now: float) -> list[str]:
    """Apply ``event.config`` (as this node runs it, ``bgpmux.placement``) to ``core``;
    returns what needs a restart, in words.

    Policy fields apply at once, every route a peer sent judged again (a lower client
    max_prefixes may close its session). Clients added start, clients removed stop, a client
    whose identity changed is restarted with it (``client_set``). An upstream whose session
    identity changed is reset with its new settings. Upstreams added or removed are, live
    (``apply_upstream_set``). The rest (node, engine, metrics, api, an upstream's other
    fields) is returned, not applied; ``core.config`` becomes what runs. What changes is
    ``event.plan`` (the daemon's, which the listeners follow too), else computed here. Raises
    only on a bug, with the core half changed (the daemon then exits)."""
    plan = reload.plan(core.config, event.config) if event.plan is None else event.plan
    apply_client_set(core, plan)
    for new in plan.policies:
        client = core.clients[new.name]
        if new != client.channel.policy:
            apply_policy(core, client, new)
    pending = plan.pending
    reset: dict[str, Upstream] = {}
    for upstream in plan.resets:
        fields = plan.reset_fields[upstream.name]
        try:
            reset_upstream(core, upstream, fields, now)
        except (NotImplementedError, OSError, ValueError) as e:
            index = [u.name for u in core.config.upstreams].index(upstream.name)
            pending.append(f"upstreams[{index}] ({upstream.name}): {', '.join(fields)} ({e})")
        else:
            reset[upstream.name] = upstream
    apply_upstream_policies(core, plan.upstream_policies)
    # What runs now: each upstream with the fields applied (policy; identity where reset).
    applied: dict[str, frozenset[str]] = {
        u.name: reload.UPSTREAM_POLICY_FIELDS for u in plan.upstream_policies
    }
    for name in reset:
        applied[name] = applied.get(name, frozenset()) | reload.UPSTREAM_IDENTITY
    declared = {u.name: u for u in event.config.upstreams}
    upstreams = tuple(
        u.model_copy(update={f: getattr(declared[u.name], f) for f in applied.get(u.name, ())})
        for u in core.config.upstreams
    )
    clients = running_clients(core.config.clients, plan)
    core.config = core.config.model_copy(update={"upstreams": upstreams, "clients": clients})
    pending += apply_upstream_set(core, plan, now)
    return pending


def apply_policy(core: Core, client: ClientPeer, new: Client) -> None:
    """``client``'s new import policy ``new``: every route it sent judged again (a lower
    max_prefixes may close its session); a change of ``receive_upstream_routes`` sends it the
    upstreams' table, or withdraws it."""
    log.info("applying the new import policy", extra={"peer": new.name})
    channel = client.channel
    was_receiving = channel.policy.receive_upstream_routes
    rib = channel.rib
    old = rib.tables()  # the channel's reconfigure replaces them: no copy
    if not client_imported(core, client, channel.reconfigure(new), old=old):
        return  # cut off
    link = client.link
    if link is not None and new.receive_upstream_routes != was_receiving:
        core.client_export.clients_changed(core._client_list)
        if new.receive_upstream_routes:
            core._send_full_table(client, end_of_rib=False)
        else:
            core.client_export.withdraw_table(link, core.for_clients)


def apply_upstream_set(core: Core, plan: reload.Plan, now: float) -> list[str]:
    """The upstreams ``plan`` removes, then those it adds (a renamed upstream at the same
    address: the old session ends before the new one is dialled); ``core.config`` follows.
    Returns what the engine could not do, in words (needs a restart)."""
    failed = remove_upstreams(core, plan.upstreams_removed, now)
    failed += add_upstreams(core, plan.upstreams_added)
    kept = tuple(u for u in core.config.upstreams if u.name in core.upstreams)
    known = {u.name for u in kept}
    added = tuple(u for u in plan.upstreams_added if u.name in core.upstreams.keys() - known)
    core.config = core.config.model_copy(update={"upstreams": kept + added})
    return failed


def reset_upstream(core: Core, new: Upstream, fields: list[str], now: float) -> None:
    """A changed session identity (``fields``): the engine ends the session and dials
    ``new``; the upstream's routes are withdrawn now (a new session, not a graceful restart).
    Raises NotImplementedError when the engine cannot reset one session, OSError or
    ValueError when it cannot use the new settings (nothing changed then)."""
    core.engine.reset_upstream(new)
    log.warning(
        "session identity changed (%s): session reset, now %s port %d",
        ", ".join(fields),
        new.address,
        new.port,
        extra={"peer": new.name},
    )
    core.upstreams[new.name].channel.ebgp = new.asn != core.node_asn
    core.handle(UpstreamDown(new.name), now)


def running_clients(running: tuple[Client, ...], plan: reload.Plan) -> tuple[Client, ...]:
    """The clients that run after ``plan``: the running ones in their order, with their new
    policy (or new settings, when replaced), less those removed; then those added."""
    policies = {c.name: c for c in plan.policies}
    added = {c.name: c for c in plan.clients_added}
    removed = set(plan.clients_removed)
    out = []
    for client in running:
        if client.name in removed:
            if client.name in added:
                out.append(added.pop(client.name))
        else:
            out.append(policies.get(client.name, client))
    return (*out, *added.values())
