"""The mux end to end: a real ToR (gobgpd, BIRD, FRR) ↔ bgpmux (engine exabgp, native) ↔ a
Calico-role BIRD and a MetalLB-role FRR, each in network namespaces (see e2e_rack.py).

One rack is built per (engine, ToR) and shared by the tests of that combination; every test
leaves the rack as it found it (the ToR holding exactly `Rack.baseline()`).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab import Announce, Route, Topology, wait_until

from .e2e_rack import (
    CALICO_ANNOUNCE,
    CALICO_PORT,
    CALICO_V4,
    CALICO_V6,
    ENGINES,
    JUNK_PORT,
    METALLB_OUTSIDE,
    METALLB_PORT,
    METALLB_V4,
    METALLB_V6,
    NODE_AS,
    NODE_V4,
    NODE_V6,
    NOISY_MAX_PREFIXES,
    SHARED_V4,
    TOR_AS,
    TOR_KINDS,
    TOR_ROUTE_V4,
    TOR_ROUTE_V6,
    TOR_V4,
    TOR_V6,
    Rack,
    RackKey,
    build_rack,
    frr_configure,
    mux_config,
    noisy_gobgp,
    norm,
    notifications,
    plain_bird,
    promtool_check,
    run_bgpmux,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

# Engine first: the exabgp racks are the first len(TOR_KINDS) params, so the exabgp-only test
# below (indirect parametrization over that prefix) reuses the very same module-scoped racks.
RACKS = [RackKey(engine, tor) for engine in ENGINES for tor in TOR_KINDS]
EXABGP_RACKS = RACKS[: len(TOR_KINDS)]
assert all(key.engine == "exabgp" for key in EXABGP_RACKS)


@pytest.fixture(scope="module", params=RACKS, ids=str)
def rack(request: pytest.FixtureRequest) -> Iterator[Rack]:
    built = build_rack(request.param)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def clean_rack(rack: Rack) -> Iterator[Rack]:
    """The shared rack, checked to be in its baseline state before and after the test."""
    rack.wait_sessions("tor", "calico", "metallb", timeout=30)
    rack.wait_baseline(timeout=30)
    yield rack
    rack.wait_sessions("tor", "calico", "metallb", timeout=30)
    rack.wait_baseline(timeout=30)


# ------------------------------------------------------------------------ client -> ToR


def test_tor_holds_node_routes_with_node_next_hop_and_as_path(clean_rack: Rack) -> None:
    rack = clean_rack
    assert rack.tor_all_prefixes() == rack.baseline()
    for prefix, next_hop in (
        (CALICO_V4, NODE_V4),
        (METALLB_V4, NODE_V4),
        (CALICO_V6, NODE_V6),
        (METALLB_V6, NODE_V6),
    ):
        route = rack.tor_route(prefix)
        assert route is not None, prefix
        assert route.next_hop == next_hop, (prefix, route)
        assert route.as_path == [NODE_AS], (prefix, route)
    # The ToR's own routes are there too, originated by itself.
    for prefix in (TOR_ROUTE_V4, TOR_ROUTE_V6):
        route = rack.tor_route(prefix)
        assert route is not None and NODE_AS not in route.as_path, (prefix, route)


def test_route_outside_accept_list_never_reaches_tor(clean_rack: Rack) -> None:
    rack = clean_rack
    assert norm(METALLB_OUTSIDE) not in rack.tor_prefixes("ipv4")
    assert rack.mux.rejected("metallb") == {METALLB_OUTSIDE: "not_in_accept_list"}
    rejected = rack.metric(
        "bgpmux_prefixes_rejected", client="metallb", reason="not_in_accept_list"
    )
    assert rejected == 1
    assert rack.metric("bgpmux_prefixes_rejected", client="calico") == 0
    assert METALLB_OUTSIDE not in rack.mux.routes()  # not in what bgpmux exports either


# ------------------------------------------------------------------------ ToR -> clients


def test_tor_route_reaches_calico_and_not_metallb(clean_rack: Rack) -> None:
    """Calico gets the ToR's routes with their next hop kept (for IPv6 the global one, though
    a BIRD ToR also sends a link-local); MetalLB (receive_upstream_routes: false) gets none."""
    rack = clean_rack
    v4 = wait_until(
        lambda: rack.calico.routes_of("ipv4").get(TOR_ROUTE_V4),
        timeout=10,
        what=f"{TOR_ROUTE_V4} in Calico's BIRD",
        logs_of=rack.daemons,
    )
    assert v4.next_hop == TOR_V4 and v4.as_path == [TOR_AS], v4
    assert TOR_ROUTE_V4 not in rack.metallb.routes_of("ipv4")
    assert TOR_ROUTE_V6 not in rack.metallb.routes_of("ipv6")
    v6 = wait_until(
        lambda: rack.calico.routes_of("ipv6").get(TOR_ROUTE_V6),
        timeout=5,
        what=f"{TOR_ROUTE_V6} in Calico's BIRD",
        logs_of=rack.daemons,
    )
    assert v6.next_hop == TOR_V6 and v6.as_path == [TOR_AS], v6


def test_routes_reflected_by_the_tor_are_not_looped_back(clean_rack: Rack) -> None:
    """A ToR may send the node's own routes back (FRR does, with AS_PATH 65000 64512): bgpmux
    must drop them (RFC 4271 9.1.2), so a client never receives its own routes back."""
    rack = clean_rack
    time.sleep(1)  # whatever the ToR reflects comes right after our UPDATEs
    from_tor = rack.mux.routes(upstream="tor")
    looped = {prefix: r["as_path"] for prefix, r in from_tor.items() if NODE_AS in r["as_path"]}
    assert looped == {}
    assert set(from_tor) == {TOR_ROUTE_V4, TOR_ROUTE_V6}


# ------------------------------------------------------------------------ conflicts


def test_conflict_higher_priority_wins_and_withdrawal_promotes_the_other(
    clean_rack: Rack,
) -> None:
    rack = clean_rack
    seen_before = rack.metric("bgpmux_conflicts_seen_total")
    # MetalLB (priority 50) first, with the *better* MED: only priority may make Calico win.
    frr_configure(
        rack.metallb,
        "route-map SHARED permit 10",
        "set metric 50",
        "set community 64514:77 additive",
        "exit",
        "router bgp 64514",
        "address-family ipv4 unicast",
        f"network {SHARED_V4} route-map SHARED",
    )
    try:
        rack.wait_tor_route(SHARED_V4, lambda r: r.med == 50 and (64514, 77) in r.communities)
        rack.bird_reconfigure(
            rack.calico,
            [*CALICO_ANNOUNCE, Announce(SHARED_V4, med=200, communities=((NODE_AS, 77),))],
        )
        won = rack.wait_tor_route(
            SHARED_V4, lambda r: r.med == 200 and (NODE_AS, 77) in r.communities
        )
        assert (64514, 77) not in won.communities
        assert won.next_hop == NODE_V4 and won.as_path == [NODE_AS]
        assert rack.metric("bgpmux_conflicts_seen_total") == seen_before + 1
        assert rack.metric("bgpmux_conflicts") == 1
        calico_view = rack.mux.routes(client="calico")[SHARED_V4]
        metallb_view = rack.mux.routes(client="metallb")[SHARED_V4]
        assert calico_view["best"] is True and metallb_view["best"] is False

        # Calico withdraws: MetalLB's route takes over at the ToR.
        rack.bird_reconfigure(rack.calico, list(CALICO_ANNOUNCE))
        promoted = rack.wait_tor_route(
            SHARED_V4, lambda r: r.med == 50 and (64514, 77) in r.communities
        )
        assert (NODE_AS, 77) not in promoted.communities
        assert rack.metric("bgpmux_conflicts") == 0
        assert rack.metric("bgpmux_conflicts_seen_total") == seen_before + 1
    finally:
        rack.bird_reconfigure(rack.calico, list(CALICO_ANNOUNCE))
        frr_configure(
            rack.metallb, "router bgp 64514", "address-family ipv4 unicast",
            f"no network {SHARED_V4} route-map SHARED",
        )  # fmt: skip
    rack.wait_tor_lacks(SHARED_V4)


# ------------------------------------------------------------------------ max_prefixes


def test_client_over_max_prefixes_is_cut_off_and_withdrawn(clean_rack: Rack) -> None:
    rack = clean_rack
    first = ["198.51.100.200/32", "198.51.100.201/32"]
    more = ["198.51.100.202/32", "198.51.100.203/32"]
    assert len(first) <= NOISY_MAX_PREFIXES < len(first) + len(more)
    sent_before = rack.metric(
        "bgpmux_notifications_sent_total", peer="noisy", code="6", subcode="1"
    )
    noisy = noisy_gobgp(rack.node, [Announce(p) for p in first])
    rack.extra.append(noisy)
    try:
        noisy.start()
        rack.wait_sessions("noisy")
        rack.wait_tor_has(*first)
        for prefix in more:
            noisy.add_route(prefix)
        wait_until(
            lambda: (
                rack.metric("bgpmux_notifications_sent_total", peer="noisy", code="6", subcode="1")
                >= sent_before + 1
            ),
            timeout=15,
            what="Cease/Maximum Number of Prefixes Reached sent to noisy",
            logs_of=rack.daemons,
        )
        rack.wait_tor_lacks(*first, *more, timeout=5)
        assert rack.metric("bgpmux_max_prefixes_cutoffs_total", client="noisy") >= 1
    finally:
        noisy.stop()
        rack.extra.remove(noisy)
    assert not ({norm(p) for p in first + more} & rack.tor_all_prefixes())


# ------------------------------------------------------------------------ client restarts


def test_client_without_graceful_restart_withdrawn_within_2s(clean_rack: Rack) -> None:
    rack = clean_rack
    prefix = "10.244.9.0/26"
    plain = plain_bird(rack.node, [Announce(prefix)])
    rack.extra.append(plain)
    try:
        # SIGTERM sends a NOTIFICATION; SIGKILL just closes the connection. BIRD's default
        # (`graceful restart aware`) offers the capability without preserving any family, so
        # bgpmux must not keep the routes as stale either way.
        for how, end in (("SIGTERM", plain.stop), ("SIGKILL", plain.kill9)):
            plain.start()
            rack.wait_sessions("plain")
            rack.wait_tor_has(prefix)
            started = time.monotonic()
            end()
            wait_until(
                lambda: norm(prefix) not in rack.tor_prefixes("ipv4"),
                timeout=5,
                interval=0.05,
                what=f"{prefix} withdrawn at the ToR after {how}",
                logs_of=rack.daemons,
            )
            elapsed = time.monotonic() - started
            assert elapsed <= 2.0, f"withdrawn after {elapsed:.2f}s ({how})"
    finally:
        plain.stop()
        rack.extra.remove(plain)


def test_calico_graceful_restart_keeps_routes_and_sweeps_after_end_of_rib(
    clean_rack: Rack,
) -> None:
    rack = clean_rack
    extra = "10.244.2.0/26"
    rack.bird_reconfigure(rack.calico, [*CALICO_ANNOUNCE, Announce(extra)])
    rack.wait_tor_has(extra)
    kept = {norm(p) for p in (CALICO_V4, CALICO_V6, METALLB_V4, METALLB_V6)}

    # calico-node restarting: SIGKILL, then BIRD -R again, now without `extra`.
    rack.calico.kill9()
    rack.calico.announce = list(CALICO_ANNOUNCE)
    killed = time.monotonic()
    restarted = False
    stale_seen = 0
    missing: list[tuple[float, set[str]]] = []
    deadline = killed + 45
    while True:
        now = time.monotonic()
        assert now < deadline, (
            f"{extra} not swept within 45 s of the restart\n" + rack.mux.log_tail(30)
        )
        prefixes = rack.tor_all_prefixes()
        if not kept <= prefixes:
            missing.append((round(now - killed, 2), kept - prefixes))
        state = rack.mux.sessions()["calico"]
        stale_seen = max(stale_seen, int(state["stale"]))
        if not restarted and now - killed >= 1.0:
            rack.calico.start()
            restarted = True
        if restarted and norm(extra) not in prefixes and state["state"] == "ESTABLISHED":
            break
        time.sleep(0.2)
    assert missing == [], f"routes vanished from the ToR during the restart: {missing}"
    assert stale_seen >= 3, "bgpmux never held Calico's routes as stale"
    assert rack.mux.sessions()["calico"]["stale"] == 0
    assert kept <= rack.tor_all_prefixes()


# ------------------------------------------------------------------------ engine restarts


@pytest.mark.parametrize("rack", EXABGP_RACKS, indirect=True, ids=str)
def test_exabgp_child_killed_is_restarted_and_tor_table_restored(clean_rack: Rack) -> None:
    rack = clean_rack
    before = {p: rack.tor_route(p) for p in rack.baseline()}
    restarts = rack.metric("bgpmux_engine_restarts_total", engine="exabgp")
    children = [pid for pid in rack.mux_children() if b"exabgp" in _cmdline(pid)]
    assert len(children) == 1, f"expected one ExaBGP child of bgpmux, got {children}"
    os.kill(children[0], signal.SIGKILL)  # by PID: bgpmux's own child
    wait_until(
        lambda: rack.metric("bgpmux_engine_restarts_total", engine="exabgp") > restarts,
        timeout=20,
        what="bgpmux_engine_restarts_total increasing",
        logs_of=rack.daemons,
    )
    rack.wait_sessions("tor", timeout=40)
    rack.wait_baseline(timeout=30)
    new_children = [pid for pid in rack.mux_children() if b"exabgp" in _cmdline(pid)]
    assert len(new_children) == 1 and new_children != children
    after = wait_until(
        lambda: (table := {p: rack.tor_route(p) for p in rack.baseline()}) == before and table,
        timeout=15,
        what="the ToR's table as before the kill",
        logs_of=rack.daemons,
    )
    assert after == before


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# ------------------------------------------------------------------------ bad input


JUNK = b"GET / HTTP/1.1\r\nHost: bgpmux\r\n\r\n" + b"\x00" * 40
PEERS = (("calico", "client"), ("metallb", "client"), ("tor", "upstream"))


def _flaps(rack: Rack) -> dict[str, float]:
    return {
        name: rack.metric("bgpmux_session_flaps_total", peer=name, role=role)
        for name, role in PEERS
    }


def _assert_unaffected(rack: Rack, flaps: dict[str, float], table: dict[str, Route | None]) -> None:
    time.sleep(1)
    for name, _role in PEERS:
        assert rack.mux_state(name) == "ESTABLISHED", name
    assert rack.metallb.neighbor_state("127.0.0.1") == "Established"
    assert rack.calico.neighbor_state("127.0.0.1") == "Established"
    assert _flaps(rack) == flaps
    assert {p: rack.tor_route(p) for p in rack.baseline()} == table


def test_junk_gets_notification_and_others_unaffected(clean_rack: Rack) -> None:
    """Junk to a client port (one nobody is connected on) is answered with a NOTIFICATION
    (Message Header Error); Calico's, MetalLB's and the ToR's sessions and routes stay."""
    rack = clean_rack
    flaps, table = _flaps(rack), {p: rack.tor_route(p) for p in rack.baseline()}
    reply = rack.raw_exchange(JUNK_PORT, JUNK)
    assert notifications(reply), reply.hex()
    assert notifications(reply)[0][0] == 1, notifications(reply)  # Message Header Error
    _assert_unaffected(rack, flaps, table)


