"""The ExaBGP engine's pure parts (config, commands, JSON), its event handling, the relay, and
the FakeEngine. The real ExaBGP is exercised in tests/integration/test_exabgp_engine.py."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bgpmux.config import Config, parse_config
from bgpmux.engines import exabgp_text as text
from bgpmux.engines.exabgp import ExaBGPEngine
from bgpmux.engines.exabgp_graceful import down_reason
from bgpmux.engines.exabgp_session import MessageSeen
from bgpmux.engines.fake import AnnounceCall, FakeEngine
from bgpmux.session import DownReason, State
from bgpmux.wire import GracefulRestart
from bgpmux.wire.attributes import PathAttributes
from bgpmux.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpmux.wire.prefix import prefix_from_str

BASE = """
node:
  asn: 64512
  router_id: 10.0.0.2
  address: 10.0.0.2
  {v6}
upstreams:
  - name: tor-a
    address: 10.0.0.1
    asn: 65000
  {more}
clients:
  - name: calico
    listen: 127.0.0.1:1790
    asn: 64512
"""


def config(v6: str = "", more: str = "") -> Config:
    return parse_config(BASE.replace("{v6}", v6).replace("{more}", more), env={})


def p(*texts: str) -> list[bytes]:
    return [prefix_from_str(t)[1] for t in texts]


# ------------------------------------------------------------------------ configuration

RELAY = ["/venv/bin/python", "-m", "bgpmux.engines.exabgp_relay", "/run/x/api.sock"]


def test_config_one_active_neighbor_with_manual_eor_and_gr() -> None:
    out = text.exabgp_config(config(), RELAY)
    assert out.startswith(
        "process bgpmux {\n"
        "    run /venv/bin/python -m bgpmux.engines.exabgp_relay /run/x/api.sock;\n"
        "    encoder json;\n"
        "    respawn false;\n"
        "}\n"
    )
    block = out[out.index("neighbor 10.0.0.1 {") :]
    for line in (
        'description "tor-a";',
        "router-id 10.0.0.2;",
        "local-address 10.0.0.2;",
        "local-as 64512;",
        "peer-as 65000;",
        "hold-time 90;",
        "passive false;",
        "manual-eor true;",
        "adj-rib-out true;",
        "family {\n        ipv4 unicast;\n    }",
        "capability {\n        extended-message disable;\n        route-refresh enable;\n"
        "        graceful-restart 120;\n    }",
        "api {\n        processes [ bgpmux ];\n        neighbor-changes;\n"
        "        receive { parsed; update; open; keepalive; refresh; }\n"
        "        send { parsed; open; keepalive; notification; }\n    }",
    ):
        assert f"    {line}" in block, line
    assert "connect" not in block and "md5" not in block and "ipv6" not in block


def test_config_port_password_v6_and_no_gr(tmp_path: Path) -> None:
    secret = tmp_path / "tor.password"
    secret.write_text("s3cret\n")
    more = f"""
  - name: tor-b
    address: "2001:db8:ff::1"
    asn: 65001
    port: 1179
    hold_time: 30
    graceful_restart: 0
    password_file: {secret}
"""
    out = text.exabgp_config(config(v6='address_v6: "2001:db8:ff::2"', more=more), RELAY)
    a, b = out.split("neighbor 10.0.0.1 {")[1].split("neighbor 2001:db8:ff::1 {")
    assert "        ipv6 unicast;" in a and "graceful-restart 120" in a
    assert "    local-address 2001:db8:ff::2;" in b
    assert "    connect 1179;" in b
    assert '    md5-password "s3cret";' in b
    assert "    hold-time 30;" in b
    assert "graceful-restart" not in b


def test_config_refuses_a_password_that_would_break_it(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text('a";b')
    more = f"""
  - name: tor-b
    address: 10.0.0.5
    asn: 65001
    password_file: {secret}
