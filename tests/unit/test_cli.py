from __future__ import annotations

import json
import os
import socket
import sys
import types
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from bgpmux import show
from bgpmux.cli import main
from bgpmux.config import Config
from bgpmux.v1 import events_pb2, mux_pb2_grpc, peers_pb2, routes_pb2

GOOD = """\
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2}
upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]
clients:
  - {name: calico, listen: "10.0.0.2:1790", asn: 64512, accept: ["10.244.0.0/16 le 32"]}
  - {name: metallb, listen: "127.0.0.1:1791", asn: 64514}
log: {level: warning, format: json}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bgpmux.yaml"
    path.write_text(text)
    return path


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(write(tmp_path, GOOD))]) == 0
    out, err = capsys.readouterr()
    assert out == (
        "OK: 1 upstream, 2 clients, engine exabgp\n"
        "  upstream tor: applies, at 10.0.0.1 (no node_cidrs: every node)\n"
    )
    assert err == ""


def test_check_config_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD.replace("asn: 65000", "asn: 0").replace("le 32", "le 33"))
    assert main(["check-config", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: upstreams[0].asn: Input should be greater than or equal to 1",
        f"{path}: clients[0].accept[0]: '10.244.0.0/16 le 33': need 16 <= ge <= le <= 32",
    ]


def test_check_config_checks_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "tor.password"
    text = GOOD.replace("asn: 65000}", f"asn: 65000, password_file: {missing}}}")
    path = write(tmp_path, text)
    assert main(["check-config", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: upstreams[0].password_file: cannot read {missing}")
    missing.write_text("secret")
    assert main(["check-config", "-c", str(path)]) == 0


def test_check_config_missing_variable_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BGPMUX_TEST_UNSET", raising=False)
    path = write(tmp_path, GOOD.replace("10.0.0.1", "${BGPMUX_TEST_UNSET}"))
    assert main(["check-config", "-c", str(path)]) == 1
    expected = f"{path}: line 2: environment variable BGPMUX_TEST_UNSET is not set\n"
    assert capsys.readouterr().err == expected
    assert main(["check-config", "-c", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().err


CLASHING = GOOD.replace('listen: "10.0.0.2:1790"', 'listen: "0.0.0.0:1791"') + (
    'metrics: {listen: "127.0.0.1:1791"}\n'
)
CLASH_ERRORS = [
    "clients[1].listen: 127.0.0.1:1791 clashes with clients[0].listen 0.0.0.0:1791:"
    " 0.0.0.0 takes port 1791 on every IPv4 address",
    "metrics.listen: 127.0.0.1:1791 clashes with clients[0].listen 0.0.0.0:1791:"
    " 0.0.0.0 takes port 1791 on every IPv4 address",
]


def test_check_config_refuses_listen_clashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CLASHING)
    assert main(["check-config", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"{path}: {line}" for line in CLASH_ERRORS]


def test_check_config_requires_file() -> None:
    with pytest.raises(SystemExit) as info:
        main(["check-config"])
    assert info.value.code == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bgpmux ") and out.strip() != "bgpmux"


def test_run_hands_the_config_to_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Config] = []
    paths: list[Path] = []
    fake = types.ModuleType("bgpmux.daemon")

    def run(config: Config, config_path: Path, placement: object) -> int:
        seen.append(config)
        paths.append(Path(config_path))
        return 7

    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bgpmux.daemon", fake)
    path = write(tmp_path, GOOD)
    assert main(["run", "-c", str(path)]) == 7
    assert [c.log.format for c in seen] == ["json"]
    assert paths == [path]  # kept for SIGHUP reloads


def test_run_refuses_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD + "extra: 1\n")
    assert main(["run", "-c", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: extra: Extra inputs are not permitted\n"


def test_run_refuses_listen_clashes_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = types.ModuleType("bgpmux.daemon")
    fake.run = lambda config, config_path: pytest.fail("the daemon ran")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bgpmux.daemon", fake)
    path = write(tmp_path, CLASHING)
    assert main(["run", "-c", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"{path}: {line}" for line in CLASH_ERRORS]


# --- the API client ----------------------------------------------------------------------------


class FakeMux(mux_pb2_grpc.MuxServicer):
    """Records each request; answers with the peers and routes it was given."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.peers: list[peers_pb2.Peer] = []
        self.routes: list[routes_pb2.Route] = []

    def ListPeers(self, request: Any, context: Any) -> peers_pb2.ListPeersResponse:
        self.requests.append(request)
        return peers_pb2.ListPeersResponse(peers=self.peers)

    def GetPeer(self, request: Any, context: Any) -> peers_pb2.Peer:
        self.requests.append(request)
        for peer in self.peers:
            if peer.name == request.name:
                return peer
        context.abort(grpc.StatusCode.NOT_FOUND, f"no peer named {request.name!r}")
        raise AssertionError

    def WatchEvents(self, request: Any, context: Any) -> Iterator[Any]:
        session = events_pb2.SessionEvent(
            peer="tor", role=peers_pb2.ROLE_UPSTREAM, state=peers_pb2.SESSION_STATE_IDLE
        )
        yield events_pb2.Event(time=1.0, session=session)
        yield events_pb2.Event(time=2.0, lost=4)

    def Reload(self, request: Any, context: Any) -> Any:
        error = events_pb2.ConfigFieldError(field="upstreams[0].asn", message="not an AS")
        result = events_pb2.ReloadEvent(ok=False, errors=[error])
        return events_pb2.ReloadResponse(result=result)

    def ListRoutes(self, request: Any, context: Any) -> Iterator[Any]:
        self.requests.append(request)
        if request.client == "x":
            context.abort(grpc.StatusCode.NOT_FOUND, "no client named 'x'")
        yield routes_pb2.ListRoutesResponse(routes=self.routes)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, FakeMux]]:
    path = tmp_path / "api.sock"
    fake = FakeMux()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    mux_pb2_grpc.add_MuxServicer_to_server(fake, server)
    server.add_insecure_port(f"unix:{path}")
    server.start()
    yield path, fake
    server.stop(None)


