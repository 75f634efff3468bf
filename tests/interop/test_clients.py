"""Real BGP speakers as bgpmux clients: BIRD 2 (Calico's shape), FRR bgpd (MetalLB's), GoBGP and
ExaBGP 5 each dial bgpmux inside the node namespace; their UPDATEs must be decoded exactly.

One rack (node + GoBGP ToR) and one bgpmux serve the whole module; the tests that break a
session (wrong AS, refused source, SIGKILL) use clients of their own and run last.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import (
    Announce,
    Bgpmux,
    Bird,
    Daemon,
    ExaBgp,
    Frr,
    GoBgp,
    Neighbor,
    Route,
    wait_until,
)

from .conftest import NODE_AS, NODE_V4, NODE_V6, Rack, notifications_sent, raw_session, text_of

LOOPBACK = "127.0.0.1"
MAPPED_LOOPBACK = str(ipaddress.ip_address("::ffff:127.0.0.1"))
FRR_AS, GOBGP_AS, EXABGP_AS, BAD_AS = 64514, 64515, 64516, 64999


@dataclass(frozen=True)
class ClientCase:
    name: str  # the bgpmux client name
    port: int
    asn: int
    announce: tuple[Announce, ...]
    expected_next_hops: dict[str, str]  # prefix -> next hop bgpmux must decode
    accept: tuple[str, ...]
    origin: str = "igp"


CALICO = ClientCase(
    name="calico",
    port=1790,
    asn=NODE_AS,
    announce=(
        Announce(
            "10.244.1.0/26",
            communities=((64512, 100), (65535, 65281)),
            large_communities=((64512, 1, 1),),
            med=10,
        ),
        Announce("10.244.1.64/32"),
        Announce(
            "2001:db8:244:1::/64",
            communities=((64512, 106),),
            large_communities=((64512, 6, 6),),
            med=60,
        ),
    ),
    expected_next_hops={
        "10.244.1.0/26": NODE_V4,  # BIRD dials from the node address: next hop self
        "10.244.1.64/32": NODE_V4,
        "2001:db8:244:1::/64": NODE_V6,
    },
    accept=("10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"),
)
METALLB = ClientCase(
    name="metallb",
    port=1791,
    asn=FRR_AS,
    announce=(
        Announce(
            "198.51.100.10/32",
            communities=((64514, 200),),
            large_communities=((64514, 2, 2), (64514, 2, 3)),
            med=20,
        ),
        Announce("2001:db8:100::/64", communities=((64514, 206),), med=26),
    ),
    # eBGP from 127.0.0.1: FRR sets next hop self, for IPv6 the IPv4-mapped address.
    expected_next_hops={"198.51.100.10/32": LOOPBACK, "2001:db8:100::/64": MAPPED_LOOPBACK},
    accept=("198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"),
)
GOBGP = ClientCase(
    name="gobgp",
    port=1792,
    asn=GOBGP_AS,
    announce=(
        Announce(
            "198.51.100.20/32",
            next_hop=NODE_V4,
            communities=((64515, 300),),
            large_communities=((64515, 3, 3),),
            med=30,
        ),
        Announce(
            "2001:db8:101::/64",
            next_hop=NODE_V6,
            communities=((64515, 306),),
            large_communities=((64515, 3, 6),),
            med=36,
        ),
    ),
    expected_next_hops={"198.51.100.20/32": NODE_V4, "2001:db8:101::/64": NODE_V6},
    accept=("198.51.100.0/24 le 32", "2001:db8:101::/48 le 128"),
    origin="incomplete",  # `gobgp global rib add` originates with ORIGIN "?"
)
EXABGP = ClientCase(
    name="exabgp",
    port=1793,
    asn=EXABGP_AS,
    announce=(
        Announce(
            "203.0.113.0/25",
            next_hop=NODE_V4,
            communities=((64516, 400), (64516, 401)),
            large_communities=((64516, 4, 4),),
            med=40,
        ),
        Announce(
            "2001:db8:102::/64",
            next_hop=NODE_V6,
            communities=((64516, 406),),
            large_communities=((64516, 4, 6),),
            med=46,
        ),
    ),
    expected_next_hops={"203.0.113.0/25": NODE_V4, "2001:db8:102::/64": NODE_V6},
    accept=("203.0.113.0/24 le 32", "2001:db8:102::/48 le 128"),
)
CASES = {case.name: case for case in (CALICO, METALLB, GOBGP, EXABGP)}
BOTH = ("ipv4", "ipv6")
# A client that must present AS 64514 and is dialled by an FRR presenting 64999.
WRONG_AS = {"name": "wrongas", "listen": "127.0.0.1:1794", "asn": FRR_AS}
# A client pinned to a source address the raw speaker does not use.
PINNED = {"name": "pinned", "listen": "127.0.0.1:1796", "asn": 64530, "peer_address": "10.0.0.2"}


def client_entry(case: ClientCase) -> dict[str, Any]:
    return {
        "name": case.name,
        "listen": f"127.0.0.1:{case.port}",
        "asn": case.asn,
        "accept": list(case.accept),
        "hold_time": 9,
    }


@dataclass
class Lab:
    rack: Rack
    mux: Bgpmux
    daemons: dict[str, Daemon]  # bgpmux client name -> the daemon dialling it
    bad_frr: Frr


@pytest.fixture(scope="module")
def lab(rack: Rack) -> Iterator[Lab]:
    node = rack.node
    mux = rack.start_mux([*(client_entry(c) for c in CASES.values()), WRONG_AS, PINNED])

    def to_mux(case: ClientCase, **extra: Any) -> Neighbor:
        return Neighbor(LOOPBACK, NODE_AS, port=case.port, families=BOTH, hold_time=9, **extra)

    calico = Bird(
        node, "calico", NODE_AS, NODE_V4,
        # Calico: iBGP, graceful restart, ADD-PATH offered, dialling from the node address.
        [to_mux(CALICO, source=NODE_V4, graceful_restart=120, add_path=True)],
        list(CALICO.announce),
    )  # fmt: skip
    metallb = Frr(
        node, "metallb", FRR_AS, NODE_V4, [to_mux(METALLB)], list(METALLB.announce),
        listen_port=None,
    )  # fmt: skip
    gobgp = GoBgp(
        node, "gobgp", GOBGP_AS, NODE_V4, [to_mux(GOBGP)], list(GOBGP.announce),
        listen_port=None, api_port=50061,
    )  # fmt: skip
    exabgp = ExaBgp(node, "exabgp", EXABGP_AS, NODE_V4, [to_mux(EXABGP)], list(EXABGP.announce))
    bad_frr = Frr(
        node, "badas", BAD_AS, NODE_V4,
        [Neighbor(LOOPBACK, NODE_AS, port=1794, hold_time=9)],
        listen_port=None,
    )  # fmt: skip
    daemons: dict[str, Daemon] = {
        "calico": calico,
        "metallb": metallb,
        "gobgp": gobgp,
        "exabgp": exabgp,
    }
    for daemon in (*daemons.values(), bad_frr):
        daemon.start()
    lab = Lab(rack, mux, daemons, bad_frr)
    mux.wait_established(*CASES, timeout=40)
    yield lab


def expected_routes(case: ClientCase) -> dict[str, dict[str, Any]]:
    """What bgpmux's API must show for each announced prefix of ``case``."""
    routes = {}
    for announce in case.announce:
        route: dict[str, Any] = {
            "upstream": None,
            "client": case.name,
            "prefix": announce.prefix,
            "family": f"{announce.family}-unicast",
            "next_hop": case.expected_next_hops[announce.prefix],
            "as_path": [] if case.asn == NODE_AS else [case.asn],
            "med": announce.med,
            "local_pref": None,
            "communities": sorted(f"{a}:{b}" for a, b in announce.communities),
            "large_communities": sorted(f"{a}:{b}:{c}" for a, b, c in announce.large_communities),
            "origin": case.origin,
            "stale": False,
            "best": True,
            "reason": None,
        }
        routes[announce.prefix] = route
    return routes