def test_junk_on_an_established_clients_port_leaves_that_client_alone(clean_rack: Rack) -> None:
    """Junk to MetalLB's and to Calico's port while they are Established: the junk connection
    gets a NOTIFICATION; the established sessions (Calico's with graceful restart, where a new
    connection may mean a restarted peer) are neither reset nor flapped."""
    rack = clean_rack
    flaps, table = _flaps(rack), {p: rack.tor_route(p) for p in rack.baseline()}
    for port in (METALLB_PORT, CALICO_PORT):
        reply = rack.raw_exchange(port, JUNK)
        assert notifications(reply), (port, reply.hex())
    _assert_unaffected(rack, flaps, table)


def test_sighup_widens_an_accept_list_without_resetting_any_session(clean_rack: Rack) -> None:
    """SIGHUP with MetalLB's accept list widened: the prefix it was already sending reaches the
    ToR and no session flaps; the old file and another SIGHUP take it away again."""
    rack, mux = clean_rack, clean_rack.mux
    assert mux.proc is not None
    flaps = _flaps(rack)
    original = mux.config_path.read_text()
    config = yaml.safe_load(original)
    metallb = next(c for c in config["clients"] if c["name"] == "metallb")
    metallb["accept"] = [*metallb["accept"], "203.0.113.0/24 le 32"]
    try:
        mux.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        mux.host.kill(mux.proc, signal.SIGHUP)
        rack.wait_tor_has(METALLB_OUTSIDE)
        assert (
            rack.metric("bgpmux_prefixes_rejected", client="metallb", reason="not_in_accept_list")
            == 0
        )
    finally:
        mux.config_path.write_text(original)
        mux.host.kill(mux.proc, signal.SIGHUP)
    rack.wait_baseline()
    assert (
        rack.metric("bgpmux_prefixes_rejected", client="metallb", reason="not_in_accept_list") == 1
    )
    assert _flaps(rack) == flaps