def peer(name: str, role: int, state: int, **fields: Any) -> peers_pb2.Peer:
    return peers_pb2.Peer(name=name, role=role, state=state, **fields)


PEERS = [
    peer("tor", peers_pb2.ROLE_UPSTREAM, peers_pb2.SESSION_STATE_ESTABLISHED,
         address="10.0.0.1", asn=65000, since=1_000_000.0, uptime=3725.0,
         capabilities=["ipv4-unicast", "route-refresh"], hold_time=90, keepalive=30,
         counts=peers_pb2.PrefixCounts(received=3, accepted=3, advertised=2)),
    peer("calico", peers_pb2.ROLE_CLIENT, peers_pb2.SESSION_STATE_OPENCONFIRM,
         address="127.0.0.1", asn=64514, last_error="received Hold Timer Expired",
         counts=peers_pb2.PrefixCounts(received=3, accepted=2, rejected=1,
                                       rejected_by_reason={"not_in_accept_list": 1})),
]  # fmt: skip
EXPORTED = routes_pb2.Route(
    upstream="tor", client="calico", prefix="10.244.1.0/26", family="ipv4-unicast",
    next_hop="10.0.0.2", as_path=[64512], med=10, communities=["64514:10", "64512:77"],
    large_communities=["64512:1:2"], origin="igp", best=True,
)  # fmt: skip
REFUSED = routes_pb2.Route(
    client="metallb",
    prefix="10.96.0.0/12",
    family="ipv4-unicast",
    next_hop="127.0.0.1",
    as_path=[64514],
    reason="not_in_accept_list",
)


