"""Clients added and removed by a reload (``reload.Plan.clients_added`` / ``clients_removed``),
without touching any other session.

A client added gets a channel of its own, joined to the clients' Loc-RIB (``for_upstreams``)
as its last source: its session is accepted once the transport listens for it. A client
removed has its routes withdrawn (they leave the Loc-RIB, and another client's route for the
same prefix takes over, RFC 4271 §9.1.2), its session ended with a Cease (RFC 4486 §3:
Peer De-configured, or Other Configuration Change when it is added again with a new
identity), and its channel dropped, counters and all. Only the prefixes it held are decided
again, so the upstreams see no more than those changes.

The decision's last tie-breaker is a client's place in the configuration at start; a client
added later ranks after every running one, and one added again keeps its place.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..config import Client
from ..policy.channels import ClientChannel
from ..session.states import DownReason
from ..wire.errors import CeaseSubcode, ErrorCode
from ..wire.messages import Notification
from .peers import ClientPeer
from .reload import Plan
from .watch import SessionChange

if TYPE_CHECKING:
    from .routing import Core

log = logging.getLogger("bgpmux.core")

DECONFIGURED = Notification(ErrorCode.CEASE, CeaseSubcode.PEER_DECONFIGURED)
RECONFIGURED = Notification(ErrorCode.CEASE, CeaseSubcode.OTHER_CONFIGURATION_CHANGE)


def apply_client_set(core: Core, plan: Plan, now: float) -> None:
    """Stop every client in ``plan.clients_removed``, then start every client in
    ``plan.clients_added`` (one in both is replaced: its identity changed, the fields in
    ``plan.client_fields``). Raises KeyError for a removed name the core does not have."""
    replaced = {c.name for c in plan.clients_added} & set(plan.clients_removed)
    orders: dict[str, int] = {}
    for name in plan.clients_removed:
        if name in replaced:
            fields = ", ".join(plan.client_fields.get(name, []))
            log.warning("session identity changed (%s): session restarted", fields,
                        extra={"peer": name})  # fmt: skip
            orders[name] = core.clients[name].channel.source.order
            remove_client(core, name, RECONFIGURED, now)
        else:
            log.warning("removed from the configuration", extra={"peer": name})
            remove_client(core, name, DECONFIGURED, now)
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
    core._client_list.append(peer)
    core._channels.append(peer.channel)
    core.for_upstreams.sources.append(peer.channel.rib)
    return peer


def remove_client(core: Core, name: str, notification: Notification, now: float) -> None:
    """Withdraw every route of client ``name`` (decided again among the other clients), end
    its session with ``notification`` when it is Established, and forget it. Raises KeyError
    for a name the core does not have."""
    peer = core.clients[name]
    channel = peer.channel
    dropped = channel.clear()
    if dropped:
        log.info("withdrawing %d routes", len(dropped), extra={"peer": name})
        core._drop(channel, dropped)
    core.sync.eor_owed.discard(name)
    core.exporter.forget(name)
    del core.clients[name]
    core._client_list.remove(peer)
    core._channels[:] = [c for c in core._channels if c is not channel]
    loc_rib = core.for_upstreams
    loc_rib.sources = [rib for rib in loc_rib.sources if rib is not channel.rib]
    core.client_export.clients_changed(core._client_list)
    link = peer.link
    peer.link = None
    if link is not None:
        link.shutdown(notification, DownReason.ADMIN_SHUTDOWN)
        if core.watcher is not None:
            core.watcher(SessionChange(name, "client", False))
