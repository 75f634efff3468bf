"""Shared pieces of the interop tests: a node + ToR rack, bgpmux configs, and a raw BGP speaker.

The rack is two namespaces joined by one veth pair: the node (10.0.0.2, 2001:db8:ff::2) where
bgpmux and its clients run, and a GoBGP ToR (10.0.0.1, AS 65000) that bgpmux dials with the
native engine.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab import Bgpmux, GoBgp, Host, Neighbor, Topology, wait_until

NODE_AS, TOR_AS = 64512, 65000
NODE_V4, TOR_V4 = "10.0.0.2", "10.0.0.1"
NODE_V6, TOR_V6 = "2001:db8:ff::2", "2001:db8:ff::1"
RAW_ROUTER_ID = "10.9.9.9"


@dataclass
class Rack:
    topo: Topology
    node: Host
    tor_host: Host
    tor: GoBgp

    def mux_config(self, clients: list[dict[str, Any]]) -> dict[str, Any]:
        """A native-engine bgpmux config for this rack's node, with ``clients``."""
        return {
            "node": {
                "asn": NODE_AS,
                "router_id": NODE_V4,
                "address": NODE_V4,
                "address_v6": NODE_V6,
                "initial_sync_timeout": 1,
            },
            "engine": "native",
            "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 9}],
            "clients": clients,
        }

    def start_mux(self, clients: list[dict[str, Any]]) -> Bgpmux:
        mux = Bgpmux(self.node, "bgpmux", self.mux_config(clients))
        mux.start()
        wait_until(lambda: mux.sessions(), timeout=15, what="bgpmux API", logs_of=[mux])
        return mux


@pytest.fixture(scope="module")
def rack(request: pytest.FixtureRequest) -> Iterator[Rack]:
    """Per test module: node and ToR namespaces, and the GoBGP ToR (passive, IPv4 + IPv6)."""
    tag = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:4]
    with Topology(tag=tag) as topo:
        node, tor_host = topo.add_host("node"), topo.add_host("tor")
        topo.link(
            node, [f"{NODE_V4}/30", f"{NODE_V6}/64"], tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"]
        )
        tor = GoBgp(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, hold_time=9, families=("ipv4", "ipv6"))],
        ).start()  # fmt: skip
        yield Rack(topo, node, tor_host, tor)


def text_of(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


# ---------------------------------------------------------------------------------- raw speaker

# Runs inside the node namespace. argv[1] is a JSON spec: {"port", "source", "rcvbuf",
# "actions"}; "rcvbuf" sets SO_RCVBUF before connecting (a small one makes a stalled reader's
# backlog pile up at the sender); actions are ["open", asn] (["open", asn, "extended"] offers
# RFC 8654 extended messages), ["established"], ["send", hex], ["sleep", s],
# ["wait_file", path, s], ["read_until_close", s], and ["stall", s, every]: read nothing for
# up to s seconds, a KEEPALIVE every `every` seconds, until a send fails (the peer closed or
# reset the connection; "send_error" says how). Prints one JSON line: what came back.
RAW_SCRIPT = r"""
import json, os, socket, sys, time
from bgpmux.wire import Capabilities, Framer, IPV4_UNICAST, IPV6_UNICAST, Open, decode_body
from bgpmux.wire.messages import encode_keepalive, encode_open

spec = json.loads(sys.argv[1])
out = {"received": [], "notifications": [], "closed": False, "established": False, "error": None,
       "send_error": None, "stalled": None}
framer = Framer(65535)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.settimeout(10)
if spec.get("rcvbuf"):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, spec["rcvbuf"])
if spec.get("source"):
    sock.bind((spec["source"], 0))
sock.connect(("127.0.0.1", spec["port"]))

def pump(timeout):
    # Read what is there within `timeout`; record messages; False once the peer closed.
    if out["closed"]:
        return False
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return True
    except ConnectionError:
        data = b""
    if not data:
        out["closed"] = True
        return False
    for kind, body in framer.feed(data):
        out["received"].append(kind)
        if kind == 3:
            msg = decode_body(kind, body)
            out["notifications"].append([msg.code, msg.subcode, msg.data.hex()])
    return True

def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        if not pump(min(0.5, max(0.01, deadline - time.monotonic()))):
            break
    return predicate()

try:
    for action in spec["actions"]:
        name, args = action[0], action[1:]
        if name == "open":
            caps = Capabilities(
                multiprotocol=(IPV4_UNICAST, IPV6_UNICAST), route_refresh=True,
                four_octet_as=args[0], extended_message=len(args) > 1 and args[1] == "extended",
            )
            sock.sendall(encode_open(Open(args[0], 60, spec["router_id"], caps)))
        elif name == "established":
            if not wait_for(lambda: 1 in out["received"] and 4 in out["received"], 10):
                raise RuntimeError("no OPEN + KEEPALIVE from the peer")
            sock.sendall(encode_keepalive())
            # bgpmux sends End-of-RIB (an UPDATE) once Established.
            if not wait_for(lambda: 2 in out["received"], 10):
                raise RuntimeError("no UPDATE (End-of-RIB) after KEEPALIVE")
            out["established"] = True
        elif name == "send":
            sock.sendall(bytes.fromhex(args[0]))
        elif name == "sleep":
            wait_for(lambda: False, args[0])
        elif name == "wait_file":
            deadline = time.monotonic() + args[1]
            while not os.path.exists(args[0]) and time.monotonic() < deadline:
                pump(0.2)
        elif name == "read_until_close":
            wait_for(lambda: out["closed"], args[0])
        elif name == "stall":
            started = time.monotonic()
            while time.monotonic() - started < args[0]:
                time.sleep(args[1])
                try:
                    sock.sendall(encode_keepalive())
                except OSError as exc:
                    out["closed"] = True
                    out["send_error"] = type(exc).__name__
                    break
            out["stalled"] = round(time.monotonic() - started, 2)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
finally:
    sock.close()
print(json.dumps(out), flush=True)
"""


def raw_spec(
    port: int, actions: list[list[Any]], source: str | None = None, rcvbuf: int | None = None
) -> str:
    return json.dumps(
        {
            "port": port,
            "source": source,
            "rcvbuf": rcvbuf,
            "router_id": RAW_ROUTER_ID,
            "actions": actions,
        }
    )


def raw_session(
    host: Host, port: int, actions: list[list[Any]], source: str | None = None
) -> dict[str, Any]:
    """Run the raw speaker to completion inside ``host``; what it received."""
    result = host.run(
        [sys.executable, "-c", RAW_SCRIPT, raw_spec(port, actions, source)], timeout=60
    )
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def spawn_raw(
    host: Host, port: int, actions: list[list[Any]], log_name: str, rcvbuf: int | None = None
) -> Path:
    """Start the raw speaker in the background; its JSON report ends up in the returned log."""
    host.spawn([sys.executable, "-c", RAW_SCRIPT, raw_spec(port, actions, rcvbuf=rcvbuf)], log_name)
    return host.workdir / log_name


def report_from_log(path: Path, timeout: float = 20) -> dict[str, Any]:
    def last_json() -> dict[str, Any] | None:
        lines = [line for line in text_of(path).splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    return wait_until(last_json, timeout=timeout, what=f"raw speaker report in {path}")


def notifications_sent(mux: Bgpmux, peer: str, code: int, subcode: int) -> float:
    value = mux.metric(
        "bgpmux_notifications_sent_total", peer=peer, code=str(code), subcode=str(subcode)
    )
    return value or 0.0
