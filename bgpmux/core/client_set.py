"""Clients added and removed by a reload (``reload.Plan.clients_added`` / ``clients_removed``),
without touching any other session.

A client added gets a channel of its own, joined to the clients' Loc-RIB (``for_upstreams``)
as its last source: its session is accepted once the transport listens for it. A client
removed has its routes withdrawn (they leave the Loc-RIB, and another client's route for the
same prefix takes over, RFC 4271 §9.1.2), its link forgotten and its channel dropped,
counters and all; the listeners end its session with the Cease (``transport.client_set``,
which knows every connection of it, Established or not). Only the prefixes it held are
decided again, so the upstreams see no more than those changes.

The decision's last tie-breaker is a client's place in the configuration at start; a client
added later ranks after every running one, and one added again keeps its place.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..config import Client
from ..policy.channels import ClientChannel
from .peers import ClientPeer
from .reload import Plan
from .watch import SessionChange

if TYPE_CHECKING:
    from .routing import Core

log = logging.getLogger("bgpmux.core")


def apply_client_set(core: Core, plan: Plan) -> None:
    """Stop every client in ``plan.clients_removed``, then start every client in
    ``plan.clients_added`` (one in both is replaced: its identity changed, the fields in
    ``plan.client_fields``). Raises KeyError for a removed name the core does not have."""
    replaced = {c.name for c in plan.clients_added} & set(plan.clients_removed)
    orders: dict[str, int] = {}
    for name in plan.clients_removed:
        if name in replaced:
            fields = ", ".join(plan.client_fields.get(name, []))
            why = f"session identity changed ({fields}): session restarted"
            orders[name] = core.clients[name].channel.source.order
        else:
            why = "removed from the configuration"
        log.warning("%s", why, extra={"peer": name})
        remove_client(core, name)
    for client in plan.clients_added:
        order = orders.get(client.name)
        add_client(core, client, next_order(core) if order is None else order)
        if client.name not in replaced:
            log.info("added to the configuration", extra={"peer": client.name})


def next_order(core: Core) -> int:
    """The place after every running client's (the decision's last tie-breaker)."""
    return 1 + max((c.channel.source.order for c in core.clients.values()), default=-1)


def add_client(core: Core, client: Client, order: int) -> ClientPeer:
    """A channel for ``client`` (no session yet), joined to the clients' Loc-RIB. Raises
    ValueError when the core already has a client by that name."""
    if client.name in core.clients:
        raise ValueError(f"client {client.name!r} is already running")
    peer = ClientPeer(ClientChannel(client, order, core.node_asn, core.families))
    core.clients[client.name] = peer
    core._peers_changed()
    return peer


def remove_client(core: Core, name: str) -> None:
    """Withdraw every route of client ``name`` (decided again among the other clients) and
    forget it, its link included (the listeners end the session). Raises KeyError for a name
    the core does not have."""
    peer = core.clients[name]
    channel = peer.channel
    dropped = channel.clear()
    if dropped:
        log.info("withdrawing %d routes", len(dropped), extra={"peer": name})
        core._drop(channel, dropped)
    core.sync.eor_owed.discard(name)
    core.exporter.forget(name)
    del core.clients[name]
    core._peers_changed()
    if peer.link is not None:
        peer.link = None  # the listeners end its session (``transport.client_set``)
        if core.watcher is not None:
            core.watcher(SessionChange(name, "client", False))