"""
    with pytest.raises(ValueError):
        text.exabgp_config(config(more=more), RELAY)


def test_env_and_env_file() -> None:
    env = text.exabgp_env(config())
    assert env["exabgp_reactor_speed"] == "0.1"
    assert env["exabgp_log_level"] == "WARNING"
    assert env["exabgp_daemon_daemonize"] == "false"
    assert env["exabgp_daemon_drop"] == "false"
    assert env["exabgp_api_respawn"] == "false"
    assert env["exabgp_tcp_bind"] == ""
    assert env["exabgp_api_cli"] == "false"
    ini = text.exabgp_env_file(env)
    assert "[exabgp.reactor]\nspeed = '0.1'\n" in ini
    assert "[exabgp.tcp]\nbind = ''\n" in ini


def test_engine_files(tmp_path: Path) -> None:
    engine = ExaBGPEngine(config(), RecordingEvents(), tmp_path / "wd")
    engine.write_config()
    assert (tmp_path / "wd" / "exabgp.conf").stat().st_mode & 0o777 == 0o600
    assert engine.command()[-2:] == ["server", str(tmp_path / "wd" / "exabgp.conf")]
    assert engine.relay_command()[1:3] == ["-m", "bgpmux.engines.exabgp_relay"]
    assert engine.relay_command()[-1] == "--stop-parent"
    assert not any(k.startswith("exabgp") and k not in text.exabgp_env(engine.config)
                   for k in engine.environment())  # fmt: skip


# ------------------------------------------------------------------------ commands

FULL = PathAttributes(
    origin=1,
    as_path=((2, (64512, 64513)), (1, (64600, 64601)), (3, (1,))),
    med=50,
    local_pref=200,
    atomic_aggregate=True,
    aggregator=(64512, bytes([10, 0, 0, 2])),
    communities=((64512 << 16) | 100, 0xFFFFFF01),
    large_communities=((64512, 1, 2), (4200000000, 3, 4)),
    other=((0xE0, 0x99, b"\xc0\xff\xee"), (0xD0, 0x9A, b"")),
)


def test_every_attribute_kind() -> None:
    assert text.format_attributes(FULL) == (
        "origin egp as-path [ 64512 64513 ] ( 64600 64601 ) med 50 local-preference 200"
        " atomic-aggregate aggregator ( 64512:10.0.0.2 )"
        " community [ 64512:100 65535:65281 ] large-community [ 64512:1:2 4200000000:3:4 ]"
        " attribute [ 0x99 0xe0 0xc0ffee ] attribute [ 0x9a 0xe0 0x ]"
    )


def test_minimal_attributes_leave_the_as_path_to_exabgp() -> None:
    assert text.format_attributes(PathAttributes()) == "origin igp"
    assert text.format_attributes(PathAttributes(origin=2)) == "origin incomplete"


def test_announce_to_two_peers() -> None:
    attrs = PathAttributes(as_path=((2, (64512,)),))
    lines = text.format_announce(
        ["10.0.0.1", "10.0.0.5"], IPV4_UNICAST, attrs, bytes([10, 0, 0, 2]),
        p("198.51.100.0/24", "203.0.113.7/32"),
    )  # fmt: skip
    assert lines == [
        "neighbor 10.0.0.1 , neighbor 10.0.0.5 announce attributes origin igp as-path [ 64512 ]"
        " next-hop 10.0.0.2 nlri 198.51.100.0/24 203.0.113.7/32"
    ]


def test_ipv6_announce_withdraw_and_eor() -> None:
    nh = bytes.fromhex("20010db800ff00000000000000000002") + bytes(16)  # global + link-local
    lines = text.format_announce(
        ["2001:db8:ff::1"], IPV6_UNICAST, PathAttributes(), nh, p("2001:db8:100::/48")
    )
    assert lines == [
        "neighbor 2001:db8:ff::1 announce attributes origin igp next-hop 2001:db8:ff::2"
        " nlri 2001:db8:100::/48"
    ]
    assert text.format_withdraw(["10.0.0.1"], IPV6_UNICAST, p("2001:db8:100::/48")) == [
        "neighbor 10.0.0.1 withdraw attributes nlri 2001:db8:100::/48"
    ]
    assert text.format_end_of_rib("10.0.0.1", IPV4_UNICAST) == (
        "neighbor 10.0.0.1 announce eor ipv4 unicast"
    )
    assert text.format_end_of_rib("10.0.0.1", IPV6_UNICAST).endswith("eor ipv6 unicast")


def test_lines_are_split_below_the_limit() -> None:
    prefixes = [prefix_from_str(f"10.{i >> 8}.{i & 255}.0/24")[1] for i in range(3000)]
    lines = text.format_withdraw(["10.0.0.1"], IPV4_UNICAST, prefixes, limit=1000)
    assert len(lines) > 30
    assert all(len(line) <= 1000 for line in lines)
    assert all(line.startswith("neighbor 10.0.0.1 withdraw attributes nlri ") for line in lines)
    words = [w for line in lines for w in line.split()[5:]]
    assert words == [f"10.{i >> 8}.{i & 255}.0/24" for i in range(3000)]
    # the default: 100,000 /32s in lines under 500 KiB
    many = [
        prefix_from_str(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}/32")[1] for i in range(100_000)
    ]
    big = text.format_announce(["10.0.0.1"], IPV4_UNICAST, FULL, bytes(4), many)
    assert 2 <= len(big) <= 5
    assert all(len(line) <= text.MAX_LINE for line in big)
    assert sum(len(line.split(" nlri ")[1].split()) for line in big) == 100_000


# ------------------------------------------------------------------------ messages
# Captured from ExaBGP 5.0.15 (api.compact=true) facing gobgpd 3.10.

HEAD = (
    '{ "exabgp": "5.0.0", "time": 1795677146.5473986, "host" : "vm", "pid" : 10013, "ppid" : 1,'
    ' "counter": 1, "type": "%s", "neighbor": { "address": { "local": "10.0.0.2", "peer":'
    ' "10.0.0.1" }, "asn": { "local": 64512, "peer": 65000 }, "router-id": "10.0.0.2" , '
)
CONNECTED = HEAD % "state" + '"state": "connected" } }'
UP = HEAD % "state" + '"state": "up" } }'
# shaped as ExaBGP's JSON encoder writes it (reactor/api/response/json.py, down())
DOWN = HEAD % "state" + '"state": "down", "reason": "peer reset, message [closing] error[]" } }'
UPDATE_FULL = HEAD % "update" + (
    '"direction": "receive", "message": { "update": { "attribute": { "origin": "egp",'
    ' "as-path": {"0": {"element": "as-sequence", "value": [65000]}}, "med": 10,'
    ' "aggregator": "65000:10.0.0.1", "community": [ [ 65000, 1 ], [ 65000, 2 ] ],'
    ' "large-community": [ [ 65000, 1 , 2 ] ] }, "announce": { "ipv4 unicast": { "10.0.0.1":'
    ' [ "203.0.113.0/24" ] } } } } } }'
)
UPDATE_SET = HEAD % "update" + (
    '"direction": "receive", "message": { "update": { "attribute": { "origin": "incomplete",'
    ' "as-path": {"0": {"element": "as-sequence", "value": [65000, 65001]}, "1": {"element":'
    ' "as-set", "value": [65002, 65003]}} }, "announce": { "ipv4 unicast": { "10.0.0.1": '
    '[ "198.51.100.0/24" ] } } } } } }'
)
UPDATE_AS4 = HEAD % "update" + (
    '"direction": "receive", "message": { "update": { "attribute": { "origin": "incomplete",'
    ' "as-path": {"0": {"element": "as-sequence", "value": [65000, 4200000000, 65001]}} },'
    ' "announce": { "ipv4 unicast": { "10.0.0.1": [ "198.51.100.0/25" ] } } } } } }'
)
UPDATE_V6 = HEAD % "update" + (
    '"direction": "receive", "message": { "update": { "attribute": { "origin": "incomplete",'
    ' "as-path": {"0": {"element": "as-sequence", "value": [65000]}}, "community": [ [ 65000,'
    ' 3 ] ] }, "announce": { "ipv6 unicast": { "2001:db8:ff::1": [ "2001:db8:10::/48" ] } } } } } }'
)
WITHDRAW = HEAD % "update" + (
    '"direction": "receive", "message": { "update": { "withdraw": { "ipv4 unicast": [ '
    '"203.0.113.128/25" ] } } } } }'
)
WITHDRAW_V6 = HEAD % "update" + (
    '"direction": "receive", "message": { "update": { "withdraw": { "ipv6 unicast": [ '
    '"2001:db8:10::/48" ] } } } } }'
)
EOR = HEAD % "update" + (
    '"direction": "receive", "message": { "eor": { "afi" : "ipv4", "safi" : "unicast" } } } }'
)
SHUTDOWN = (
    '{ "exabgp": "5.0.0", "time": 1.0, "host" : "vm", "pid" : 1, "ppid" : 1, "counter": 9,'
    ' "type": "notification", "notification": "shutdown"}'
)


def test_state_messages() -> None:
    assert text.parse_message(CONNECTED) == text.StateChange("10.0.0.1", "connected")
    assert text.parse_message(UP) == text.StateChange("10.0.0.1", "up")
    down = text.parse_message(DOWN)
    assert isinstance(down, text.StateChange) and down.state == "down" and "reset" in down.reason
    assert text.parse_message(SHUTDOWN) == text.Shutdown()


def test_update_with_every_attribute_gobgp_sends() -> None:
    msg = text.parse_message(UPDATE_FULL)
    assert isinstance(msg, text.RoutesReceived) and msg.peer == "10.0.0.1"
    [(family, attrs, next_hop, prefixes)] = msg.announced
    assert family == IPV4_UNICAST and next_hop == bytes([10, 0, 0, 1])
    assert prefixes == p("203.0.113.0/24")
    assert attrs == PathAttributes(
        origin=1,
        as_path=((2, (65000,)),),
        med=10,
        aggregator=(65000, bytes([10, 0, 0, 1])),
        communities=((65000 << 16) | 1, (65000 << 16) | 2),
        large_communities=((65000, 1, 2),),
    )


def test_update_as_set_as4_and_ipv6() -> None:
    msg = text.parse_message(UPDATE_SET)
    assert isinstance(msg, text.RoutesReceived)
    assert msg.announced[0][1].as_path == ((2, (65000, 65001)), (1, (65002, 65003)))
    assert msg.announced[0][1].origin == 2
    msg = text.parse_message(UPDATE_AS4)
    assert isinstance(msg, text.RoutesReceived)
    assert msg.announced[0][1].as_path == ((2, (65000, 4200000000, 65001)),)
    msg = text.parse_message(UPDATE_V6)
    assert isinstance(msg, text.RoutesReceived)
    [(family, attrs, next_hop, prefixes)] = msg.announced
    assert family == IPV6_UNICAST
    assert next_hop == bytes.fromhex("20010db800ff00000000000000000001")
    assert prefixes == p("2001:db8:10::/48")
    assert attrs.communities == ((65000 << 16) | 3,)


def test_withdraws_and_eor() -> None:
    msg = text.parse_message(WITHDRAW)
    assert isinstance(msg, text.RoutesReceived)
    assert msg.withdrawn == [(IPV4_UNICAST, p("203.0.113.128/25"))] and not msg.announced
    msg = text.parse_message(WITHDRAW_V6)
    assert isinstance(msg, text.RoutesReceived)
    assert msg.withdrawn == [(IPV6_UNICAST, p("2001:db8:10::/48"))]
    assert text.parse_message(EOR) == text.EndOfRib("10.0.0.1", IPV4_UNICAST)


def test_non_compact_prefixes_and_unknown_attributes() -> None:
    attrs = {
        "origin": "igp",
        "as-path": [65000, 65010],
        "local-preference": 120,
        "atomic-aggregate": True,
        "extended-community": [{"value": 0x0002FDE800000064, "string": "target:65000:100"}],
        "attribute-0x99-0xE0": "0xc0ffee",
        "attribute-0x9B-0x80": "0x01",  # optional non-transitive: not passed on
    }
    update = {
        "attribute": attrs,
        "announce": {"ipv4 unicast": {"10.0.0.1": [{"nlri": "10.1.0.0/16"}]}},
    }
    msg = text._routes("10.0.0.1", update)
    [(_family, got, _nh, prefixes)] = msg.announced
    assert prefixes == p("10.1.0.0/16")
    assert got.as_path == ((2, (65000, 65010)),)
    assert got.local_pref == 120 and got.atomic_aggregate
    assert got.other == (
        (0xE0, 16, bytes.fromhex("0002fde800000064")),
        (0xE0, 0x99, b"\xc0\xff\xee"),
    )


def test_garbage_raises_value_error() -> None:
    with pytest.raises(ValueError):
        text.parse_message("done?")


# ------------------------------------------------------------------------ engine events


class RecordingEvents:
    """An ``UpstreamEvents`` that records every report as (method, args)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, name: str, *args: Any) -> None:
        self.posts.append((name, args))

    def established(self, *args: Any) -> None:
        self._record("established", *args)

    def down(self, *args: Any) -> None:
        self._record("down", *args)

    def routes(self, *args: Any) -> None:
        self._record("routes", *args)

    def withdrawn(self, *args: Any) -> None:
        self._record("withdrawn", *args)

    def end_of_rib(self, *args: Any) -> None:
        self._record("end_of_rib", *args)

    def route_refresh(self, *args: Any) -> None:
        self._record("route_refresh", *args)

    def handle_pending(self) -> None:
        pass

    def congested(self) -> bool:
        return False

    def when_drained(self, callback: Any) -> None:
        callback()


