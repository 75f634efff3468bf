from __future__ import annotations

import json
import socket
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bgpmux.cli import main
from bgpmux.config import Config

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


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, list[Any], list[Any]]]:
    """A one-connection-at-a-time fake API: records requests, answers with queued replies."""
    path = tmp_path / "api.sock"
    requests: list[Any] = []
    replies: list[Any] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                requests.append(json.loads(f.readline()))
                f.write(json.dumps(replies.pop(0)).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, requests, replies
    server.close()


def test_status_table(
    api: tuple[Path, list[Any], list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, requests, replies = api
    replies.append(
        {
            "peers": [
                {
                    "peer": "tor",
                    "role": "upstream",
                    "state": "established",
                    "uptime": 3725,
                    "prefixes": 3,
                },
                {
                    "peer": "calico",
                    "role": "client",
                    "state": "active",
                    "uptime": None,
                    "prefixes": 0,
                },
            ]
        }
    )
    assert main(["status", "--api", f"unix:{path}"]) == 0
    assert requests == [{"cmd": "status"}]
    assert capsys.readouterr().out.splitlines() == [
        "PEER    ROLE      STATE        UPTIME    PREFIXES",
        "tor     upstream  established  1h02m05s  3",
        "calico  client    active       -         0",
    ]


def test_routes_request_and_error_reply(
    api: tuple[Path, list[Any], list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, requests, replies = api
    replies.append({"routes": [{"prefix": "10.244.1.0/26", "next_hop": "10.0.0.2"}]})
    replies.append({"error": "no client named 'x'"})
    assert main(["routes", "--client", "calico", "--api", f"unix:{path}"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "PREFIX         NEXT_HOP",
        "10.244.1.0/26  10.0.0.2",
    ]
    assert main(["routes", "--client", "x", "--api", f"unix:{path}"]) == 1
    assert capsys.readouterr().err == "bgpmux: no client named 'x'\n"
    assert requests == [
        {"cmd": "routes", "client": "calico", "upstream": None},
        {"cmd": "routes", "client": "x", "upstream": None},
    ]


def test_api_socket_from_config(
    tmp_path: Path, api: tuple[Path, list[Any], list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, requests, replies = api
    replies.append({"routes": []})
    config = write(tmp_path, GOOD + f"api: {{listen: 'unix:{path}'}}\n")
    assert main(["routes", "--upstream", "tor", "-c", str(config)]) == 0
    assert requests == [{"cmd": "routes", "client": None, "upstream": "tor"}]
    assert json.loads(capsys.readouterr().out) == {"routes": []}


def test_status_without_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "absent.sock"
    assert main(["status", "--api", f"unix:{sock}"]) == 1
    assert capsys.readouterr().err == f"bgpmux: no API socket at {sock}: is bgpmux running?\n"


def test_routes_client_and_upstream_are_exclusive() -> None:
    with pytest.raises(SystemExit):
        main(["routes", "--client", "a", "--upstream", "b"])
