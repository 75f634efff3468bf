"""The gobgp engine's upstreams changed on reload: one reset, added or removed, over gobgpd's
API (``DeletePeer``, ``AddPeer``) and leaving the other peers alone.

The table-first rule holds for a new peer as at start: the core is asked for the upstream's
table (``table_first``) and the peer is added to gobgpd only once that table and End-of-RIB
are in (``GoBGPEngine.end_of_rib``), since gobgpd sends End-of-RIB right after the first
table. gobgpd's global table is shared by every peer: it stays as it is.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from . import gobgp_peers as peers

if TYPE_CHECKING:
    from ..config import Upstream
    from .gobgp import GoBGPEngine


def _ask_table(engine: GoBGPEngine, name: str) -> None:
    if engine._stub is not None:  # else the next run of gobgpd asks for every table
        asyncio.get_running_loop().call_soon(engine._core_up, name)


def reset(engine: GoBGPEngine, upstream: Upstream) -> None:
    """``GoBGPEngine.reset_upstream``: ``upstream`` (a ``config.Upstream`` named like a
    running one, with new session settings) replaces it. Its peer is queued for deletion in
    gobgpd (Cease/Peer De-configured, RFC 4486 §3) and a new peer, with the new address and
    key, is added once the core sent its table. Raises OSError when the password file cannot
    be read, ValueError when its key is not ASCII, before anything changed; KeyError for a
    name the engine does not have."""
    from .gobgp import _Peer

    password = peers.read_password(upstream)
    old = engine.peers[upstream.name]
    engine._queue("delete", old.address)
    configs = [upstream if u.name == upstream.name else u for u in engine.config.upstreams]
    engine.config = engine.config.model_copy(update={"upstreams": tuple(configs)})
    peer = engine.peers[upstream.name] = _Peer(upstream, password)
    peer.last_error, peer.last_error_at = "reset: its configuration changed", peers.now()
    _ask_table(engine, upstream.name)


def add(engine: GoBGPEngine, upstream: Upstream) -> None:
    """``GoBGPEngine.add_upstream``: ``upstream`` (a ``config.Upstream`` with a new name)
    joins the engine's configuration as its last upstream; its peer is added to gobgpd once
    the core sent its table and End-of-RIB. Raises OSError when the password file cannot be
    read, ValueError when its key is not ASCII, before anything changed."""
    from .gobgp import _Peer

    password = peers.read_password(upstream)
    upstreams = (*engine.config.upstreams, upstream)
    engine.config = engine.config.model_copy(update={"upstreams": upstreams})
    engine.peers[upstream.name] = _Peer(upstream, password)
    _ask_table(engine, upstream.name)


def remove(engine: GoBGPEngine, name: str) -> None:
    """``GoBGPEngine.remove_upstream``: the upstream ``name`` leaves the engine's
    configuration; its peer, if gobgpd has it already, is queued for deletion (gobgpd sends
    Cease/Peer De-configured, RFC 4486 §3), and a report on its way about it is dropped.
    Raises KeyError for a name the engine does not have."""
    peer = engine.peers.pop(name)
    peer.core_up = False  # a report on its way about it is dropped
    if peer.added:
        engine._queue("delete", peer.address)
    upstreams = tuple(u for u in engine.config.upstreams if u.name != name)
    engine.config = engine.config.model_copy(update={"upstreams": upstreams})
