"""Malformed input on one client port must cost only that connection.

A real BIRD (Calico's shape) stays Established on 127.0.0.1:1790 throughout, while a raw speaker
inside the node namespace opens connections to the "raw" client's port (127.0.0.1:1795) and sends
garbage. Each case checks the NOTIFICATION that comes back (RFC 4271 §6, RFC 7606), that bgpmux
counts it, and that BIRD's session and routes are untouched.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bgpmux.wire import PathAttributes, Update, encode_update, prefix_from_str
from bgpmux.wire.constants import HEADER_LEN, MARKER
from lab import Announce, Bgpmux, Bird, Neighbor, wait_until

from .conftest import (
    NODE_AS,
    NODE_V4,
    Rack,
    notifications_sent,
    raw_session,
    report_from_log,
    spawn_raw,
    text_of,
)

RAW_PORT, RAW_AS = 1795, 64520
CALICO_PREFIX = "10.244.7.0/26"
LOOPBACK = "127.0.0.1"
OPEN_AND_ESTABLISH: list[list[Any]] = [["open", RAW_AS], ["established"]]
UPDATE, KEEPALIVE = 2, 4


@dataclass
class Lab:
    rack: Rack
    mux: Bgpmux
    calico: Bird


@pytest.fixture(scope="module")
def lab(rack: Rack) -> Iterator[Lab]:
    mux = rack.start_mux(
        [
            {
                "name": "calico",
                "listen": "127.0.0.1:1790",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32"],
                "hold_time": 9,
            },
            {
                "name": "raw",
                "listen": f"127.0.0.1:{RAW_PORT}",
                "asn": RAW_AS,
                "accept": ["203.0.113.0/24 le 32"],
            },
        ]
    )
    calico = Bird(
        rack.node, "calico", NODE_AS, NODE_V4,
        [Neighbor(LOOPBACK, NODE_AS, port=1790, source=NODE_V4, hold_time=9,
                  graceful_restart=120, add_path=True)],
        [Announce(CALICO_PREFIX)],
    ).start()  # fmt: skip
    mux.wait_established("calico", timeout=30)
    yield Lab(rack, mux, calico)


def calico_healthy(lab: Lab) -> None:
    wait_until(
        lambda: lab.calico.neighbor_state(LOOPBACK) == "Established",
        timeout=10,
        what="BIRD Established with bgpmux",
        logs_of=[lab.calico, lab.mux],
    )
    wait_until(
        lambda: (
            CALICO_PREFIX in lab.mux.routes(client="calico") and CALICO_PREFIX in lab.mux.routes()
        ),
        timeout=10,
        what="Calico's route in bgpmux",
        logs_of=[lab.mux],
    )


@pytest.fixture
def watched(lab: Lab) -> Iterator[Lab]:
    """Every case: BIRD Established with its route before and after, bgpmux still running and
    answering, and the raw client's connection gone."""
    calico_healthy(lab)
    session_before = lab.mux.sessions()["calico"]
    flaps_before = lab.mux.metric("bgpmux_session_flaps_total", peer="calico", role="client")
    yield lab
    assert lab.mux.running, lab.mux.log_tail()
    calico_healthy(lab)
    session_after = lab.mux.sessions()["calico"]
    assert session_after["state"] == "ESTABLISHED"
    assert session_after["uptime"] >= session_before["uptime"], "BIRD's session was reset"
    assert (
        lab.mux.metric("bgpmux_session_flaps_total", peer="calico", role="client") == flaps_before
    )
    assert lab.mux.http("/healthz")[0] == 200
    wait_until(
        lambda: lab.mux.sessions()["raw"]["state"] != "ESTABLISHED",
        timeout=10,
        what="the raw client's session ended",
        logs_of=[lab.mux],
    )


def frame(kind: int, body: bytes, *, length: int | None = None, marker: bytes = MARKER) -> bytes:
    size = HEADER_LEN + len(body) if length is None else length
    return marker + struct.pack("!HB", size, kind) + body


def update_bytes(prefixes: list[str], origin: int = 0) -> bytes:
    nlri = tuple(prefix_from_str(p)[1] for p in prefixes)
    attrs = PathAttributes(origin=origin, as_path=((2, (RAW_AS,)),), next_hop=bytes([10, 0, 0, 2]))
    return encode_update(Update(attributes=attrs, nlri=nlri))


