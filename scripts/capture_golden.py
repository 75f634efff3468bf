#!/usr/bin/env python3
"""Capture real OPEN and UPDATE bytes from BIRD 2, FRR bgpd and GoBGP as golden vectors.

Run as root from anywhere: ``/work/main/.venv/bin/python scripts/capture_golden.py``.

It creates a network namespace of its own (``bmxgold<pid>``; only that namespace's loopback is
used), starts in it a tiny BGP listener built on ``bgpmux.wire`` (the ``listen`` mode of this
script) and then, one at a time, BIRD, FRR's bgpd (no zebra) and gobgpd, each configured to dial
the listener. The listener answers with our OPEN and KEEPALIVEs, records every message it
receives, and hangs up a few seconds after the last UPDATE. The messages are then sorted into
``tests/unit/golden/<daemon>_<what>.hex``: the whole message, header included, as one line of
hex. Only processes this script started are stopped (by PID); the namespace is deleted at the
end; every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bgpmux.wire import (  # noqa: E402
    IPV4_UNICAST,
    IPV6_UNICAST,
    KEEPALIVE,
    Capabilities,
    Family,
    Framer,
    Notification,
    Open,
    Update,
    decode_body,
    encode_message,
    prefix_to_str,
)
from bgpmux.wire.constants import HEADER_LEN, MARKER, MessageType  # noqa: E402

GOLDEN = ROOT / "tests" / "unit" / "golden"
OUR_AS = 64512
OUR_ROUTER_ID = "127.9.9.9"
KEEPALIVE_EVERY = 10.0
FRR_BGPD = "/usr/lib/frr/bgpd"
PORTS = {"bird": 17901, "frr": 17902, "gobgp": 17903}
GOBGP_API_PORT = 50151

# ------------------------------------------------------------------------------ the listener


def our_open() -> bytes:
    caps = Capabilities(
        multiprotocol=(IPV4_UNICAST, IPV6_UNICAST),
        route_refresh=True,
        four_octet_as=OUR_AS,
    )
    return encode_message(Open(OUR_AS, 90, OUR_ROUTER_ID, caps))


def listen(port: int, out: Path, deadline_s: float, idle_s: float) -> int:
    """Accept one session, answer OPEN + KEEPALIVE, record what arrives as lines of hex."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    print("listening", flush=True)
    deadline = time.monotonic() + deadline_s
    server.settimeout(deadline_s)
    try:
        conn, peer = server.accept()
    except TimeoutError:
        print("nobody connected", flush=True)
        return 1
    finally:
        server.close()
    print(f"connection from {peer[0]}:{peer[1]}", flush=True)
    keepalive = encode_message(KEEPALIVE)
    conn.sendall(our_open() + keepalive)
    framer = Framer()
    received: list[bytes] = []
    next_keepalive = time.monotonic() + KEEPALIVE_EVERY
    last_update: float | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                print("deadline reached", flush=True)
                break
            if last_update is not None and now - last_update >= idle_s:
                break
            if now >= next_keepalive:
                conn.sendall(keepalive)
                next_keepalive = now + KEEPALIVE_EVERY
            ready, _, _ = select.select([conn], [], [], 0.2)
            if not ready:
                continue
            data = conn.recv(65536)
            if not data:
                print("peer closed the connection", flush=True)
                break
            for kind, body in framer.feed(data):
                length = (HEADER_LEN + len(body)).to_bytes(2, "big")
                received.append(MARKER + length + bytes((kind,)) + body)
                print(f"received type {kind}, {HEADER_LEN + len(body)} octets", flush=True)
                if kind == MessageType.UPDATE:
                    last_update = time.monotonic()
                elif kind == MessageType.NOTIFICATION:
                    print(f"NOTIFICATION {decode_body(kind, body)}", flush=True)
        with contextlib.suppress(OSError):
            conn.sendall(encode_message(Notification(6, 2)))  # Cease/Administrative Shutdown
    finally:
        conn.close()
        out.write_text("".join(raw.hex() + "\n" for raw in received))
        print(f"recorded {len(received)} messages", flush=True)
    return 0


# ------------------------------------------------------------------------------ orchestration