def normalized(route: dict[str, Any]) -> dict[str, Any]:
    out = dict(route)
    for key in ("communities", "large_communities"):
        out[key] = sorted(out[key])
    return out


@pytest.mark.interop
@pytest.mark.parametrize("name", list(CASES))
def test_client_established(lab: Lab, name: str) -> None:
    daemon = lab.daemons[name]
    wait_until(
        lambda: daemon.neighbor_state(LOOPBACK) == "Established",
        timeout=20,
        what=f"{daemon} Established with bgpmux",
        logs_of=[daemon, lab.mux],
    )
    session = lab.mux.sessions()[name]
    assert session["role"] == "client"
    assert session["state"] == "ESTABLISHED"
    assert lab.mux.metric("bgpmux_session_up", peer=name, role="client") == 1.0
    # What was negotiated, as bgpmux logs it: both families; ADD-PATH send (every upstream's
    # path) for the two daemons that offer to receive several paths; graceful restart only for
    # BIRD, whose capability lists families (FRR's default one lists none: it is only a
    # helper, so its routes go when it does).
    add_path = ", ADD-PATH send ipv4-unicast, ipv6-unicast"
    offers = {"calico": ", graceful restart" + add_path, "metallb": add_path}.get(name, "")
    established = f"session established (hold 9s, families ipv4-unicast, ipv6-unicast{offers})"
    lines = [line for line in text_of(lab.mux.log_path).splitlines() if f"[peer={name}]" in line]
    assert any(line.endswith(established) for line in lines), "\n".join(lines[-10:])