def test_status_table(api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]) -> None:
    path, fake = api
    fake.peers = PEERS
    assert main(["status", "--api", f"unix:{path}"]) == 0
    since = show.since_text(1_000_000.0)
    assert capsys.readouterr().out.splitlines() == [
        "NAME    ROLE      ADDRESS    AS     STATE        SINCE" + " " * (len(since) - 5)
        + "  RECEIVED  ACCEPTED  REJECTED  ADVERTISED",
        f"tor     upstream  10.0.0.1   65000  ESTABLISHED  {since}  3         3         0"
        "         2",
        "calico  client    127.0.0.1  64514  OPENCONFIRM  -" + " " * (len(since) - 1)
        + "  3         2         1         0",
    ]  # fmt: skip


def test_status_json_contract(
    api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]
) -> None:
    path, fake = api
    fake.peers = PEERS
    assert main(["status", "-o", "json", "--api", f"unix:{path}"]) == 0
    peers = json.loads(capsys.readouterr().out)
    assert [{k: p[k] for k in ("name", "role", "state", "address", "asn")} for p in peers] == [
        {"name": "tor", "role": "upstream", "state": "ESTABLISHED", "address": "10.0.0.1",
         "asn": 65000},
        {"name": "calico", "role": "client", "state": "OPENCONFIRM", "address": "127.0.0.1",
         "asn": 64514},
    ]  # fmt: skip
    assert peers[0]["hold_time"] == 90 and peers[1]["hold_time"] is None
    assert peers[1]["rejected_by_reason"] == {"not_in_accept_list": 1}
    assert main(["status", "-o", "yaml", "--api", f"unix:{path}"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == peers


def test_status_peer_detail(api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]) -> None:
    path, fake = api
    fake.peers = PEERS
    assert main(["status", "calico", "--api", f"unix:{path}"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "calico"
    assert "  Address:          127.0.0.1, AS 64514" in out
    assert "  Last error:       received Hold Timer Expired" in out
    assert ("  Routes:           3 received, 2 accepted, 1 rejected (not_in_accept_list: 1), "
            "0 stale, 0 advertised") in out  # fmt: skip
    assert main(["status", "nope", "--api", f"unix:{path}"]) == 1
    assert capsys.readouterr().err == "bgpmux: no peer named 'nope'\n"


def test_routes_as_sent_and_json_contract(
    api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]
) -> None:
    path, fake = api
    fake.routes = [EXPORTED]
    assert main(["routes", "--upstream", "tor", "--prefix", "10.244.1.0/26",
                 "--api", f"unix:{path}"]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        "UPSTREAM  PREFIX         NEXT HOP  AS PATH  MED  COMMUNITIES        LARGE COMMUNITIES",
        "tor       10.244.1.0/26  10.0.0.2  64512    10   64514:10 64512:77  64512:1:2",
    ]
    assert fake.requests[-1] == routes_pb2.ListRoutesRequest(upstream="tor", prefix="10.244.1.0/26")
    assert main(["routes", "-o", "json", "--api", f"unix:{path}"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert {k: row[k] for k in ("upstream", "prefix", "next_hop", "as_path", "med",
                                 "communities", "large_communities")} == {
        "upstream": "tor", "prefix": "10.244.1.0/26", "next_hop": "10.0.0.2",
        "as_path": [64512], "med": 10, "communities": ["64514:10", "64512:77"],
        "large_communities": ["64512:1:2"],
    }  # fmt: skip


def test_routes_rejected_rows(
    api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]
) -> None:
    path, fake = api
    fake.routes = [REFUSED]
    assert main(["routes", "--rejected", "--api", f"unix:{path}"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "CLIENT   PREFIX        NEXT HOP   AS PATH  MED  COMMUNITIES  LARGE COMMUNITIES  STATUS",
        "metallb  10.96.0.0/12  127.0.0.1  64514    -    -            -                  "
        "rejected: not_in_accept_list",
    ]
    assert fake.requests[-1] == routes_pb2.ListRoutesRequest(rejected=True)
    assert main(["routes", "--client", "metallb", "-o", "json", "--api", f"unix:{path}"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["client"], row["reason"], row["med"], row["communities"]) == (
        "metallb",
        "not_in_accept_list",
        None,
        [],
    )
    assert main(["routes", "--received", "tor", "--rejected", "--api", f"unix:{path}"]) == 0
    assert fake.requests[-1] == routes_pb2.ListRoutesRequest(received_from="tor", rejected=True)
    assert "UPSTREAM" in capsys.readouterr().out


def test_routes_error_reply(api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]) -> None:
    path, _fake = api
    assert main(["routes", "--client", "x", "--api", f"unix:{path}"]) == 1
    assert capsys.readouterr().err == "bgpmux: no client named 'x'\n"


def test_api_socket_from_config(
    tmp_path: Path, api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]
) -> None:
    path, fake = api
    config = write(tmp_path, GOOD + f"api: {{listen: 'unix:{path}'}}\n")
    assert main(["routes", "--upstream", "tor", "-o", "json", "-c", str(config)]) == 0
    assert fake.requests == [routes_pb2.ListRoutesRequest(upstream="tor")]
    assert json.loads(capsys.readouterr().out) == []


def test_status_without_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "absent.sock"
    assert main(["status", "--api", f"unix:{sock}"]) == 1
    assert capsys.readouterr().err == f"bgpmux: no API socket at {sock}: is bgpmux running?\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(sock))  # left by a bgpmux that died
    assert main(["routes", "--api", f"unix:{sock}"]) == 1
    assert capsys.readouterr().err == (
        f"bgpmux: nothing is listening on {sock}: is bgpmux running?\n"
    )


def test_status_socket_closed_to_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a non-root user: /run/bgpmux is 0700, so even stat() of the socket is refused (the
    # tests run as root, who may search anything, so os.access and stat are stood in for).
    closed = tmp_path / "bgpmux"
    closed.mkdir()
    sock = closed / "api.sock"
    real_access = os.access
    monkeypatch.setattr(
        "bgpmux.api.client.os.access",
        lambda p, mode: Path(p) != closed and real_access(p, mode),
    )
    assert main(["status", "--api", f"unix:{sock}"]) == 1
    denied = "(run as root or bgpmux's user)\n"
    assert capsys.readouterr().err == f"bgpmux: permission denied on {closed} {denied}"

    def refused(self: Path, *args: Any, **kwargs: Any) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.undo()
    monkeypatch.setattr(Path, "exists", refused)
    assert main(["routes", "--api", f"unix:{sock}"]) == 1
    assert capsys.readouterr().err == f"bgpmux: permission denied on {sock} {denied}"


def test_routes_filters_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["routes", "--client", "a", "--upstream", "b"])
    assert main(["routes", "--upstream", "b", "--rejected"]) == 1
    assert "--rejected shows refused prefixes" in capsys.readouterr().err


def test_cells_never_show_python_lists() -> None:
    assert show.cell(["64514:10", "64512:77"]) == "64514:10 64512:77"
    assert show.cell([]) == "-" and show.cell(None) == "-" and show.cell(0) == "0"
    assert show.duration(3725) == "1h02m05s" and show.duration(None) == "-"


def test_events_and_reload(api: tuple[Path, FakeMux], capsys: pytest.CaptureFixture[str]) -> None:
    path, _fake = api
    assert main(["events", "--api", f"unix:{path}"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"time": 1.0, "type": "session", "peer": "tor", "role": "upstream", "state": "IDLE",
         "stale_time": 0.0},
        {"time": 2.0, "type": "lost", "lost": 4},
    ]  # fmt: skip
    assert main(["events", "-o", "yaml", "--api", f"unix:{path}"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert documents == lines
    assert main(["reload", "--api", f"unix:{path}"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "not reloaded:",
        "  upstreams[0].asn: not an AS",
    ]


def test_a_reader_that_leaves_is_no_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bgpmux routes | head``: the pipe closes under the CLI, which exits 0 quietly."""
    import os

    from bgpmux import cli

    def gone(_args: Any) -> int:
        raise BrokenPipeError

    monkeypatch.setattr(cli, "cmd_version", gone)
    saved = os.dup(1)
    try:
        assert cli.main(["version"]) == 0
    finally:
        os.dup2(saved, 1)
        os.close(saved)
