"""Fault injection with real daemons (issue 7): a BIRD ToR ↔ bgpmux (engine exabgp, native) ↔ a
Calico-role BIRD and a MetalLB-role FRR, in network namespaces (see fault_rack.py).

Each fault starts from the baseline (the ToR holding exactly the node's four routes via the
node's address, and its own two), is injected, and ends with the ToR's table compared exactly
with the expected one (every prefix, and the node's address as next hop): the time that takes
is measured, bounded, printed and written to ``convergence.json`` under the module's tmp dir.
Where graceful restart means routes must stay during the fault, every table read in between is
checked too. One rack per engine serves every fault; each fault leaves the baseline behind.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import Announce, GoBgp, wait_until

from .conftest import raw_session, report_from_log, spawn_raw
from .e2e_rack import frr_configure
from .fault_net import (
    LinkLoss,
    link,
)
from .fault_rack import (
    BLOCKER_API_PORT,
    BLOCKER_AS,
    BLOCKER_MAX,
    BLOCKER_PORT,
    CALICO_BULK,
    CALICO_BULK_BASE,
    ENGINES,
    METALLB_AS,
    NODE_AS,
    NOISY_MAX,
    NOISY_PORT,
    NOISY_RESTART,
    RAW_PORT,
    SLOW_PORT,
    TOR_BULK,
    TOR_BULK_BASE,
    UPSTREAM_HOLD_TIME,
    FaultRack,
    Measured,
    build,
    gobgp_client,
    noisy_bird,
    pid_alive,
    write_results,
)
from .fault_tables import (
    BASELINE_NODE_ROUTES,
    CALICO_ROUTES,
    TOR_ROUTES,
    Table,
    baseline,
    diff,
    host_routes,
    norm,
    table_of,
)
from .test_oversized import NORMAL, OVERSIZED, oversized_script

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

CLIENTS = (("calico", "client"), ("metallb", "client"))
PEERS = (("tor", "upstream"), *CLIENTS)
EXTRA_V4 = "198.51.100.99/32"  # MetalLB's extra route in the bgpmux and ExaBGP restarts
CALICO_EXTRA = "10.244.2.0/26"  # Calico's route that its restart leaves behind


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Measured]]:
    """Every fault's figures; written to convergence.json and summarized at the end."""
    collected: list[Measured] = []
    yield collected
    path = tmp_path_factory.mktemp("faults") / "convergence.json"
    write_results(path, collected)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # shown without -s, at the end of the module
        reporter.write_sep("-", f"fault convergence (seconds), also in {path}")
        for m in collected:
            figures = "  ".join(f"{k}={v:.2f}" for k, v in m.figures.items())
            reporter.write_line(f"{m.engine:7} {m.fault:30} {figures}")


@pytest.fixture(scope="module", params=ENGINES)
def rack(request: pytest.FixtureRequest) -> Iterator[FaultRack]:
    built = build(request.param)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def clean_rack(rack: FaultRack) -> Iterator[FaultRack]:
    """The shared rack at its baseline before and after the fault."""
    rack.sessions_up("tor", "calico", "metallb")
    rack.converge(baseline(), time.monotonic(), 40, "the baseline before the fault")
    yield rack
    rack.sessions_up("tor", "calico", "metallb")
    rack.converge(baseline(), time.monotonic(), 40, "the baseline after the fault")


def record(results: list[Measured], rack: FaultRack, fault: str, **figures: float) -> None:
    measured = Measured(rack.engine, fault, {k: round(v, 3) for k, v in figures.items()})
    results.append(measured)
    print(f"\n[fault] {rack.engine} {fault}: {measured.figures}")


def between(low: Table, high: Table) -> Callable[[Table], str | None]:
    """An invariant: the table holds all of ``low`` and nothing beyond ``high``."""

    def check(got: Table) -> str | None:
        if any(got.get(p) != hop for p, hop in low.items()):
            return f"routes that must stay went missing: {diff(got, low)}"
        if not set(got) <= set(high):
            return f"routes that must not be there: {diff(got, high)}"
        return None

    return check


def metallb_network(rack: FaultRack, prefix: str, present: bool) -> None:
    no = "" if present else "no "
    frr_configure(rack.metallb, f"router bgp {METALLB_AS}", "address-family ipv4 unicast",
                  f"{no}network {prefix}")  # fmt: skip