@pytest.mark.interop
def test_frr_capabilities_negotiated(lab: Lab) -> None:
    """FRR's view: both families, 4-octet AS and graceful restart in both directions; ADD-PATH
    receive offered by FRR, send offered by bgpmux (never receive)."""
    metallb = lab.daemons["metallb"]
    assert isinstance(metallb, Frr)
    caps = metallb.neighbors_info()[LOOPBACK]["neighborCapabilities"]
    assert caps["4byteAs"] == "advertisedAndReceived"
    assert caps["gracefulRestart"] == "advertisedAndReceived"
    assert caps["routeRefresh"].startswith("advertisedAndReceived")
    for family in ("ipv4Unicast", "ipv6Unicast"):
        assert caps["multiprotocolExtensions"][family] == {"advertisedAndReceived": True}
        assert caps["addPath"][family] == {"rxAdvertised": True, "txReceived": True}, caps


@pytest.mark.interop
@pytest.mark.parametrize("name", list(CASES))
def test_client_updates_decoded_exactly(lab: Lab, name: str) -> None:
    case = CASES[name]
    expected = expected_routes(case)
    local_pref = 100 if case.asn == NODE_AS else None

    def routes() -> dict[str, dict[str, Any]] | None:
        got = lab.mux.routes(client=name)
        return got if set(got) == set(expected) else None

    got = wait_until(
        routes, timeout=20, what=f"{name}'s routes in bgpmux", logs_of=[lab.daemons[name], lab.mux]
    )
    for prefix, route in got.items():
        want = dict(expected[prefix])
        if local_pref is not None:
            want["local_pref"] = local_pref  # iBGP: BIRD sends LOCAL_PREF 100
        assert normalized(route) == want, f"{name} {prefix}"
    assert lab.mux.rejected(name) == {}
    # Everything accepted is the best path and reaches the ToR with the node's next hops, the
    # node AS as the AS path, and the communities and MED passed through.
    exported = lab.mux.routes()
    assert {prefix: exported[prefix]["client"] for prefix in expected} == dict.fromkeys(
        expected, name
    )
    for announce in case.announce:
        at_tor = wait_until(
            lambda announce=announce: tor_routes(lab).get(announce.prefix),
            timeout=15,
            what=f"{announce.prefix} at the ToR",
            logs_of=[lab.mux, lab.rack.tor],
        )
        assert at_tor.next_hop == (NODE_V6 if announce.family == "ipv6" else NODE_V4)
        assert at_tor.as_path == [NODE_AS]
        assert at_tor.communities == set(announce.communities)
        assert at_tor.large_communities == set(announce.large_communities)
        assert at_tor.med == announce.med


def tor_routes(lab: Lab) -> dict[str, Route]:
    return {**lab.rack.tor.routes("ipv4"), **lab.rack.tor.routes("ipv6")}


@pytest.mark.interop
def test_calico_capabilities_graceful_restart_and_add_path(lab: Lab) -> None:
    calico = lab.daemons["calico"]
    assert isinstance(calico, Bird)
    info = calico.protocol_info(calico.protocol_name(LOOPBACK))
    local_caps = _block(info, "Local capabilities")
    neighbor_caps = _block(info, "Neighbor capabilities")
    # BIRD offered ADD-PATH (`add paths on`: both ways); bgpmux answers with send only: it
    # sends every upstream's path and never takes several from a client (RFC 7911 §4).
    assert "ADD-PATH" in local_caps, info
    at = neighbor_caps.index("ADD-PATH")
    assert neighbor_caps[at + 1 : at + 3] == ["RX:", "TX: ipv4 ipv6"], info
    assert "Graceful restart" in neighbor_caps, info
    assert "4-octet AS numbers" in neighbor_caps, info
    assert "Route refresh" in neighbor_caps, info
    assert "Graceful restart" in local_caps, info
    session = next(line for line in info.splitlines() if line.strip().startswith("Session:"))
    assert "internal" in session.split(), info  # iBGP, as Calico peers with bgpmux
    log = text_of(lab.mux.log_path)
    assert any(
        "[peer=calico]" in line and "ADD-PATH send" in line and "graceful restart" in line
        for line in log.splitlines()
    ), log[-3000:]


