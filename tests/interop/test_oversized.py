"""Routes too large for the upstream's messages, replayed against a real GoBGP ToR, per engine.

A raw client (iBGP, extended messages negotiated with bgpmux) sends a normal route, then each
input in ``tests/cases/`` (4096 to 4452 octets; with the node's next hop and AS path they fit in
no 4096-octet UPDATE to the ToR), then withdraws the normal route. The oversized routes must
never reach the ToR and be counted; the ToR session must not flap; the core must go on serving
(the withdrawal reaches the ToR); ``/healthz`` stays 200.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bgpmux.wire import PathAttributes, Update, encode_update, prefix_from_str
from lab import Bgpmux, wait_until

from .conftest import NODE_AS, NODE_V4, Rack, report_from_log, spawn_raw

CASES = Path(__file__).parent.parent / "cases"
PORT = 1797
NORMAL = "10.244.9.0/24"
OVERSIZED = {"10.244.5.0/24", "198.51.100.20/32"}
HOLD = 6.0  # longer than the ~5 s reset cycle a 4099-octet UPDATE once caused at the ToR


def normal_update(withdraw: bool = False) -> bytes:
    _family, prefix = prefix_from_str(NORMAL)
    if withdraw:
        return encode_update(Update(withdrawn=(prefix,)))
    attrs = PathAttributes(next_hop=bytes((10, 0, 0, 2)), communities=(1,))
    return encode_update(Update(attributes=attrs, nlri=(prefix,)))


def case_bytes() -> list[str]:
    return [path.read_text().strip() for path in sorted(CASES.glob("D1*.hex"))]


def oversized_script(go: Path, stop: Path) -> list[list[Any]]:
    """The raw client's actions: a normal route, then every oversized case; the normal route's
    withdrawal once ``go`` exists; then it waits for ``stop``."""
    return [
        ["open", NODE_AS, "extended"],
        ["established"],
        ["send", normal_update().hex()],
        *[["send", data] for data in case_bytes()],
        ["wait_file", str(go), 60],
        ["send", normal_update(withdraw=True).hex()],
        ["wait_file", str(stop), 60],
    ]


@pytest.mark.interop
@pytest.mark.parametrize("engine", ["native", "exabgp", "gobgp"])
def test_oversized_routes_never_reach_the_tor_and_the_mux_goes_on(
    rack: Rack, engine: str, tmp_path: Path
) -> None:
    config = rack.mux_config(
        [
            {
                "name": "raw",
                "listen": f"127.0.0.1:{PORT}",
                "asn": NODE_AS,
                "accept": ["10.244.0.0/16 le 32", "198.51.100.0/24 le 32"],
            }
        ]
    )
    config["engine"] = engine
    mux = Bgpmux(rack.node, f"bgpmux-{engine}", config)
    mux.start()
    go, stop = tmp_path / "go", tmp_path / "stop"
    try:
        mux.wait_established("tor", timeout=60)
        flaps_before = mux.metric("bgpmux_session_flaps_total", peer="tor", role="upstream")
        log = spawn_raw(rack.node, PORT, oversized_script(go, stop), f"raw-oversized-{engine}.log")
        wait_until(
            lambda: set(mux.routes(client="raw")) >= OVERSIZED,
            timeout=20,
            what="the oversized routes in bgpmux",
            logs_of=[mux],
        )
        wait_until(
            lambda: NORMAL in rack.tor.routes("ipv4"),
            timeout=30,
            what="the normal route at the ToR",
            logs_of=[mux, rack.tor],
        )
        wait_until(
            lambda: mux.metric("bgpmux_prefixes_too_large", peer="tor", role="upstream") == 2,
            timeout=10,
            what="bgpmux_prefixes_too_large{peer=tor} == 2",
            logs_of=[mux],
        )
        time.sleep(HOLD)
        assert not OVERSIZED & set(rack.tor.routes("ipv4")), rack.tor.routes("ipv4")
        assert rack.tor.neighbor_state(NODE_V4) == "Established"
        assert mux.metric("bgpmux_session_flaps_total", peer="tor", role="upstream") == flaps_before
        assert mux.http("/healthz")[0] == 200
        go.touch()
        wait_until(
            lambda: NORMAL not in rack.tor.routes("ipv4"),
            timeout=15,
            what="the withdrawal at the ToR (the core still serves)",
            logs_of=[mux, rack.tor],
        )
        lines = [line for line in mux.log_tail(400).splitlines() if "routes not sent" in line]
        assert len(lines) == 2, lines  # one line per oversized route, not one per retry
        stop.touch()
        report = report_from_log(log)
        assert report["error"] is None and report["notifications"] == [], report
    finally:
        stop.touch()
        mux.stop()
