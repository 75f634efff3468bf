"""The gobgp engine's peers in GoBGP's terms (``apipb``, 3.10): an upstream as the
``apipb.Peer`` that ``AddPeer`` configures, and what ``ListPeer`` / ``WatchEvent`` report of a
peer (session state, negotiated capabilities, timers, message counters) in bgpmux's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..session.describe import family_name
from ..session.facts import SessionFacts
from ..session.states import State
from ..session.stats import SessionStats
from ..wire.capabilities import GracefulRestart
from ..wire.constants import Family
from ..wire.prefix import Prefix, prefix_from_text
from .gobgp_api import capability_pb2, gobgp_pb2
from .gobgp_paths import api_family, family_of

if TYPE_CHECKING:
    from ..config import Config, Upstream

CONNECT_RETRY = 5  # seconds between gobgpd's dials (its default is 120)
_STATES = {
    gobgp_pb2.PeerState.IDLE: State.IDLE,
    gobgp_pb2.PeerState.CONNECT: State.CONNECT,
    gobgp_pb2.PeerState.ACTIVE: State.ACTIVE,
    gobgp_pb2.PeerState.OPENSENT: State.OPEN_SENT,
    gobgp_pb2.PeerState.OPENCONFIRM: State.OPEN_CONFIRM,
    gobgp_pb2.PeerState.ESTABLISHED: State.ESTABLISHED,
}
_GR_RESTARTING = 0x08  # the R bit, in the high nibble of gobgpd's 'flags' (RFC 4724 §3)
_GR_NOTIFICATION = 0x04  # the N bit (RFC 8538 §2)
_GR_FORWARDING = 0x80  # the F bit of a family's flags
_CAPABILITY_NAMES = {
    "RouteRefreshCapability": "route-refresh",
    "EnhancedRouteRefreshCapability": "enhanced-route-refresh",
    "FourOctetASNCapability": "4-octet-as",
    "GracefulRestartCapability": "graceful-restart",
    "ExtendedNexthopCapability": "extended-next-hop",
}


def peer_address(upstream: Upstream) -> str:
    """The neighbor address gobgpd knows ``upstream`` by (its ``neighbor_ip`` in paths)."""
    return str(upstream.ip)


def read_password(upstream: Upstream) -> str:
    """The TCP-MD5 key of ``upstream`` ("" without one). Raises OSError when the file cannot
    be read, ValueError when the key is not text gobgpd can take."""
    if upstream.password_file is None:
        return ""
    key = Path(upstream.password_file).read_bytes().strip()
    try:
        return key.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{upstream.password_file}: the TCP-MD5 key must be ASCII") from None


def global_config(config: Config) -> gobgp_pb2.Global:
    """``StartBgp``'s global settings: the node's AS and router id, no BGP listener
    (``listen_port`` -1: port 179 is Calico's BIRD's), the node's families."""
    return gobgp_pb2.Global(
        asn=config.node.asn,
        router_id=str(config.node.router_id),
        listen_port=-1,
        listen_addresses=[],
    )


EXPORT_POLICY = "bgpmux-local-only"


def export_policy() -> gobgp_pb2.Policy:
    """The policy that lets out only the routes bgpmux added (``ROUTE_TYPE_LOCAL``): gobgpd
    would otherwise send each upstream what the others sent it, as any BGP router would."""
    statement = gobgp_pb2.Statement(
        name=f"{EXPORT_POLICY}-accept",
        conditions=gobgp_pb2.Conditions(route_type=gobgp_pb2.Conditions.ROUTE_TYPE_LOCAL),
        actions=gobgp_pb2.Actions(route_action=gobgp_pb2.ACCEPT),
    )
    return gobgp_pb2.Policy(name=EXPORT_POLICY, statements=[statement])


def policy_assignment(direction: int) -> gobgp_pb2.PolicyAssignment:
    """gobgpd's global import or export (``direction``): ``export_policy``, everything else
    rejected."""
    return gobgp_pb2.PolicyAssignment(
        name="global",
        direction=direction,  # type: ignore[arg-type]
        policies=[gobgp_pb2.Policy(name=EXPORT_POLICY)],
        default_action=gobgp_pb2.REJECT,
    )