def _block(text: str, header: str) -> list[str]:
    """The indented lines under ``header`` in `birdc show protocols all` output."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == header:
            indent = len(line) - len(line.lstrip())
            block = []
            for more in lines[index + 1 :]:
                if len(more) - len(more.lstrip()) <= indent:
                    break
                block.append(more.strip())
            return block
    raise AssertionError(f"no {header!r} in:\n{text}")


@pytest.mark.interop
def test_wrong_peer_as_gets_open_error_bad_peer_as(lab: Lab) -> None:
    bad = lab.bad_frr

    def last_error() -> dict[str, Any] | None:
        neighbor = bad.neighbors_info().get(LOOPBACK, {})
        return neighbor if neighbor.get("lastErrorCodeSubcode") else None

    neighbor = wait_until(
        last_error, timeout=20, what="FRR receiving bgpmux's NOTIFICATION", logs_of=[bad, lab.mux]
    )
    assert neighbor["bgpState"] != "Established"
    assert neighbor["lastErrorCodeSubcode"] == "0202", neighbor
    assert "Bad Peer AS" in neighbor.get("lastNotificationReason", ""), neighbor
    assert notifications_sent(lab.mux, "wrongas", 2, 2) >= 1
    assert lab.mux.sessions()["wrongas"]["state"] != "ESTABLISHED"


@pytest.mark.interop
def test_connection_from_unknown_address_is_refused(lab: Lab) -> None:
    before = lab.mux.metric("bgpmux_connections_refused_total") or 0.0
    # "pinned" only accepts 10.0.0.2; dial its listener from 127.0.0.1.
    report = raw_session(lab.rack.node, 1796, [["read_until_close", 10]], source=LOOPBACK)
    assert report["error"] is None, report
    assert report["notifications"] == [[6, 5, ""]], report  # Cease/Connection Rejected
    assert report["closed"], report
    assert lab.mux.metric("bgpmux_connections_refused_total") == before + 1
    assert lab.mux.sessions()["pinned"]["state"] != "ESTABLISHED"


def kill_and_expect_withdrawal(lab: Lab, name: str, timeout: float = 10) -> None:
    """SIGKILL the daemon behind client ``name``; bgpmux must notice and withdraw its routes."""
    daemon = lab.daemons[name]
    prefixes = {a.prefix for a in CASES[name].announce}
    wait_until(
        lambda: prefixes <= set(lab.mux.routes()) and prefixes <= set(tor_routes(lab)),
        timeout=20,
        what=f"{name}'s routes exported and at the ToR",
        logs_of=[lab.mux, lab.rack.tor],
    )
    daemon.kill9()
    wait_until(
        lambda: lab.mux.sessions()[name]["state"] != "ESTABLISHED",
        timeout=15,
        what=f"bgpmux noticing {name}'s death",
        logs_of=[lab.mux],
    )
    assert lab.mux.metric("bgpmux_session_up", peer=name, role="client") == 0.0
    wait_until(
        lambda: any(
            f"[peer={name}]" in line and "session down: connection_lost" in line
            for line in text_of(lab.mux.log_path).splitlines()
        ),
        timeout=5,
        what=f"bgpmux logging {name}'s session down",
        logs_of=[lab.mux],
    )
    wait_until(
        lambda: not prefixes & set(lab.mux.routes()),
        timeout=timeout,
        what=f"{name}'s routes gone from the export",
        logs_of=[lab.mux],
    )
    assert lab.mux.routes(client=name) == {}
    wait_until(
        lambda: not prefixes & set(tor_routes(lab)),
        timeout=timeout,
        what=f"{name}'s routes withdrawn at the ToR",
        logs_of=[lab.mux, lab.rack.tor],
    )


@pytest.mark.interop
def test_killed_client_without_graceful_restart_is_withdrawn(lab: Lab) -> None:
    """GoBGP offers no graceful restart: SIGKILL, and its routes leave the export at once."""
    kill_and_expect_withdrawal(lab, "gobgp")
    for name in ("calico", "metallb", "exabgp"):  # the others are untouched
        assert lab.mux.sessions()[name]["state"] == "ESTABLISHED"
        assert set(lab.mux.routes(client=name)) == {a.prefix for a in CASES[name].announce}


@pytest.mark.interop
def test_killed_frr_with_helper_only_graceful_restart_is_withdrawn(lab: Lab) -> None:
    kill_and_expect_withdrawal(lab, "metallb", timeout=6)