def test_engine_turns_messages_into_upstream_events(tmp_path: Path) -> None:
    events = RecordingEvents()
    engine = ExaBGPEngine(config(), events, tmp_path)
    for line, now in ((UPDATE_FULL, 0.5), (CONNECTED, 1), (UP, 2), (UPDATE_FULL, 3),
                      (WITHDRAW, 4), (EOR, 5)):  # fmt: skip
        message = text.parse_message(line)
        if message is not None:
            engine._handle(message, now)
    names = [name for name, _args in events.posts]
    assert names == ["established", "routes", "withdrawn", "end_of_rib"]  # nothing before up
    # no OPEN seen: no graceful restart, families unknown
    assert events.posts[0][1] == ("tor-a", frozenset(), None)
    _name, (upstream, family, _attrs, nh, prefixes) = events.posts[1]
    assert (upstream, family, nh, prefixes) == ("tor-a", IPV4_UNICAST, bytes([10, 0, 0, 1]),
                                                p("203.0.113.0/24"))  # fmt: skip
    assert engine.status()[0].state is State.ESTABLISHED
    engine._handle(text.StateChange("10.0.0.1", "down", "hold timer"), 6)
    engine._handle(text.StateChange("10.0.0.1", "down", "again"), 7)
    assert [n for n, _a in events.posts].count("down") == 1
    assert engine.status()[0].state is State.IDLE
    engine._handle(text.StateChange("10.9.9.9", "up"), 8)  # not ours: ignored
    assert len(events.posts) == 5