async def install_export_policy(stub: Any, timeout: float) -> None:
    """Add ``export_policy`` to gobgpd (unless there) and make it the global import and
    export policy."""
    request = gobgp_pb2.ListPolicyRequest()
    names = {r.policy.name async for r in stub.ListPolicy(request, timeout=timeout)}
    if EXPORT_POLICY not in names:
        added = gobgp_pb2.AddPolicyRequest(policy=export_policy())
        await stub.AddPolicy(added, timeout=timeout)
    # Import too: nothing received goes into gobgpd's own table (bgpmux reads each
    # Adj-RIB-In as received), where a route kept stale for a gracefully restarting ToR
    # leaked to the other ToR all the same.
    for direction in (gobgp_pb2.IMPORT, gobgp_pb2.EXPORT):
        assign = gobgp_pb2.SetPolicyAssignmentRequest(assignment=policy_assignment(direction))
        await stub.SetPolicyAssignment(assign, timeout=timeout)


async def local_prefixes(stub: Any, family: Family, timeout: float) -> list[Prefix]:
    """The prefixes of ``family`` in gobgpd's global table that a local path (one added over
    the API: no neighbor) announces."""
    request = gobgp_pb2.ListPathRequest(table_type=gobgp_pb2.GLOBAL, family=api_family(family))
    found = []
    async for r in stub.ListPath(request, timeout=timeout):
        if any(p.neighbor_ip in ("<nil>", "") for p in r.destination.paths):
            found.append(prefix_from_text(family, r.destination.prefix))
    return found


def peer_config(config: Config, upstream: Upstream, password: str) -> gobgp_pb2.Peer:
    """``upstream`` as ``AddPeer``'s ``apipb.Peer``: AS numbers, TCP-MD5 key, timers (hold
    time, keepalive a third of it, RFC 4271 §10), the node address of the upstream's IP
    version as the local address, the port, GTSM (RFC 5082), graceful restart (RFC 4724 §3:
    our restart time, every family with its forwarding state not kept) and the node's
    families."""
    node = config.node
    restart = upstream.graceful_restart
    families = []
    for family in node.next_hops():
        afi_safi = gobgp_pb2.AfiSafi(
            config=gobgp_pb2.AfiSafiConfig(family=api_family(family), enabled=True)
        )
        if restart:
            afi_safi.mp_graceful_restart.config.enabled = True
        families.append(afi_safi)
    peer = gobgp_pb2.Peer(
        conf=gobgp_pb2.PeerConf(
            neighbor_address=peer_address(upstream),
            peer_asn=upstream.asn,
            local_asn=node.asn,
            auth_password=password,
            description=upstream.name,
        ),
        timers=gobgp_pb2.Timers(
            config=gobgp_pb2.TimersConfig(
                connect_retry=CONNECT_RETRY,
                hold_time=upstream.hold_time,
                keepalive_interval=upstream.hold_time // 3,
                idle_hold_time_after_reset=1,
            )
        ),
        transport=gobgp_pb2.Transport(
            local_address=str(node.address_of(upstream.ip.version)),
            remote_port=upstream.port,
        ),
        afi_safis=families,
    )
    if restart:
        peer.graceful_restart.enabled = True
        peer.graceful_restart.restart_time = restart
    if upstream.ttl_security:
        peer.ttl_security.enabled = True
        peer.ttl_security.ttl_min = 255
    return peer


def session_state(peer: gobgp_pb2.Peer) -> State:
    """The RFC 4271 §8 state of a ``ListPeer`` / ``WatchEvent`` peer."""
    return _STATES.get(peer.state.session_state, State.IDLE)


def _capabilities(items: Iterable[Any]) -> list[Any]:
    out = []
    for item in items:
        cls = getattr(capability_pb2, item.type_url.rpartition(".")[2], None)
        if cls is not None:
            message = cls()
            item.Unpack(message)
            out.append(message)
    return out


