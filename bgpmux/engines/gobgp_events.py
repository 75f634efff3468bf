"""What gobgpd tells the gobgp engine: ``WatchEvent`` (peer state changes, the paths each
peer sends: its Adj-RIB-In as received) and a ``ListPeer`` poll (negotiated capabilities,
counters, and End-of-RIB, which ``WatchEvent`` does not report), turned into the core's
``UpstreamEvents``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import grpc

from ..session.graceful import restart_note, stale_kept_on_return, stale_window
from ..session.states import DownReason, State
from ..wire.attributes import PathAttributes
from ..wire.constants import Family
from ..wire.prefix import Prefix
from . import gobgp_peers as peers
from .gobgp_api import gobgp_pb2
from .gobgp_paths import api_family, received_path

if TYPE_CHECKING:
    from .gobgp import GoBGPEngine, _Peer
    from .gobgp_api import gobgp_pb2_grpc

log = logging.getLogger("bgpmux.engine.gobgp")

_Watch = gobgp_pb2.WatchEventRequest
CALL_TIMEOUT = 10.0
ADJ_IN_TIMEOUT = 300.0  # seconds to read one family of an upstream's Adj-RIB-In (1M routes)
_PeerEvent = gobgp_pb2.WatchEventResponse.PeerEvent
_STATE_EVENTS = (_PeerEvent.INIT, _PeerEvent.STATE)


def watch_request() -> gobgp_pb2.WatchEventRequest:
    """Peer state changes, and every path received (pre-policy Adj-RIB-In, those already
    there first)."""
    adj_in = _Watch.Table.Filter(type=_Watch.Table.Filter.ADJIN, init=True)
    return _Watch(peer=_Watch.Peer(), table=_Watch.Table(filters=[adj_in]))


def _notifications(snapshot: gobgp_pb2.Peer) -> tuple[int, int]:
    messages = snapshot.state.messages
    return messages.sent.notification, messages.received.notification


class WatchReader:
    """Reads gobgpd's events for ``engine`` through ``stub`` and reports to its events."""

    def __init__(self, engine: GoBGPEngine, stub: gobgp_pb2_grpc.GobgpApiStub) -> None:
        self.engine = engine
        self.stub = stub
        self.events = engine.events

    async def list_peers(self, address: str = "") -> dict[str, gobgp_pb2.Peer]:
        """``ListPeer`` (one peer, or all): neighbor address -> peer."""
        request = gobgp_pb2.ListPeerRequest(address=address)
        return {
            r.peer.conf.neighbor_address: r.peer
            async for r in self.stub.ListPeer(request, timeout=CALL_TIMEOUT)
        }

    async def run(self) -> None:
        """Serve ``WatchEvent`` until it ends (returns) or fails (raises grpc.RpcError)."""
        async for response in self.stub.WatchEvent(watch_request()):
            which = response.WhichOneof("event")
            if which == "peer":
                if response.peer.type in _STATE_EVENTS:  # INIT: a peer gobgpd already had
                    await self._peer_state(response.peer.peer)
            elif which == "table":
                self._paths(response.table.paths)
            if self.events.congested():
                drained = asyncio.Event()
                self.events.when_drained(drained.set)
                await drained.wait()

    async def poll(self, interval: float) -> None:
        """Every ``interval`` seconds: every peer's ``ListPeer`` snapshot (for ``status``)
        and the End-of-RIBs received since (RFC 4724 §2) reported to the core."""
        while True:
            snapshots = await self.list_peers()
            for name, peer in list(self.engine.peers.items()):  # reload may change them
                snapshot = snapshots.get(peer.address)
                if snapshot is None:
                    continue
                peer.snapshot = snapshot
                if peer.state is State.ESTABLISHED and peer.core_up:
                    for family in sorted(peers.end_of_rib_received(snapshot) - peer.eor_reported):
                        if family in self.engine.families and await self._adj_in(peer, family):
                            peer.eor_reported.add(family)
                            self.events.end_of_rib(name, family)
            await asyncio.sleep(interval)

    async def _adj_in(self, peer: _Peer, family: Family) -> bool:
        """Report ``peer``'s Adj-RIB-In of ``family`` as gobgpd holds it now, before its
        End-of-RIB: ``WatchEvent`` may deliver paths after ``ListPeer`` shows the End-of-RIB,
        and at End-of-RIB the core sweeps the upstream's stale routes (RFC 4724 §4.2), which
        would withdraw from the clients, for a moment, a route still on its way. Paths the core
        already has change nothing. False (End-of-RIB left for the next poll) when gobgpd did
        not answer."""
        request = gobgp_pb2.ListPathRequest(
            table_type=gobgp_pb2.ADJ_IN, name=peer.address, family=api_family(family)
        )
        paths: list[gobgp_pb2.Path] = []
        try:
            async for response in self.stub.ListPath(request, timeout=ADJ_IN_TIMEOUT):
                paths.extend(response.destination.paths)
        except grpc.RpcError as e:
            log.warning(
                "ListPath of the Adj-RIB-In failed: %s", e, extra={"peer": peer.config.name}
            )
            return False
        if peer.state is not State.ESTABLISHED or not peer.core_up:
            return False  # the session ended meanwhile
        self._paths(paths)
        return True

    async def _peer_state(self, event: gobgp_pb2.Peer) -> None:
        engine = self.engine
        name = engine.by_address(event.state.neighbor_address)
        if name is None:
            return  # a peer bgpmux did not add (an external gobgpd's own)
        peer = engine.peers[name]
        new, old = peers.session_state(event), peer.state
        peer.state = new
        if new is State.ESTABLISHED and old is not State.ESTABLISHED:
            await self._up(name, peer)
        elif old is State.ESTABLISHED and new is not State.ESTABLISHED:
            await self._down(name, peer)

    async def _snapshot(self, peer: _Peer) -> gobgp_pb2.Peer | None:
        try:
            found = await self.list_peers(peer.address)
        except grpc.RpcError as e:
            log.warning("ListPeer failed: %s", e, extra={"peer": peer.config.name})
            return None
        snapshot = found.get(peer.address)
        if snapshot is not None:
            peer.snapshot = snapshot
        return snapshot

    async def _up(self, name: str, peer: _Peer) -> None:
        peer.established_at = asyncio.get_running_loop().time()
        peer.eor_reported = set()
        snapshot = await self._snapshot(peer)
        capability = None
        if snapshot is not None:
            peer.notifications = _notifications(snapshot)
            if peer.config.graceful_restart:
                capability = peers.graceful_restart(snapshot)
        peer.capability = capability
        families = (
            peers.negotiated_families(snapshot, self.engine.families)
            if snapshot is not None
            else self.engine.families
        )
        note = restart_note(capability)
        log.info("session established (families %s)%s", ", ".join(map(str, families)),
                 note and f"; {note}", extra={"peer": name})  # fmt: skip
        if not peer.core_up:  # not reported to the core meanwhile (stopping): it sends again
            peer.core_up = True
            peer.core_eor.clear()
            self.engine.table.resync()
        # After the core's table_first report, this one starts the wait for the ToR's table
        kept = stale_kept_on_return(capability, self.engine.families)
        self.events.established(name, kept, families)

    async def _down(self, name: str, peer: _Peer) -> None:
        """The ToR session ended while gobgpd runs: graceful (RFC 4724 §4.2) when no
        NOTIFICATION was sent or received on it (gobgpd reports no reason: its counters
        tell)."""
        peer.established_at = None
        before_sent, before_received = peer.notifications
        snapshot = await self._snapshot(peer)
        sent, received = _notifications(snapshot) if snapshot is not None else peer.notifications
        if received > before_received:
            reason, words = DownReason.NOTIFICATION_RECEIVED, "notification received"
        elif sent > before_sent:
            reason, words = DownReason.PROTOCOL_ERROR, "notification sent"
        else:
            reason, words = DownReason.CONNECTION_LOST, "connection lost"
        peer.last_error, peer.last_error_at = words, peers.now()
        log.warning("session down: %s", words, extra={"peer": name})
        capability, peer.capability = peer.capability, None
        if peer.core_up:
            peer.core_up = False
            stale, families = stale_window(capability, self.engine.families, reason)
            self.events.down(name, stale, families or None)
            # gobgpd keeps the peer and sends its global table as soon as the ToR is back: the
            # core keeps that table current meanwhile (table_first, as at start)
            self.engine._core_up(name)

    def _paths(self, paths: list[gobgp_pb2.Path]) -> None:
        """Report received paths in runs of one upstream, family and attribute set."""
        engine = self.engine
        run_key: tuple[str, Family, PathAttributes | None, bytes] | None = None
        run: list[Prefix] = []
        for path in paths:
            try:
                found = received_path(path)
            except ValueError as e:
                engine.counters["paths_unusable"] += 1
                log.warning("a path gobgpd reported cannot be used: %s", e)
                continue
            if found is None:
                continue
            name = engine.by_address(found.neighbor)
            if name is None or not engine.peers[name].core_up:
                continue
            engine.counters["paths_received"] += 1
            key = (name, found.family, found.attributes, found.next_hop)
            if key != run_key:
                self._report(run_key, run)
                run_key, run = key, []
            run.append(found.prefix)
        self._report(run_key, run)

    def _report(
        self, key: tuple[str, Family, PathAttributes | None, bytes] | None, prefixes: list[Prefix]
    ) -> None:
        if key is None or not prefixes:
            return
        name, family, attributes, next_hop = key
        if attributes is None:
            self.events.withdrawn(name, family, prefixes)
        else:
            self.events.routes(name, family, attributes, next_hop, prefixes)