@pytest.mark.parametrize("engine", ENGINES)
def test_malformed_config_refused_naming_the_field(engine: str) -> None:
    config = mux_config(engine)
    config["clients"][1]["accept"] = ["198.51.100.0/33"]
    config["upstreams"][0]["hold_time"] = 2
    with Topology(tag="cfg") as topo:
        host = topo.add_host("node")
        path = host.workdir / "bad.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        for command in ("check-config", "run"):
            result = run_bgpmux(host, [command, "-c", str(path)])
            assert result.returncode == 1, (command, result)
            assert "clients[1].accept[0]" in result.stderr, (command, result.stderr)
            assert "upstreams[0].hold_time" in result.stderr, (command, result.stderr)


# ------------------------------------------------------------------------ observability


def test_metrics_pass_promtool_and_health_endpoints(clean_rack: Rack) -> None:
    rack = clean_rack
    status, text = rack.mux.http("/metrics")
    assert status == 200
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for family in (
        "bgpmux_session_up",
        "bgpmux_prefixes_accepted",
        "bgpmux_prefixes_advertised",
        "bgpmux_route_propagation_seconds_bucket",
    ):
        assert family in text, family
    assert rack.metric("bgpmux_session_up", peer="tor", role="upstream") == 1
    assert rack.metric("bgpmux_prefixes_advertised", upstream="tor", family="ipv4-unicast") == 2
    tor = {"peer": "tor", "role": "upstream"}
    assert rack.metric("bgpmux_session_state", **tor, state="Established") == 1
    assert rack.metric("bgpmux_peer_info", **tor, address=TOR_V4, asn=str(TOR_AS)) == 1
    assert rack.metric("bgpmux_messages_received_total", **tor, type="OPEN") >= 1
    assert rack.metric("bgpmux_messages_sent_total", **tor, type="OPEN") >= 1
    assert rack.metric("bgpmux_messages_received_total", **tor, type="UPDATE") >= 1
    assert rack.mux.http("/readyz")[0] == 200
    assert rack.mux.http("/healthz")[0] == 200
