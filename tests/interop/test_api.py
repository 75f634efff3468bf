"""The API and the CLI against a running bgpmux on a real rack: a gobgpd ToR, a Calico-role BIRD
and a MetalLB-role FRR (e2e_rack.py), namespaces tagged "ap".

Every RPC is called over the unix socket; the event stream sees MetalLB's session go down and
up and a reload; the CLI's JSON contract holds; ``routes`` shows what the ToR was sent (next hop
the node, AS path as the ToR sees it) and ``--rejected`` the prefix MetalLB's accept list
refused.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from bgpmux.api.client import APIError

from .e2e_rack import (
    CALICO_V4,
    METALLB_OUTSIDE,
    METALLB_V4,
    NODE_AS,
    NODE_V4,
    TOR_AS,
    TOR_ROUTE_V4,
    TOR_V4,
    Rack,
    RackKey,
    build_rack,
    run_bgpmux,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]
API_TCP = "127.0.0.1:50052"
CONTRACT_STATES = {"IDLE", "CONNECT", "ACTIVE", "OPENSENT", "OPENCONFIRM", "ESTABLISHED"}


@pytest.fixture(scope="module")
def rack() -> Iterator[Rack]:
    built = build_rack(RackKey("exabgp", "gobgp"), tag="ap", api={"listen_tcp": API_TCP})
    try:
        yield built
    finally:
        built.close()


def cli(rack: Rack, *args: str) -> Any:
    """``bgpmux ARGS -o json --api unix:...`` in the node's namespace, decoded."""
    done = run_bgpmux(rack.node, [*args, "-o", "json", "--api", f"unix:{rack.mux.api_path}"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_socket_is_0600(rack: Rack) -> None:
    info = os.lstat(rack.mux.api_path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600


def test_peers_and_one_peer(rack: Rack) -> None:
    with rack.mux.client() as api:
        peers = {p["name"]: p for p in api.peers()}
        tor = api.peer("tor")
        with pytest.raises(APIError, match="no peer named 'nope'"):
            api.peer("nope")
    for name in ("calico", "metallb"):
        assert (peers[name]["role"], peers[name]["state"]) == ("client", "ESTABLISHED")
    assert (tor["role"], tor["state"], tor["address"], tor["asn"]) == (
        "upstream", "ESTABLISHED", TOR_V4, TOR_AS)  # fmt: skip
    assert tor["uptime"] is not None and tor["since"] <= time.time()
    assert tor["received"] >= 1  # the ToR's own route
    assert tor["advertised"] >= 2
    metallb = peers["metallb"]
    assert metallb["rejected"] == 1
    assert metallb["rejected_by_reason"] == {"not_in_accept_list": 1}
    assert metallb["received"] == metallb["accepted"] + 1


def test_routes_as_sent_match_the_tor(rack: Rack) -> None:
    with rack.mux.client() as api:
        rows = api.routes(upstream="tor", prefix=CALICO_V4)
        received = api.routes(received_from="tor", family="ipv4")
        refused = api.routes(rejected=True)
        with pytest.raises(APIError, match="no upstream named 'nope'"):
            api.routes(upstream="nope")
    [row] = rows
    at_tor = rack.tor_route(CALICO_V4)
    assert at_tor is not None
    # As sent: the node's address and AS, not Calico's 127.0.0.1 / iBGP empty path.
    assert (row["next_hop"], row["as_path"]) == (NODE_V4, [NODE_AS])
    assert (at_tor.next_hop, at_tor.as_path) == (row["next_hop"], row["as_path"])
    assert row["client"] == "calico" and row["upstream"] == "tor"
    assert [r["prefix"] for r in received] == [TOR_ROUTE_V4]
    assert [(r["client"], r["prefix"], r["reason"]) for r in refused] == [
        ("metallb", METALLB_OUTSIDE, "not_in_accept_list")
    ]


def test_event_stream_sees_a_session_go_down_and_up_and_a_reload(rack: Rack) -> None:
    seen: list[dict[str, Any]] = []
    ready, done = threading.Event(), threading.Event()

    def watch() -> None:
        with rack.mux.client() as api:
            events = api.events(timeout=60)
            ready.set()
            for event in events:
                seen.append(event)
                if event["type"] == "reload":
                    break
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(10)
    time.sleep(0.5)  # the stream is open at the server
    rack.metallb.stop()
    rack.wait_tor_lacks(METALLB_V4)
    rack.metallb.start()
    rack.wait_sessions("metallb", timeout=30)
    rack.wait_baseline(timeout=30)
    with rack.mux.client() as api:
        assert api.reload() == {"ok": True, "errors": [], "needs_restart": []}
    assert done.wait(30), seen
    sessions = [(e["peer"], e["state"]) for e in seen if e["type"] == "session"]
    assert sessions[:2] == [("metallb", "IDLE"), ("metallb", "ESTABLISHED")], seen
    withdrawn = [e for e in seen if e["type"] == "route" and METALLB_V4 in e["withdrawn"]]
    assert withdrawn and withdrawn[0]["direction"] == "to_upstreams"
    assert seen[-1] == {**seen[-1], "type": "reload", "ok": True}


def test_reload_reports_each_error_with_its_field(rack: Rack) -> None:
    path = rack.mux.config_path
    good = path.read_text()
    bad = yaml.safe_load(good)
    bad["upstreams"][0]["asn"] = "not-a-number"
    path.write_text(yaml.safe_dump(bad))
    try:
        with rack.mux.client() as api:
            result = api.reload()
    finally:
        path.write_text(good)
    assert result["ok"] is False
    assert [e["field"] for e in result["errors"]] == ["upstreams[0].asn"]
    done = run_bgpmux(rack.node, ["reload", "--api", f"unix:{rack.mux.api_path}"])
    assert done.returncode == 0 and done.stdout.strip() == "reloaded", done


def test_cli_json_contract(rack: Rack) -> None:
    status = cli(rack, "status")
    assert isinstance(status, list) and {p["name"] for p in status} >= {"tor", "calico", "metallb"}
    for peer in status:
        assert peer["role"] in ("client", "upstream") and peer["state"] in CONTRACT_STATES
        assert isinstance(peer["asn"], int), peer
        # null only for a client that names no peer_address and never connected
        assert isinstance(peer["address"], str) or peer["state"] == "IDLE", peer
    routes = cli(rack, "routes")
    for row in routes:
        assert isinstance(row["as_path"], list) and all(isinstance(a, int) for a in row["as_path"])
        assert row["med"] is None or isinstance(row["med"], int)
        assert all(isinstance(c, str) and c.count(":") == 1 for c in row["communities"])
        assert all(c.count(":") == 2 for c in row["large_communities"])
    by_prefix = {r["prefix"]: r for r in routes if r["upstream"] == "tor"}
    assert by_prefix[CALICO_V4]["next_hop"] == NODE_V4
    assert by_prefix[METALLB_V4]["as_path"] == [NODE_AS]  # MetalLB's 64514 is not passed on
    assert METALLB_OUTSIDE not in by_prefix
    rejected = cli(rack, "routes", "--rejected")
    assert [(r["client"], r["prefix"], r["reason"]) for r in rejected] == [
        ("metallb", METALLB_OUTSIDE, "not_in_accept_list")
    ]
    table = run_bgpmux(rack.node, ["routes", "--client", "metallb",
                                   "--api", f"unix:{rack.mux.api_path}"]).stdout  # fmt: skip
    assert "rejected: not_in_accept_list" in table and "[" not in table
    over_tcp = run_bgpmux(rack.node, ["status", "-o", "yaml", "--api", API_TCP])
    assert over_tcp.returncode == 0, over_tcp.stderr
    assert {p["name"] for p in yaml.safe_load(over_tcp.stdout)} == {p["name"] for p in status}


def test_cli_errors_are_one_line(rack: Rack) -> None:
    missing = rack.mux.api_path.with_name("absent.sock")
    done = run_bgpmux(rack.node, ["status", "--api", f"unix:{missing}"])
    assert done.returncode == 1
    assert done.stderr == f"bgpmux: no API socket at {missing}: is bgpmux running?\n"