# ------------------------------------------------------------------------------- clients


def test_calico_kill9_keeps_routes_and_sweeps_after_restart(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """kill -9 of the Calico BIRD (graceful restart): its routes stay at the ToR the whole
    time, held stale by bgpmux; it comes back (`bird -R`) without one route, which is swept
    at its End-of-RIB."""
    rack = clean_rack
    with_extra = table_of([*BASELINE_NODE_ROUTES, CALICO_EXTRA])
    rack.bird_announce(rack.calico, [*CALICO_ROUTES, CALICO_EXTRA])
    rack.converge(with_extra, time.monotonic(), 20, "Calico's extra route")
    keep = between(baseline(), with_extra)

    rack.calico.kill9()
    killed = time.monotonic()
    rack.converge(with_extra, killed, 10, "Calico's routes held stale", invariant=keep,
                  until=lambda: rack.mux.sessions()["calico"]["stale"] == 3)  # fmt: skip
    rack.calico.announce = [Announce(p) for p in CALICO_ROUTES]
    rack.calico.start()
    back = lambda: rack.mux_state("calico") == "ESTABLISHED"  # noqa: E731
    established = rack.converge(None, killed, 20, "Calico back", invariant=keep, until=back)
    # BIRD, recovering (`-R`), sends its routes and End-of-RIB some seconds later.
    converged = rack.converge(baseline(), killed, 40, "Calico's restart", invariant=keep)
    assert rack.mux.sessions()["calico"]["stale"] == 0
    record(results, rack, "calico kill -9 (GR)", established=established, converged=converged)
    assert converged < 20


def test_metallb_kill9_withdraws_then_restart_restores(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """kill -9 of the MetalLB FRR (no graceful restart): its routes leave the ToR, Calico's
    stay; started again, they come back."""
    rack = clean_rack
    rack.metallb.kill9()
    killed = time.monotonic()
    calico_only = table_of(CALICO_ROUTES)
    withdrawn = rack.converge(calico_only, killed, 15, "MetalLB's routes withdrawn",
                              invariant=between(calico_only, baseline()))  # fmt: skip
    rack.metallb.start()
    started = time.monotonic()
    restored = rack.converge(baseline(), started, 30, "MetalLB back",
                             invariant=between(calico_only, baseline()))  # fmt: skip
    record(results, rack, "metallb kill -9", withdrawn=withdrawn, restored=restored)
    assert withdrawn < 3
    assert restored < 15


# ------------------------------------------------------------------------------- bgpmux


@pytest.mark.parametrize("rack", ["exabgp", "gobgp"], indirect=True)
def test_speaker_kill9_is_restarted_and_tor_keeps_routes(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """kill -9 of bgpmux's ExaBGP or gobgpd child: bgpmux's supervisor starts another and
    sends the table again; the ToR (graceful restart helper) keeps every route meanwhile; a
    route MetalLB withdrew meanwhile is swept at the new session's End-of-RIB."""
    rack = clean_rack
    with_extra = table_of([*BASELINE_NODE_ROUTES, EXTRA_V4])
    metallb_network(rack, EXTRA_V4, True)
    rack.converge(with_extra, time.monotonic(), 20, "MetalLB's extra route")
    restarts = rack.metric("bgpmux_engine_restarts_total", engine=rack.engine)
    pids = rack.speaker_pids()
    assert len(pids) == 1, f"expected one {rack.engine} child of bgpmux, got {pids}"

    os.kill(pids[0], signal.SIGKILL)  # by PID: the child of the bgpmux this test started
    killed = time.monotonic()
    metallb_network(rack, EXTRA_V4, False)
    converged = rack.converge(baseline(), killed, 60, f"{rack.engine} restarted",
                              invariant=between(baseline(), with_extra))  # fmt: skip
    assert rack.metric("bgpmux_engine_restarts_total", engine=rack.engine) == restarts + 1
    new = rack.speaker_pids()
    assert len(new) == 1 and new != pids, new
    record(results, rack, f"{rack.engine} kill -9", converged=converged)
    assert converged < 30


@pytest.mark.parametrize("rack", ["exabgp", "gobgp"], indirect=True)
def test_speaker_kill9_calico_keeps_the_tors_routes(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """kill -9 of bgpmux's ExaBGP or gobgpd child: the ToR negotiated graceful restart and
    did not restart, so its routes must stay (stale) at Calico until the new session's
    End-of-RIB instead of leaving the node's forwarding table for the restart."""
    rack = clean_rack
    tor_routes = {norm(p) for p in TOR_ROUTES}

    def calico_view() -> set[str]:
        return set(rack.calico.routes_of("ipv4")) | set(rack.calico.routes_of("ipv6"))

    assert tor_routes <= calico_view()
    restarts = rack.metric("bgpmux_engine_restarts_total", engine=rack.engine)
    os.kill(rack.speaker_pids()[0], signal.SIGKILL)  # by PID: bgpmux's child
    killed = time.monotonic()
    missing_since: float | None = None
    gap = 0.0
    while True:
        now = time.monotonic()
        assert now - killed < 30, f"{rack.engine} not back within 30 s"
        complete = tor_routes <= calico_view()
        if not complete and missing_since is None:
            missing_since = now
        elif complete and missing_since is not None:
            gap += now - missing_since
            missing_since = None
        restarted = rack.metric("bgpmux_engine_restarts_total", engine=rack.engine) > restarts
        if complete and restarted and now - killed > 3 and rack.mux_state("tor") == "ESTABLISHED":
            break
        time.sleep(0.1)
    record(results, rack, f"{rack.engine} kill -9, Calico's view", tor_routes_missing=gap)
    assert gap == 0, f"the ToR's routes left Calico for {gap:.2f}s while {rack.engine} restarted"


def test_bgpmux_kill9_restarted_tor_never_sees_a_partial_table(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """kill -9 of bgpmux, started again at once as the kubelet would: the ToR keeps every
    route meanwhile (graceful restart), bgpmux holds its End-of-RIB until the clients are back,
    and a route MetalLB dropped while bgpmux was away is swept: no stale route is left.
    Calico (graceful restart helper) keeps the ToR's routes the whole time."""
    rack = clean_rack
    with_extra = table_of([*BASELINE_NODE_ROUTES, EXTRA_V4])
    metallb_network(rack, EXTRA_V4, True)
    rack.converge(with_extra, time.monotonic(), 20, "MetalLB's extra route")
    children = rack.speaker_pids()
    tor_keeps = between(baseline(), with_extra)
    tor_routes = {norm(p) for p in TOR_ROUTES}

    def both_keep(got: Table) -> str | None:
        calico = set(rack.calico.routes_of("ipv4")) | set(rack.calico.routes_of("ipv6"))
        lost = tor_routes - calico
        return tor_keeps(got) or (f"the ToR's {sorted(lost)} left Calico" if lost else None)

    rack.mux.kill9()
    killed = time.monotonic()
    metallb_network(rack, EXTRA_V4, False)  # its session is down: bgpmux never hears of it
    rack.mux.start()
    converged = rack.converge(baseline(), killed, 60, "bgpmux restarted", invariant=both_keep)
    for pid in children:  # the relay ends its ExaBGP when bgpmux goes; gobgpd's pdeathsig
        assert not pid_alive(pid), f"the killed bgpmux's {rack.engine} (pid {pid}) still runs"
    rack.sessions_up("tor", "calico", "metallb")
    assert rack.mux.sessions()["calico"]["stale"] == 0
    record(results, rack, "bgpmux kill -9", converged=converged)
    assert converged < 30


# ------------------------------------------------------------------------------- the link


def test_upstream_link_blip_converges_once_the_link_is_up(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """The node's upstream veth down for 2 s (less than the hold time) and up. The BIRD ToR
    ends the session as soon as its link goes down (a directly connected eBGP neighbor lost,
    like most ToRs' fast external failover); once it is up the table converges back. The
    clients' sessions never notice."""
    rack = clean_rack
    flaps = rack.flaps(*CLIENTS)
    link(rack.node, rack.node_if, up=False)
    try:
        time.sleep(2.0)
    finally:
        link(rack.node, rack.node_if, up=True)
    upped = time.monotonic()
    converged = rack.converge(baseline(), upped, 30, "link back up")
    rack.sessions_up("tor")
    assert rack.flaps(*CLIENTS) == flaps
    record(results, rack, "link down 2 s", converged=converged)
    # gobgpd 3.10 waits a random 5-10 s before each dial, whatever its connect-retry timer
    assert converged < (16 if rack.engine == "gobgp" else 10)


def test_upstream_link_outage_longer_than_hold_time_recovers(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """The node's upstream veth down for longer than the hold time: both sides drop the
    session; once the link is up again the ToR's table converges back to the baseline."""
    rack = clean_rack
    flaps = rack.metric("bgpmux_session_flaps_total", peer="tor", role="upstream")
    client_flaps = rack.flaps(*CLIENTS)
    link(rack.node, rack.node_if, up=False)
    downed = time.monotonic()
    try:
        wait_until(
            lambda: rack.mux.sessions()["tor"]["state"] != "ESTABLISHED",
            timeout=UPSTREAM_HOLD_TIME + 5, interval=0.2,
            what="bgpmux's hold timer to end the session", logs_of=rack.daemons,
        )  # fmt: skip
        detected = time.monotonic() - downed
        time.sleep(max(0.0, downed + UPSTREAM_HOLD_TIME + 2 - time.monotonic()))
    finally:
        link(rack.node, rack.node_if, up=True)
    upped = time.monotonic()
    converged = rack.converge(baseline(), upped, 60, "link back up")
    rack.sessions_up("tor")
    assert rack.metric("bgpmux_session_flaps_total", peer="tor", role="upstream") > flaps
    assert rack.flaps(*CLIENTS) == client_flaps
    record(results, rack, "link down > hold time", detected=detected, converged=converged)
    assert converged < 30


def test_packet_loss_during_10k_announcement(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """20% packet loss both ways on the upstream link (netem where the kernel has it, else
    iptables' statistic match) while Calico announces 10,000 prefixes: they all reach the ToR
    with the node's next hop; withdrawn afterwards (loss off), they all leave."""
    rack = clean_rack
    bulk = host_routes(CALICO_BULK_BASE, CALICO_BULK)
    with_bulk = table_of([*BASELINE_NODE_ROUTES, *bulk])
    flaps = rack.metric("bgpmux_session_flaps_total", peer="tor", role="upstream")
    loss = LinkLoss(rack, 20)
    try:
        with loss:
            started = time.monotonic()
            assert "enabled" in rack.calico.birdc_cmd("enable bulk")
            announced = rack.converge(with_bulk, started, 120, "10k prefixes under 20% loss",
                                      interval=0.25)  # fmt: skip
            dropped, seen = loss.counts()
    finally:
        rack.calico.birdc_cmd("disable bulk")
    withdrawn_at = time.monotonic()
    withdrawn = rack.converge(baseline(), withdrawn_at, 60, "10k prefixes withdrawn")
    tor_flaps = rack.metric("bgpmux_session_flaps_total", peer="tor", role="upstream") - flaps
    record(results, rack, "20% loss, 10k announced", announced=announced, withdrawn=withdrawn,
           tor_flaps=tor_flaps, packets=seen, dropped=dropped,
           netem=float(loss.netem))  # fmt: skip
    # A few dozen packets carry 10k prefixes: only check that the loss applied, and sanely.
    assert 0 < dropped < seen / 2, (dropped, seen)
    assert announced < (60 if rack.engine == "exabgp" else 30)


# ------------------------------------------------------------------------------- bad clients


def test_oversized_route_never_reaches_the_tor(
    clean_rack: FaultRack, results: list[Measured], tmp_path: Path
) -> None:
    """A client sends a normal route and routes too large for any UPDATE to the ToR (the
    inputs of test_oversized.py): the ToR gets exactly the normal one, nothing flaps, and the
    normal route's withdrawal still goes through."""
    rack = clean_rack
    go, stop = tmp_path / "go", tmp_path / "stop"
    flaps = rack.flaps(*PEERS)
    log = spawn_raw(
        rack.node, RAW_PORT, oversized_script(go, stop), f"raw-oversized-{rack.engine}.log"
    )
    try:
        sent = time.monotonic()
        with_normal = table_of([*BASELINE_NODE_ROUTES, NORMAL])
        no_oversized = between(baseline(), with_normal)
        arrived = rack.converge(with_normal, sent, 30, "the normal route",
                                invariant=no_oversized)  # fmt: skip
        wait_until(
            lambda: set(rack.mux.routes(client="raw")) >= OVERSIZED,
            timeout=10, what="the oversized routes in bgpmux", logs_of=rack.daemons,
        )  # fmt: skip
        rack.hold_steady(with_normal, 3.0, "oversized routes held back")
        assert rack.flaps(*PEERS) == flaps
        assert rack.mux.http("/healthz")[0] == 200
        go.touch()
        withdrawn_at = time.monotonic()
        withdrawn = rack.converge(baseline(), withdrawn_at, 15, "the normal route withdrawn")
        stop.touch()
        report = report_from_log(log)
        assert report["error"] is None and report["notifications"] == [], report
    finally:
        go.touch()
        stop.touch()
    record(results, rack, "oversized route", arrived=arrived, withdrawn=withdrawn)


def test_client_that_stops_reading_is_closed_and_nothing_else_moves(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """A client that receives the ToR's routes stops reading (KEEPALIVEs still go out) while
    the ToR announces ~6 MiB of them; past output_limit_mib (1) of unsent output bgpmux ends
    its session with Cease/Out of Resources (queued behind the unread data, so it may never
    arrive) and drops the connection; the ToR, Calico and MetalLB are not disturbed."""
    rack = clean_rack
    flaps = rack.flaps(*PEERS)
    log = spawn_raw(
        rack.node, SLOW_PORT, [["open", NODE_AS], ["established"], ["stall", 60, 0.5]],
        f"raw-slow-{rack.engine}.log", rcvbuf=4096,
    )  # fmt: skip
    rack.sessions_up("slow")
    bulk = host_routes(TOR_BULK_BASE, TOR_BULK)
    with_bulk = table_of(BASELINE_NODE_ROUTES, [*TOR_ROUTES, *bulk])
    started = time.monotonic()
    try:
        assert "enabled" in rack.tor.birdc_cmd("enable bulk")
        wait_until(
            lambda: rack.mux_state("slow") != "ESTABLISHED",
            timeout=60, interval=0.1, what="bgpmux closing the stalled client",
            logs_of=rack.daemons,
        )  # fmt: skip
        closed = time.monotonic() - started
        report = report_from_log(log, timeout=30)
        reset = time.monotonic() - started
        assert report["send_error"] is not None, report  # its connection was dropped
        sent = rack.metric("bgpmux_notifications_sent_total", peer="slow", code="6", subcode="8")
        logged = "over the limit of 1048576: closing the session" in rack.mux.log_tail(400)
        assert sent == 1 or logged, rack.mux.log_tail(60)
        converged = rack.converge(with_bulk, started, 60, "the ToR's heavy routes")
        wait_until(
            lambda: len(rack.calico.routes("master4")) >= TOR_BULK,
            timeout=60, what="Calico holding the ToR's heavy routes", logs_of=rack.daemons,
        )  # fmt: skip
        assert rack.flaps(*PEERS) == flaps
    finally:
        rack.tor.birdc_cmd("disable bulk")
    rack.converge(baseline(), time.monotonic(), 60, "the ToR's heavy routes gone")
    record(results, rack, "client stops reading", closed=closed, reset=reset,
           converged=converged)  # fmt: skip
    assert closed < 30


def start_gobgp(rack: FaultRack, name: str, asn: int, port: int, api: int) -> GoBgp:
    client = gobgp_client(rack.node, name, asn, port, api)
    rack.extra.append(client)
    client.start()
    return client


def stop_gobgp(rack: FaultRack, client: GoBgp) -> None:
    client.stop()
    rack.extra.remove(client)


def test_max_prefixes_restart_cuts_off_without_churn_at_the_tor(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """A client over max_prefixes (action restart): Cease/Maximum Number of Prefixes Reached,
    its routes withdrawn from the ToR once; for the idle hold every new connection from it is
    refused at once (it is a BIRD: it redials within seconds) and the ToR receives no UPDATE at
    all. Back under its limit, it is accepted once the hold ends."""
    rack = clean_rack
    first = ["198.51.100.200/32", "198.51.100.201/32"]
    more = ["198.51.100.202/32", "198.51.100.203/32"]
    assert len(first) <= NOISY_MAX < len(first) + len(more)
    with_first = table_of([*BASELINE_NODE_ROUTES, *first])
    cutoffs = rack.metric("bgpmux_max_prefixes_cutoffs_total", client="noisy")
    noisy = noisy_bird(rack.node, first)
    rack.extra.append(noisy)
    try:
        noisy.start()
        rack.converge(with_first, time.monotonic(), 30, "noisy's routes")
        rack.bird_announce(noisy, [*first, *more])
        breached = time.monotonic()
        withdrawn = rack.converge(baseline(), breached, 15, "noisy cut off")
        assert rack.metric("bgpmux_max_prefixes_cutoffs_total", client="noisy") == cutoffs + 1
        assert rack.metric("bgpmux_notifications_sent_total", peer="noisy", code="6",
                           subcode="1") >= 1  # fmt: skip
        imports, refused = rack.tor_imports(), rack.metric("bgpmux_connections_refused_total")
        # The hold: any connection for noisy gets the NOTIFICATION at once, whatever it sends.
        probe = raw_session(rack.node, NOISY_PORT, [["open", NODE_AS], ["read_until_close", 3]])
        assert probe["closed"] and [n[:2] for n in probe["notifications"]] == [[6, 1]], probe
        assert 2 not in probe["received"], probe  # no UPDATE, not even End-of-RIB
        rack.bird_announce(noisy, first)  # under its limit again; it keeps redialling
        hold_end = breached + NOISY_RESTART - 0.3
        while time.monotonic() < hold_end:
            got = rack.tor_table()
            assert got == baseline(), f"churn during the hold: {diff(got, baseline())}"
            assert rack.tor_imports() == imports, "the ToR received UPDATEs during the hold"
            time.sleep(0.2)
        knocks = rack.metric("bgpmux_connections_refused_total") - refused
        back = rack.converge(with_first, breached, NOISY_RESTART + 20, "noisy back after hold")
    finally:
        noisy.stop()
        rack.extra.remove(noisy)
    record(results, rack, "max-prefix restart", withdrawn=withdrawn, back=back,
           refused_during_hold=knocks)  # fmt: skip
    assert knocks >= 2, "noisy did not redial during its hold (only the probe was refused)"
    assert NOISY_RESTART - 0.3 <= back < NOISY_RESTART + 10


def test_max_prefixes_block_keeps_the_session_and_what_fits(
    clean_rack: FaultRack, results: list[Measured]
) -> None:
    """A client over max_prefixes (action block): the new prefixes beyond the limit are
    dropped (counted in bgpmux_max_prefixes_blocked_total), the session stays up, and what
    fits stays at the ToR unchanged: the ToR receives no UPDATE at all."""
    rack = clean_rack
    prefixes = [f"198.51.100.{210 + i}/32" for i in range(BLOCKER_MAX + 2)]
    fits, beyond = prefixes[:BLOCKER_MAX], prefixes[BLOCKER_MAX:]
    blocked = rack.metric("bgpmux_max_prefixes_blocked_total", client="blocker")
    blocker = start_gobgp(rack, "blocker", BLOCKER_AS, BLOCKER_PORT, BLOCKER_API_PORT)
    try:
        rack.sessions_up("blocker")
        for prefix in fits:
            blocker.add_route(prefix)
        with_fits = table_of([*BASELINE_NODE_ROUTES, *fits])
        rack.converge(with_fits, time.monotonic(), 20, "blocker's routes")
        imports = rack.tor_imports()
        flaps = rack.metric("bgpmux_session_flaps_total", peer="blocker", role="client")
        over = time.monotonic()
        for prefix in beyond:
            blocker.add_route(prefix)
        wait_until(
            lambda: rack.metric("bgpmux_max_prefixes_blocked_total", client="blocker")
            == blocked + len(beyond),
            timeout=10, interval=0.1, what="blocker's extra prefixes blocked",
            logs_of=rack.daemons,
        )  # fmt: skip
        dropped = time.monotonic() - over
        rack.hold_steady(with_fits, 2.0, "blocker over its limit")
        assert rack.tor_imports() == imports, "the ToR received UPDATEs"
        assert set(rack.mux.routes(client="blocker")) == set(fits)
        assert rack.mux_state("blocker") == "ESTABLISHED"
        assert rack.metric("bgpmux_session_flaps_total", peer="blocker", role="client") == flaps
        assert rack.metric("bgpmux_max_prefixes_cutoffs_total", client="blocker") == 0
    finally:
        stop_gobgp(rack, blocker)
    record(results, rack, "max-prefix block", blocked=dropped)