def test_engine_queues_commands_by_upstream_address(tmp_path: Path) -> None:
    engine = ExaBGPEngine(config(), RecordingEvents(), tmp_path)
    engine.announce(
        ["tor-a"], IPV4_UNICAST, PathAttributes(), bytes([10, 0, 0, 2]), p("10.1.0.0/16")
    )
    engine.withdraw(["tor-a"], IPV4_UNICAST, p("10.1.0.0/16"))
    engine.end_of_rib("tor-a", IPV4_UNICAST)
    engine.announce([], IPV4_UNICAST, PathAttributes(), bytes(4), p("10.1.0.0/16"))  # nobody
    assert list(engine._queue) == [
        "neighbor 10.0.0.1 announce attributes origin igp next-hop 10.0.0.2 nlri 10.1.0.0/16",
        "neighbor 10.0.0.1 withdraw attributes nlri 10.1.0.0/16",
        "neighbor 10.0.0.1 announce eor ipv4 unicast",
    ]


# ------------------------------------------------------------------------ relay


def test_relay_copies_both_ways_and_exits_when_bgpmux_closes(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    relay = subprocess.Popen(
        [sys.executable, "-m", "bgpmux.engines.exabgp_relay", path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        conn, _ = server.accept()
        conn.settimeout(10)
        assert relay.stdin is not None and relay.stdout is not None
        big = b'{"x": "' + b"y" * 300_000 + b'"}\n'
        relay.stdin.write(UP.encode() + b"\n" + big)
        relay.stdin.flush()
        got = b""
        while len(got) < len(UP) + 1 + len(big):
            got += conn.recv(65536)
        assert got == UP.encode() + b"\n" + big
        conn.sendall(b"neighbor 10.0.0.1 announce eor ipv4 unicast\n")
        assert relay.stdout.readline() == b"neighbor 10.0.0.1 announce eor ipv4 unicast\n"
        conn.close()
        assert relay.wait(timeout=10) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait(timeout=5)
        server.close()


# ------------------------------------------------------------------------ FakeEngine


def test_fake_engine_records_and_nets_out() -> None:
    engine = FakeEngine(["tor-a", "tor-b"])
    a1 = PathAttributes(med=1)
    a2 = PathAttributes(med=2)
    nh = bytes([10, 0, 0, 2])
    engine.announce(["tor-a", "tor-b"], IPV4_UNICAST, a1, nh, p("10.1.0.0/16", "10.2.0.0/16"))
    engine.announce(["tor-a"], IPV4_UNICAST, a2, nh, p("10.1.0.0/16"))
    engine.withdraw(["tor-a", "tor-b"], IPV4_UNICAST, p("10.2.0.0/16"))
    engine.announce(["tor-a"], IPV6_UNICAST, a1, bytes(16), p("2001:db8::/48"))
    engine.end_of_rib("tor-a", IPV4_UNICAST)
    assert len(engine.calls) == 5 and len(engine.announces) == 3 and len(engine.withdraws) == 1
    assert engine.announces[0] == AnnounceCall(
        ("tor-a", "tor-b"), IPV4_UNICAST, a1, nh, tuple(p("10.1.0.0/16", "10.2.0.0/16"))
    )
    assert engine.table(IPV4_UNICAST) == {"10.1.0.0/16": (a2, nh)}
    assert engine.table(IPV4_UNICAST, "tor-b") == {"10.1.0.0/16": (a1, nh)}
    assert engine.table(IPV6_UNICAST) == {"2001:db8::/48": (a1, bytes(16))}
    assert engine.eor_sent("tor-a", IPV4_UNICAST) and not engine.eor_sent("tor-b", IPV4_UNICAST)
    engine.clear()
    assert engine.table(IPV4_UNICAST) == {} and not engine.eors


def test_ipv6_route_listed_under_global_and_link_local_next_hops_keeps_the_global() -> None:
    line = HEAD % "update" + (
        '"direction": "receive", "message": { "update": { "attribute": { "origin": "igp", '
        '"as-path": [ 65000 ] }, "announce": { "ipv6 unicast": { '
        '"2001:db8:ff::1": [ "2001:db8:99::/48" ], "fe80::1": [ "2001:db8:99::/48" ] } } } } } }'
    )
    msg = text.parse_message(line)
    assert isinstance(msg, text.RoutesReceived)
    assert [(f, nh) for f, _a, nh, _p in msg.announced] == [
        (IPV6_UNICAST, ipaddress.ip_address("2001:db8:ff::1").packed)
    ]


def test_the_peers_families_reach_the_core_and_bound_end_of_rib(tmp_path: Path) -> None:
    """An IPv4-only upstream (issue 9): ExaBGP sends an End-of-RIB for any family it is told,
    so the engine never asks for one the peer's OPEN did not list."""
    events = RecordingEvents()
    engine = ExaBGPEngine(config(v6='address_v6: "2001:db8:ff::2"'), events, tmp_path)
    for line in (CONNECTED, OPEN_GR, UP):  # OPEN_GR: multiprotocol ipv4/unicast only
        message = text.parse_message(line)
        assert message is not None
        engine._handle(message, 1.0)
    [(name, (upstream, _stale_kept, families))] = events.posts
    assert (name, upstream, families) == ("established", "tor-a", (IPV4_UNICAST,))
    engine.end_of_rib("tor-a", IPV6_UNICAST)
    assert list(engine._queue) == []
    engine.end_of_rib("tor-a", IPV4_UNICAST)
    assert list(engine._queue) == ["neighbor 10.0.0.1 announce eor ipv4 unicast"]


def test_an_open_without_multiprotocol_carries_ipv4_only() -> None:
    message = text.parse_message(OPEN_NO_GR)
    assert isinstance(message, text.OpenReceived) and message.families == (IPV4_UNICAST,)


# ------------------------------------------------------------------------ graceful restart
# As ExaBGP 5.0.15's JSON encoder writes a received OPEN (reactor/api/response/json.py open(),
# checked on an OPEN it decoded; capability/graceful.py json() labels the F bit "restart" and
# the R bit "forwarding").

OPEN_GR = HEAD % "open" + (
    '"direction": "receive", "open": { "version": 4, "asn": 65000, "hold_time": 90, "router_id":'
    ' "10.0.0.1", "capabilities": { "1": { "name": "multiprotocol", "families": [ "ipv4/unicast"'
    ' ] }, "64": { "name": "graceful restart", "time": 60, "address-family-flags": {'
    ' "ipv4/unicast": [ "restart" ] , "ipv6/unicast": [ ] }, "restart-flags": [ "forwarding" ] '
    " } } } } }"
)
OPEN_NO_GR = HEAD % "open" + (
    '"direction": "receive", "open": { "version": 4, "asn": 65000, "hold_time": 90, "router_id":'
    ' "10.0.0.1", "capabilities": { } } } }'
)


def test_open_with_graceful_restart() -> None:
    parsed = text.parse_message(OPEN_GR)
    assert isinstance(parsed, text.OpenReceived) and parsed.open is not None
    assert dataclasses.replace(parsed, open=None) == text.OpenReceived(
        "10.0.0.1",
        GracefulRestart(60, True, False, ((IPV4_UNICAST, True), (IPV6_UNICAST, False))),
    )
    assert parsed.open.asn == 65000 and parsed.open.hold_time == 90
    parsed = text.parse_message(OPEN_NO_GR)
    assert isinstance(parsed, text.OpenReceived)
    assert dataclasses.replace(parsed, open=None) == text.OpenReceived("10.0.0.1", None)
    sent = text.parse_message(OPEN_GR.replace('"receive"', '"send"'))
    assert isinstance(sent, MessageSeen) and (sent.kind, sent.sent) == ("OPEN", True)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("closing connection", DownReason.CONNECTION_LOST),
        ("notification sent (4,0)", DownReason.HOLD_TIMER_EXPIRED),
        ("notification sent (6,3)", DownReason.PROTOCOL_ERROR),
        ("notification received (6,2)", DownReason.NOTIFICATION_RECEIVED),
        ("connection received before we could fully establish one (x)", DownReason.COLLISION),
        ("", DownReason.CONNECTION_LOST),
    ],
)
def test_down_reasons(reason: str, expected: DownReason) -> None:
    assert down_reason(reason) == expected


def feed(engine: ExaBGPEngine, *lines: str) -> None:
    for line in lines:
        message = text.parse_message(line)
        assert message is not None
        engine._handle(message, 1.0)


def down(reason: str) -> str:
    return HEAD % "state" + f'"state": "down", "reason": "{reason}" }} }}'


@pytest.mark.parametrize(
    ("reason", "stale"),
    [
        ("closing connection", (60, frozenset({IPV4_UNICAST}))),
        ("notification sent (4,0)", (60, frozenset({IPV4_UNICAST}))),
        ("notification received (6,2)", (None, None)),
    ],
)
def test_engine_reports_the_restart_time_of_a_graceful_upstream(
    tmp_path: Path, reason: str, stale: tuple[Any, Any]
) -> None:
    events = RecordingEvents()
    engine = ExaBGPEngine(config(), events, tmp_path)
    feed(engine, CONNECTED, OPEN_GR, UP, down(reason))
    assert events.posts == [
        ("established", ("tor-a", frozenset({IPV4_UNICAST}), (IPV4_UNICAST,))),
        ("down", ("tor-a", *stale)),
    ]


def test_engine_reports_every_graceful_upstream_stale_when_exabgp_ends(tmp_path: Path) -> None:
    more = "- {name: tor-b, address: 10.0.0.5, asn: 65001}"
    events = RecordingEvents()
    engine = ExaBGPEngine(config(more=more), events, tmp_path)
    feed(engine, CONNECTED, OPEN_GR, UP)
    feed(engine, UP.replace('"peer": "10.0.0.1"', '"peer": "10.0.0.5"'))  # no OPEN seen: no GR
    engine._all_down()
    assert events.posts[2:] == [
        ("down", ("tor-a", 60, frozenset({IPV4_UNICAST}))),
        ("down", ("tor-b", None, None)),
    ]


def test_engine_without_graceful_restart_offered_keeps_nothing(tmp_path: Path) -> None:
    cfg = config()
    cfg = cfg.model_copy(
        update={"upstreams": [cfg.upstreams[0].model_copy(update={"graceful_restart": 0})]}
    )
    events = RecordingEvents()
    engine = ExaBGPEngine(cfg, events, tmp_path)
    feed(engine, CONNECTED, OPEN_GR, UP, down("closing connection"))
    assert events.posts == [
        ("established", ("tor-a", frozenset(), (IPV4_UNICAST,))),
        ("down", ("tor-a", None, None)),
    ]