def graceful_restart(peer: gobgp_pb2.Peer) -> GracefulRestart | None:
    """The graceful-restart capability the peer sent (RFC 4724 §3), None without one."""
    for cap in _capabilities(peer.state.remote_cap):
        if isinstance(cap, capability_pb2.GracefulRestartCapability):
            families = []
            for t in cap.tuples:
                family = family_of(t.family)
                if family is not None:
                    families.append((family, bool(t.flags & _GR_FORWARDING)))
            return GracefulRestart(
                restart_time=cap.time,
                restarting=bool(cap.flags & _GR_RESTARTING),
                notification=bool(cap.flags & _GR_NOTIFICATION),
                families=tuple(families),
            )
    return None


def negotiated_families(peer: gobgp_pb2.Peer, ours: Iterable[Family]) -> tuple[Family, ...]:
    """Those of ``ours`` that the peer's OPEN listed too (IPv4 unicast when it listed none,
    RFC 4760 §8)."""
    theirs = {
        family_of(cap.family)
        for cap in _capabilities(peer.state.remote_cap)
        if isinstance(cap, capability_pb2.MultiProtocolCapability)
    }
    if not theirs:
        theirs = {Family(1, 1)}
    return tuple(f for f in ours if f in theirs)


def facts(
    peer: gobgp_pb2.Peer, ours: Iterable[Family], last_error: str, at: float | None
) -> SessionFacts:
    """``SessionFacts`` of a ``ListPeer`` peer: address, AS, local address, negotiated
    capabilities and timers while Established, graceful restart, the last error."""
    established = session_state(peer) is State.ESTABLISHED
    caps: tuple[str, ...] = ()
    hold = keepalive = None
    gr = ""
    if established:
        local = {type(c).__name__ for c in _capabilities(peer.state.local_cap)}
        remote = {type(c).__name__ for c in _capabilities(peer.state.remote_cap)}
        names = [_CAPABILITY_NAMES[n] for n in _CAPABILITY_NAMES if n in local & remote]
        families = [family_name(f) for f in negotiated_families(peer, ours)]
        caps = (*families, *names)
        hold = int(peer.timers.state.negotiated_hold_time) or None
        keepalive = int(peer.timers.state.keepalive_interval) or None
        capability = graceful_restart(peer)
        if capability is not None and "graceful-restart" in names:
            gr = f"negotiated, restart time {capability.restart_time} s"
    return SessionFacts(
        address=peer.conf.neighbor_address,
        asn=peer.conf.peer_asn or None,
        local_address=peer.transport.local_address,
        capabilities=caps,
        hold_time=hold,
        keepalive=keepalive,
        graceful_restart=gr,
        last_error=last_error,
        last_error_at=at,
    )


def configured_facts(config: Config, upstream: Upstream, last_error: str) -> SessionFacts:
    """``SessionFacts`` of an upstream gobgpd has not reported on yet: its configuration."""
    local = config.node.address_of(upstream.ip.version)
    return SessionFacts(
        address=peer_address(upstream),
        asn=upstream.asn,
        local_address=str(local) if local is not None else "",
        last_error=last_error,
    )


def messages(peer: gobgp_pb2.Peer) -> SessionStats:
    """gobgpd's message counters of the peer, by type (NOTIFICATIONs are counted but not by
    code: gobgpd does not report those)."""
    stats = SessionStats()
    for counts, target in (
        (peer.state.messages.sent, stats.messages_sent),
        (peer.state.messages.received, stats.messages_received),
    ):
        target.update(
            OPEN=counts.open,
            UPDATE=counts.update,
            NOTIFICATION=counts.notification,
            KEEPALIVE=counts.keepalive,
            ROUTE_REFRESH=counts.refresh,
        )
    return stats


def end_of_rib_received(peer: gobgp_pb2.Peer) -> set[Family]:
    """The families whose End-of-RIB the peer sent on its current session (RFC 4724 §2):
    gobgpd records them in ListPeer's ``mp_graceful_restart.state`` but does not report them
    through WatchEvent."""
    out = set()
    for afi_safi in peer.afi_safis:
        family = family_of(afi_safi.state.family or afi_safi.config.family)
        if family is not None and afi_safi.mp_graceful_restart.state.end_of_rib_received:
            out.add(family)
    return out


def now() -> float:
    """Unix time, for ``SessionFacts.last_error_at``."""
    return time.time()