class Namespace:
    """A network namespace of our own; nothing outside it is touched."""

    def __init__(self) -> None:
        self.name = f"bmxgold{os.getpid()}"

    def __enter__(self) -> Namespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=10)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, timeout=10)
        return self

    def __exit__(self, *_exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, timeout=10)

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            return subprocess.Popen(self.argv(argv), stdout=sink, stderr=subprocess.STDOUT)

    def run(self, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(argv), capture_output=True, text=True, timeout=timeout, check=False
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop one process we started, by its PID (``ip netns exec`` execs, so it is the daemon)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def bird_config(port: int, workdir: Path) -> tuple[Path, list[str]]:
    conf = workdir / "bird.conf"
    conf.write_text(
        f"""
log "{workdir}/bird.log" all;
router id 127.0.0.2;
protocol device {{ }}
protocol static static4 {{
  ipv4;
  route 10.244.1.0/26 blackhole;
}}
protocol static static6 {{
  ipv6;
  route 2001:db8:244:1::/64 blackhole;
}}
filter golden_export {{
  if source != RTS_STATIC then reject;
  bgp_community.add((64512, 100));
  bgp_large_community.add((64512, 1, 2));
  accept;
}}
protocol bgp golden {{
  local 127.0.0.2 as 64512;
  neighbor 127.0.0.1 port {port} as 64512;
  connect delay time 1;
  connect retry time 2;
  graceful restart on;
  ipv4 {{ import none; export filter golden_export; add paths on; }};
  ipv6 {{
    import none; export filter golden_export; add paths on;
    next hop address 2001:db8:244::2;
  }};
}}
"""
    )
    argv = ["bird", "-f", "-c", str(conf), "-s", str(workdir / "bird.ctl")]
    return conf, argv


def frr_config(port: int, workdir: Path) -> tuple[Path, list[str]]:
    conf = workdir / "bgpd.conf"
    conf.write_text(
        f"""frr defaults traditional
hostname golden-frr
log file {workdir}/bgpd.log debugging
!
route-map GOLDEN-OUT permit 10
 set community 64514:100 64514:200
 set large-community 64514:1:2
!
router bgp 64514
 bgp router-id 127.0.0.3
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 neighbor 127.0.0.1 remote-as 64512
 neighbor 127.0.0.1 port {port}
 neighbor 127.0.0.1 update-source 127.0.0.3
 neighbor 127.0.0.1 disable-connected-check
 neighbor 127.0.0.1 timers connect 2
 address-family ipv4 unicast
  network 198.51.100.10/32
  neighbor 127.0.0.1 activate
  neighbor 127.0.0.1 route-map GOLDEN-OUT out
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:100::10/128
  neighbor 127.0.0.1 activate
  neighbor 127.0.0.1 route-map GOLDEN-OUT out
 exit-address-family
!
"""
    )
    vty = workdir / "vty"
    vty.mkdir(exist_ok=True)
    argv = [
        FRR_BGPD,
        "--no_zebra",
        "--no_kernel",
        "--skip_runas",
        "--bgp_port", "0",
        "--vty_port", "0",
        "--vty_socket", str(vty),
        "--pid_file", str(workdir / "bgpd.pid"),
        "--config_file", str(conf),
    ]  # fmt: skip
    return conf, argv


def gobgp_config(port: int, workdir: Path) -> tuple[Path, list[str]]:
    conf = workdir / "gobgpd.toml"
    conf.write_text(
        f"""[global.config]
  as = 65000
  router-id = "127.0.0.4"
  port = -1

[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 64512
  [neighbors.transport.config]
    remote-port = {port}
    local-address = "127.0.0.4"
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"""
    )
    argv = [
        "gobgpd", "-t", "toml", "-f", str(conf),
        "--api-hosts", f"127.0.0.1:{GOBGP_API_PORT}", "--pprof-disable", "-p",
    ]  # fmt: skip
    return conf, argv


# Routes GoBGP is told to originate, through its API, once it is up.
GOBGP_ROUTES = [
    ["-a", "ipv4", "0.0.0.0/0"],
    [
        "-a", "ipv4", "203.0.113.0/24", "aspath", "4200000001 {65002,65003}",
        "med", "50", "community", "65000:100", "large-community", "65000:1:2",
    ],
    [
        "-a", "ipv6", "2001:db8:203::/48", "nexthop", "2001:db8:ff::4",
        "community", "65000:100", "large-community", "65000:1:2",
    ],
]  # fmt: skip


def gobgp_add_routes(ns: Namespace) -> None:
    base = ["gobgp", "-p", str(GOBGP_API_PORT), "global", "rib", "add"]

    def api_up() -> bool:
        return ns.run(["gobgp", "-p", str(GOBGP_API_PORT), "global"]).returncode == 0

    wait_for(api_up, 15, "gobgpd's API")
    for route in GOBGP_ROUTES:
        result = ns.run([*base, *route])
        if result.returncode != 0:
            raise RuntimeError(f"gobgp rib add {route}: {result.stderr.strip()}")


def capture(
    ns: Namespace,
    daemon: str,
    workdir: Path,
    configure: Callable[[int, Path], tuple[Path, list[str]]],
    after_start: Callable[[Namespace], None] | None = None,
) -> list[bytes]:
    port = PORTS[daemon]
    out = workdir / f"{daemon}.messages"
    log = workdir / f"{daemon}.listener.log"
    log.touch()
    listener = ns.popen(
        [sys.executable, __file__, "listen", "--port", str(port), "--out", str(out)], log
    )
    procs = [listener]
    try:
        wait_for(lambda: "listening" in log.read_text(), 10, f"the listener for {daemon}")
        _conf, argv = configure(port, workdir)
        procs.append(ns.popen(argv, workdir / f"{daemon}.log"))
        if after_start is not None:
            after_start(ns)
        listener.wait(timeout=60)
    finally:
        for proc in reversed(procs):
            stop(proc)
    print(f"--- {daemon} listener\n{log.read_text()}", flush=True)
    if not out.exists():
        raise RuntimeError(f"{daemon}: nothing recorded")
    return [bytes.fromhex(line) for line in out.read_text().split()]


def sort_messages(daemon: str, messages: list[bytes]) -> dict[str, bytes]:
    """Name each message worth keeping: the first OPEN, every distinct UPDATE.

    UPDATEs are named by family and first prefix (``frr_update_ipv4_198.51.100.10_32``;
    IPv6 colons become dashes) so the
    names do not depend on the order a daemon happens to send them in; End-of-RIB markers are
    ``<daemon>_eor_ipv4`` / ``_eor_ipv6``. Repeats of the same bytes (FRR sends its table
    twice) are kept once.
    """
    named: dict[str, bytes] = {}
    for raw in messages:
        kind, body = raw[18], raw[HEADER_LEN:]
        if raw in named.values():
            continue
        if kind == MessageType.OPEN and f"{daemon}_open" not in named:
            named[f"{daemon}_open"] = raw
        elif kind == MessageType.UPDATE:
            msg = decode_body(kind, body)
            assert isinstance(msg, Update)
            eor = msg.end_of_rib()
            if eor is not None:
                named[f"{daemon}_eor_{_family_name(eor)}"] = raw
                continue
            announced = list(msg.announcements())
            withdrawn = list(msg.withdrawals())
            if announced:
                family, _attrs, _nh, prefixes = announced[0]
                what = "update"
            elif withdrawn:
                family, prefixes = withdrawn[0]
                what = "withdraw"
            else:
                continue
            first = prefix_to_str(family, prefixes[0]).replace("/", "_").replace(":", "-")
            named[f"{daemon}_{what}_{_family_name(family)}_{first}"] = raw
    return named


def _family_name(family: Family) -> str:
    return "ipv4" if family == IPV4_UNICAST else "ipv6" if family == IPV6_UNICAST else "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    lis = sub.add_parser("listen", help="(internal) the listener, run inside the namespace")
    lis.add_argument("--port", type=int, required=True)
    lis.add_argument("--out", type=Path, required=True)
    lis.add_argument("--deadline", type=float, default=45.0)
    lis.add_argument("--idle", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=GOLDEN, help="where the .hex files go")
    parser.add_argument("--only", choices=sorted(PORTS), action="append")
    args = parser.parse_args()
    if args.mode == "listen":
        return listen(args.port, args.out, args.deadline, args.idle)
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    plan: list[tuple[str, Callable[[int, Path], tuple[Path, list[str]]], object]] = [
        ("bird", bird_config, None),
        ("frr", frr_config, None),
        ("gobgp", gobgp_config, gobgp_add_routes),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bmxgold") as tmp, Namespace() as ns:
        for daemon, configure, after in plan:
            if args.only and daemon not in args.only:
                continue
            workdir = Path(tmp) / daemon
            workdir.mkdir()
            os.chmod(tmp, 0o755)
            hook = after if callable(after) else None
            try:
                messages = capture(ns, daemon, workdir, configure, hook)
            finally:
                for logfile in sorted(workdir.glob("*.log")):
                    if logfile.name != f"{daemon}.listener.log":
                        tail = logfile.read_text(errors="replace").splitlines()[-15:]
                        print(f"--- {logfile.name}\n" + "\n".join(tail), flush=True)
            for name, raw in sort_messages(daemon, messages).items():
                (args.out / f"{name}.hex").write_text(raw.hex() + "\n")
                print(f"wrote {name}.hex ({len(raw)} octets)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