def expect_notification(
    lab: Lab, actions: list[list[Any]], code: int, subcode: int, data: str = ""
) -> dict[str, Any]:
    """Run the raw speaker; it must get exactly NOTIFICATION (code, subcode) and a close."""
    before = notifications_sent(lab.mux, "raw", code, subcode)
    report = raw_session(lab.rack.node, RAW_PORT, [*actions, ["read_until_close", 15]])
    assert report["error"] is None, report
    assert report["notifications"] == [[code, subcode, data]], report
    assert report["closed"], report
    wait_until(
        lambda: notifications_sent(lab.mux, "raw", code, subcode) == before + 1,
        timeout=5,
        what=f"bgpmux_notifications_sent_total{{code={code},subcode={subcode}}} + 1",
        logs_of=[lab.mux],
    )
    return report


@pytest.mark.interop
def test_random_bytes_get_connection_not_synchronized(watched: Lab) -> None:
    noise = bytes(random.Random(1790).randrange(256) for _ in range(64))
    assert noise[:16] != MARKER
    report = expect_notification(watched, [["send", noise.hex()]], 1, 1)
    assert report["established"] is False


@pytest.mark.interop
@pytest.mark.parametrize("established", [False, True], ids=["before-open", "established"])
def test_truncated_header_then_close_does_not_hurt(watched: Lab, established: bool) -> None:
    lab = watched
    sent_before = lab.mux.metrics().count("bgpmux_notifications_sent_total{")
    lost_before = connection_lost_lines(lab)
    actions = OPEN_AND_ESTABLISH if established else []
    report = raw_session(lab.rack.node, RAW_PORT, [*actions, ["send", MARKER[:10].hex()]])
    assert report["error"] is None, report
    assert report["established"] is established
    # The peer went away mid-header: no NOTIFICATION to send, the session just ends.
    wait_until(
        lambda: connection_lost_lines(lab) == lost_before + 1,
        timeout=10,
        what="bgpmux noticing the closed connection",
        logs_of=[lab.mux],
    )
    assert lab.mux.metrics().count("bgpmux_notifications_sent_total{") == sent_before
    # And the port still serves the next connection.
    again = raw_session(lab.rack.node, RAW_PORT, OPEN_AND_ESTABLISH)
    assert again["error"] is None and again["established"], again


def connection_lost_lines(lab: Lab) -> int:
    return sum(
        "[peer=raw]" in line and "session down: connection_lost" in line
        for line in text_of(lab.mux.log_path).splitlines()
    )


@pytest.mark.interop
def test_bad_marker_gets_connection_not_synchronized(watched: Lab) -> None:
    bad_keepalive = frame(KEEPALIVE, b"", marker=b"\xff" * 15 + b"\xfe")
    report = expect_notification(
        watched, [*OPEN_AND_ESTABLISH, ["send", bad_keepalive.hex()]], 1, 1
    )
    assert report["established"] is True


@pytest.mark.interop
@pytest.mark.parametrize("established", [False, True], ids=["before-open", "established"])
def test_length_over_4096_gets_bad_message_length(watched: Lab, established: bool) -> None:
    """4097 octets without the extended message capability negotiated: Bad Message Length, with
    the erroneous Length field as data (RFC 4271 §6.1)."""
    oversized = frame(UPDATE, bytes(4097 - HEADER_LEN))
    assert len(oversized) == 4097
    actions = [*(OPEN_AND_ESTABLISH if established else []), ["send", oversized.hex()]]
    expect_notification(watched, actions, 1, 2, data="1001")


@pytest.mark.interop
def test_header_announcing_4097_octets_is_answered_at_once(watched: Lab) -> None:
    header_only = MARKER + struct.pack("!HB", 4097, UPDATE)
    report = raw_session(
        watched.rack.node,
        RAW_PORT,
        [*OPEN_AND_ESTABLISH, ["send", header_only.hex()], ["read_until_close", 3]],
    )
    assert report["error"] is None, report
    assert report["notifications"] == [[1, 2, "1001"]], report


@pytest.mark.interop
def test_attribute_overrunning_attribute_list_gets_malformed_attribute_list(watched: Lab) -> None:
    """AS_PATH claims 50 octets but the Total Path Attribute Length ends after 4 of them.

    bgpmux answers UPDATE Message Error / Malformed Attribute List (3, 1). RFC 4271 §6.3 names
    Malformed Attribute List for a list that cannot be parsed; RFC 7606 §4 asks for
    treat-as-withdraw here "unless some other, more severe error" applies, and bgpmux resets
    because an MP_REACH_NLRI may hide behind the break (RFC 7606 §5.3: NLRI that cannot be
    located mean session reset)."""
    origin = bytes((0x40, 1, 1, 0))
    as_path = bytes((0x40, 2, 50)) + bytes((2, 1)) + struct.pack("!H", RAW_AS)  # 4 of 50 octets
    attributes = origin + as_path
    nlri = bytes((24, 203, 0, 113))
    body = struct.pack("!H", 0) + struct.pack("!H", len(attributes)) + attributes + nlri
    actions = [*OPEN_AND_ESTABLISH, ["send", frame(UPDATE, body).hex()]]
    expect_notification(watched, actions, 3, 1)


@pytest.mark.interop
def test_total_attribute_length_overrunning_update_gets_malformed_attribute_list(
    watched: Lab,
) -> None:
    """Total Path Attribute Length past the end of the UPDATE: (3, 1), RFC 4271 §6.3."""
    attributes = bytes((0x40, 1, 1, 0))
    body = struct.pack("!H", 0) + struct.pack("!H", 200) + attributes
    actions = [*OPEN_AND_ESTABLISH, ["send", frame(UPDATE, body).hex()]]
    expect_notification(watched, actions, 3, 1)


@pytest.mark.interop
def test_malformed_origin_is_treated_as_withdraw(watched: Lab, tmp_path: Path) -> None:
    """ORIGIN 7 (RFC 7606 §7.1): no NOTIFICATION, the session stays up, and the UPDATE's prefixes
    are withdrawn: one announced before disappears, one new never appears."""
    lab = watched
    kept, withdrawn, never, marker = (
        "203.0.113.128/26", "203.0.113.64/26", "203.0.113.192/26", "203.0.113.32/27",
    )  # fmt: skip
    go, stop = tmp_path / "go", tmp_path / "stop"
    update_3_before = sum(notifications_sent(lab.mux, "raw", 3, sub) for sub in range(12))
    log = spawn_raw(
        lab.rack.node,
        RAW_PORT,
        [
            *OPEN_AND_ESTABLISH,
            ["send", update_bytes([kept, withdrawn]).hex()],
            ["wait_file", str(go), 30],
            ["send", update_bytes([withdrawn, never], origin=7).hex()],
            ["send", update_bytes([marker]).hex()],
            ["wait_file", str(stop), 30],
        ],
        "raw-origin.log",
    )
    try:
        wait_until(
            lambda: {kept, withdrawn} <= set(lab.mux.routes(client="raw")),
            timeout=15,
            what="the raw client's first routes",
            logs_of=[lab.mux],
        )
        go.touch()
        # The UPDATE after the malformed one is processed: so was the malformed one.
        routes = wait_until(
            lambda: (r := lab.mux.routes(client="raw")) and marker in r and r,
            timeout=15,
            what="the UPDATE after the malformed one",
            logs_of=[lab.mux],
        )
        assert set(routes) == {kept, marker}, routes
        assert lab.mux.rejected("raw") == {}
        assert withdrawn not in lab.mux.routes() and never not in lab.mux.routes()
        assert lab.mux.sessions()["raw"]["state"] == "ESTABLISHED"
        assert lab.mux.metric("bgpmux_session_up", peer="raw", role="client") == 1.0
        assert sum(notifications_sent(lab.mux, "raw", 3, sub) for sub in range(12)) == (
            update_3_before
        )
        assert any(
            "[peer=raw]" in line and "malformed UPDATE treated as withdraw" in line
            for line in text_of(lab.mux.log_path).splitlines()
        ), lab.mux.log_tail()
        at_tor = wait_until(
            lambda: (r := {**lab.rack.tor.routes("ipv4")}) and marker in r and r,
            timeout=15,
            what="the raw client's routes at the ToR",
            logs_of=[lab.mux, lab.rack.tor],
        )
        assert kept in at_tor and withdrawn not in at_tor and never not in at_tor
    finally:
        stop.touch()
    report = report_from_log(log)
    assert report["error"] is None, report
    assert report["established"] is True
    assert report["notifications"] == [], report
    assert report["closed"] is False, report
