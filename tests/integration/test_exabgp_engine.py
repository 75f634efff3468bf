"""ExaBGPEngine against a real gobgpd ToR, in two network namespaces made here.

    ns bmxeT<pid>: gobgpd, AS 65000, 10.0.0.1/30, 2001:db8:ff::1/64  (passive)
    ns bmxeN<pid>: a driver running ExaBGPEngine with a stand-in core, 10.0.0.2/30, ::2/64

The driver (written out below) speaks JSON lines: commands on its stdin, the engine's posts to
the core and answers on its stdout. Its core does what the real core does with an engine:
on ``upstream_up`` it sends the whole table and End-of-RIB.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.interop

IP = "/usr/sbin/ip" if Path("/usr/sbin/ip").exists() else "/sbin/ip"
GOBGPD, GOBGP = shutil.which("gobgpd"), shutil.which("gobgp")
API_PORT = 50161
ROOT = Path(__file__).resolve().parents[2]

DRIVER = r"""
import asyncio, json, sys
from pathlib import Path
from bgpmux.config import load_config
from bgpmux.engines.exabgp import ExaBGPEngine
from bgpmux.wire.attributes import PathAttributes
from bgpmux.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpmux.wire.prefix import prefix_from_str, prefix_to_str


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def attributes(spec, asn):
    return PathAttributes(
        origin=spec.get("origin", 0),
        as_path=tuple((k, tuple(a)) for k, a in spec.get("as_path", [[2, [asn]]])),
        med=spec.get("med"),
        local_pref=spec.get("local_pref"),
        atomic_aggregate=spec.get("atomic", False),
        aggregator=(spec["aggregator"][0], bytes(map(int, spec["aggregator"][1].split("."))))
        if "aggregator" in spec else None,
        communities=tuple((a << 16) | b for a, b in spec.get("communities", [])),
        large_communities=tuple(tuple(c) for c in spec.get("large", [])),
        other=tuple((f, c, bytes.fromhex(v)) for f, c, v in spec.get("other", [])),
    )


class StandInCore:
    def __init__(self, config):
        self.asn = config.node.asn
        self.engine = None
        self.up = set()
        self.table = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        self.next_hops = {IPV4_UNICAST: config.node.address.packed}
        if config.node.address_v6:
            self.next_hops[IPV6_UNICAST] = config.node.address_v6.packed

    def _announce(self, names, family, table):
        groups = {}
        for prefix, attrs in table.items():
            groups.setdefault(attrs, []).append(prefix)
        for attrs, prefixes in groups.items():
            self.engine.announce(names, family, attrs, self.next_hops[family], prefixes)

    def established(self, name, stale_kept=None, families=None):
        self.up.add(name)
        for family in self.next_hops:
            self._announce([name], family, self.table[family])
            self.engine.end_of_rib(name, family)
        emit(post="upstream_up", name=name)

    def down(self, name, stale_time=None, stale_families=None):
        self.up.discard(name)
        emit(post="upstream_down", name=name)

    def routes(self, name, family, attrs, next_hop, prefixes):
        emit(post="upstream_announce", name=name, next_hop=next_hop.hex(),
             prefixes=[prefix_to_str(family, p) for p in prefixes],
             as_path=[[k, list(a)] for k, a in attrs.as_path], med=attrs.med,
             communities=list(attrs.communities), large=[list(c) for c in attrs.large_communities])

    def withdrawn(self, name, family, prefixes):
        emit(post="upstream_withdraw", name=name,
             prefixes=[prefix_to_str(family, p) for p in prefixes])

    def end_of_rib(self, name, family):
        pass

    def route_refresh(self, name, family):
        pass

    def congested(self):
        return False

    def when_drained(self, callback):
        callback()

    def change(self, op, prefixes, attrs):
        by_family = {}
        for text in prefixes:
            family, prefix = prefix_from_str(text)
            by_family.setdefault(family, []).append(prefix)
        for family, items in by_family.items():
            table = self.table[family]
            if op == "announce":
                table.update(dict.fromkeys(items, attrs))
                if self.up:
                    self._announce(sorted(self.up), family, dict.fromkeys(items, attrs))
            else:
                for prefix in items:
                    table.pop(prefix, None)
                if self.up:
                    self.engine.withdraw(sorted(self.up), family, items)


def expand(cmd):
    if "range" not in cmd:
        return cmd["prefixes"]
    base, count = cmd["range"]
    a, b, c, d = map(int, base.split("."))
    start = (a << 24) | (b << 16) | (c << 8) | d
    return [".".join(str((n >> s) & 255) for s in (24, 16, 8, 0)) + "/32"
            for n in range(start, start + count)]


async def main():
    config = load_config(sys.argv[1])
    core = StandInCore(config)
    engine = ExaBGPEngine(config, core, Path(sys.argv[2]))
    core.engine = engine
    await engine.start()
    emit(event="started")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        op = cmd["op"]
        if op in ("announce", "withdraw"):
            prefixes = expand(cmd)
            core.change(op, prefixes, attributes(cmd.get("attrs", {}), core.asn))
            emit(event=op, count=len(prefixes))
        elif op == "status":
            emit(event="status", pid=engine._proc.pid if engine._proc else None,
                 status=[[s.name, s.state.name] for s in engine.status()],
                 restarts=engine.restarts, counters=engine.counters)
        elif op == "stop":
            break
    await engine.stop()
    emit(event="stopped")


asyncio.run(main())
"""

CONFIG = """
node:
  asn: 64512
  router_id: 10.0.0.2
  address: 10.0.0.2
  address_v6: "2001:db8:ff::2"
exabgp:
  reactor_speed: 0.1
  log_level: WARNING
upstreams:
  - name: tor
    address: 10.0.0.1
    asn: 65000
    hold_time: 9
    graceful_restart: 120
    password_file: PASSWORD_FILE
clients:
  - name: calico
    listen: 127.0.0.1:1790
    asn: 64512
"""

GOBGPD_CONFIG = """
[global.config]
  as = 65000
  router-id = "10.0.0.1"
  port = 179
[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.0.2"
    peer-as = 64512
    auth-password = "s3cret-md5"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def end(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, bounded wait, SIGKILL: only this PID."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=8)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class Topology:
    def __init__(self, workdir: Path) -> None:
        self.tor_ns = f"bmxeT{os.getpid()}"
        self.node_ns = f"bmxeN{os.getpid()}"
        self.workdir = workdir
        self.gobgpd: subprocess.Popen[bytes] | None = None

    def ip(self, *args: str) -> None:
        subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)

    def create(self) -> None:
        t, n = self.tor_ns, self.node_ns
        self.ip("netns", "add", t)
        self.ip("netns", "add", n)
        # both ends made directly inside our namespaces: the root namespace is never touched
        self.ip("link", "add", "t0", "netns", t, "type", "veth", "peer", "name", "n0", "netns", n)
        for ns, dev, v4, v6 in ((t, "t0", "10.0.0.1/30", "2001:db8:ff::1/64"),
                                (n, "n0", "10.0.0.2/30", "2001:db8:ff::2/64")):  # fmt: skip
            self.ip("-n", ns, "addr", "add", v4, "dev", dev)
            self.ip("-n", ns, "addr", "add", v6, "dev", dev, "nodad")
            self.ip("-n", ns, "link", "set", dev, "up")
            self.ip("-n", ns, "link", "set", "lo", "up")
        conf = self.workdir / "gobgpd.toml"
        conf.write_text(GOBGPD_CONFIG)
        log = open(self.workdir / "gobgpd.log", "wb")  # noqa: SIM115 - lives as long as gobgpd
        self.gobgpd = subprocess.Popen(
            [IP, "netns", "exec", t, str(GOBGPD), "--config-type", "toml", "--config-file",
             str(conf), "--api-hosts", f"127.0.0.1:{API_PORT}", "--pprof-disable", "--log-plain"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(lambda: self.gobgp("global", check=False).returncode == 0, 15, "gobgpd API")

    def gobgp(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [IP, "netns", "exec", self.tor_ns, str(GOBGP), "-p", str(API_PORT), *args],
            capture_output=True, text=True, timeout=20, check=check,
        )  # fmt: skip

    def rib(self, family: str = "ipv4") -> dict[str, Any]:
        table: dict[str, Any] = json.loads(self.gobgp("global", "rib", "-a", family, "-j").stdout)
        return {prefix: paths[0] for prefix, paths in table.items()}

    def count(self, family: str = "ipv4") -> int:
        """Destinations in the ToR's table, cheaply (no JSON of every route)."""
        out = self.gobgp("global", "rib", "summary", "-a", family).stdout
        for word in out.replace(",", " ").split("Destination:")[1:]:
            return int(word.split()[0])
        return 0

    def destroy(self) -> None:
        if self.gobgpd is not None:
            end(self.gobgpd)
        for ns in (self.tor_ns, self.node_ns):
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=10)


class Driver:
    def __init__(self, topo: Topology) -> None:
        wd = topo.workdir
        password = wd / "tor.password"
        password.write_text("s3cret-md5\n")
        (wd / "bgpmux.yaml").write_text(CONFIG.replace("PASSWORD_FILE", str(password)))
        (wd / "driver.py").write_text(DRIVER)
        self.stderr = open(wd / "driver.err", "wb")  # noqa: SIM115
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [IP, "netns", "exec", topo.node_ns, sys.executable, str(wd / "driver.py"),
             str(wd / "bgpmux.yaml"), str(wd / "engine")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env,
            text=True, bufsize=1,
        )  # fmt: skip
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def expect(self, timeout: float, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event {match} within {timeout}s; saw {self.seen[-10:]}")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(event)
            if all(event.get(k) == v for k, v in match.items()):
                return event

    def status(self) -> dict[str, Any]:
        self.send(op="status")
        return self.expect(10, event="status")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(op="stop")
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                end(self.proc)
        self.stderr.close()


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if os.geteuid() != 0 or not GOBGPD or not GOBGP:
        pytest.fail("these tests need root and gobgpd (make test installs it); not skipped")
    topology = Topology(tmp_path_factory.mktemp("exabgp-engine"))
    try:
        topology.create()
        yield topology
    finally:
        topology.destroy()


@pytest.fixture(scope="module")
def driver(topo: Topology) -> Iterator[Driver]:
    drv = Driver(topo)
    try:
        drv.expect(20, event="started")
        drv.expect(30, post="upstream_up", name="tor")
        yield drv
    finally:
        drv.close()


FULL = {
    "origin": 1,
    "as_path": [[2, [64512, 64513]], [1, [64600, 64601]]],
    "med": 50,
    "atomic": True,
    "aggregator": [64512, "10.0.0.2"],
    "communities": [[64512, 100], [65535, 65281]],
    "large": [[64512, 1, 2]],
    "other": [[0xE0, 0x99, "c0ffee"]],
}


def _attr(path: dict[str, Any], kind: int) -> dict[str, Any]:
    return next((a for a in path["attrs"] if a["type"] == kind), {})


def test_routes_reach_the_tor(topo: Topology, driver: Driver) -> None:
    driver.send(op="announce", prefixes=["198.51.100.0/25", "198.51.100.128/25"])
    driver.send(op="announce", prefixes=["203.0.113.0/24", "2001:db8:100::/48"], attrs=FULL)
    rib = wait_for(lambda: len(r := topo.rib()) == 3 and r, 15, "3 IPv4 routes at the ToR")
    plain = rib["198.51.100.0/25"]
    assert _attr(plain, 3)["nexthop"] == "10.0.0.2"
    assert [s["asns"] for s in _attr(plain, 2)["as_paths"]] == [[64512]]
    assert _attr(plain, 1)["value"] == 0
    full = rib["203.0.113.0/24"]
    assert _attr(full, 1)["value"] == 1
    assert [(s["segment_type"], s["asns"]) for s in _attr(full, 2)["as_paths"]] == [
        (2, [64512, 64513]), (1, [64600, 64601]),
    ]  # fmt: skip
    assert _attr(full, 4)["metric"] == 50
    assert _attr(full, 6)  # atomic aggregate
    assert (_attr(full, 7)["as"], _attr(full, 7)["address"]) == (64512, "10.0.0.2")
    assert _attr(full, 8)["communities"] == [(64512 << 16) | 100, 0xFFFFFF01]
    assert _attr(full, 32)["value"] == [{"ASN": 64512, "LocalData1": 1, "LocalData2": 2}]
    assert any(a["type"] == 0x99 for a in full["attrs"])  # unknown transitive, passed on
    v6 = wait_for(lambda: topo.rib("ipv6"), 10, "the IPv6 route at the ToR")
    assert _attr(v6["2001:db8:100::/48"], 14)["nexthop"] == "2001:db8:ff::2"
    assert driver.status()["counters"]["commands_failed"] == 0


def test_withdraw(topo: Topology, driver: Driver) -> None:
    driver.send(op="announce", prefixes=["198.51.100.64/26", "2001:db8:101::/48"])
    wait_for(lambda: "198.51.100.64/26" in topo.rib(), 10, "198.51.100.64/26 at the ToR")
    wait_for(lambda: "2001:db8:101::/48" in topo.rib("ipv6"), 10, "2001:db8:101::/48")
    driver.send(op="withdraw", prefixes=["198.51.100.64/26", "2001:db8:101::/48"])
    wait_for(lambda: "198.51.100.64/26" not in topo.rib(), 10, "the IPv4 withdraw")
    wait_for(lambda: "2001:db8:101::/48" not in topo.rib("ipv6"), 10, "the IPv6 withdraw")


def test_tor_routes_come_back_as_upstream_announce(topo: Topology, driver: Driver) -> None:
    topo.gobgp("global", "rib", "add", "10.200.0.0/16", "nexthop", "10.0.0.1",
               "community", "65000:7", "large-community", "65000:1:2", "med", "20")  # fmt: skip
    event = driver.expect(10, post="upstream_announce", prefixes=["10.200.0.0/16"])
    assert event["next_hop"] == "0a000001"
    assert event["as_path"] == [[2, [65000]]]
    assert event["med"] == 20
    assert event["communities"] == [(65000 << 16) | 7]
    assert event["large"] == [[65000, 1, 2]]
    topo.gobgp("global", "rib", "-a", "ipv6", "add", "2001:db8:200::/48",
               "nexthop", "2001:db8:ff::1")  # fmt: skip
    event = driver.expect(10, post="upstream_announce", prefixes=["2001:db8:200::/48"])
    assert event["next_hop"] == "20010db800ff00000000000000000001"
    topo.gobgp("global", "rib", "del", "10.200.0.0/16")
    driver.expect(10, post="upstream_withdraw", prefixes=["10.200.0.0/16"])


def test_exabgp_killed_is_restarted_and_the_table_resent(topo: Topology, driver: Driver) -> None:
    # Its own table, so that the test holds alone too (pytest -k, or xdist's --dist load).
    driver.send(op="announce", prefixes=["198.51.100.192/26", "2001:db8:102::/48"])
    wait_for(lambda: "198.51.100.192/26" in topo.rib(), 15, "198.51.100.192/26 at the ToR")
    wait_for(lambda: "2001:db8:102::/48" in topo.rib("ipv6"), 10, "2001:db8:102::/48")
    before, before6 = topo.rib(), topo.rib("ipv6")
    status = driver.status()
    assert status["pid"]
    os.kill(status["pid"], signal.SIGKILL)  # ExaBGP, by the PID the engine started
    driver.expect(15, post="upstream_down", name="tor")
    driver.expect(40, post="upstream_up", name="tor")
    after = wait_for(
        lambda: (r := topo.rib()).keys() == before.keys() and r, 20, "the same table again"
    )
    assert all(_attr(p, 3)["nexthop"] == "10.0.0.2" for p in after.values())
    assert wait_for(lambda: topo.rib("ipv6").keys() == before6.keys(), 10, "the IPv6 table")
    status = driver.status()
    assert status["restarts"] == 1
    assert status["pid"] != 0 and status["status"] == [["tor", "ESTABLISHED"]]


def test_ten_thousand_prefixes(topo: Topology, driver: Driver) -> None:
    """Measures ExaBGP with our batching: 10,000 /32s to the ToR and back out."""
    base = topo.count()
    assert base == len(topo.rib())
    started = time.monotonic()
    driver.send(op="announce", range=["10.100.0.0", 10_000])
    wait_for(lambda: topo.count() == base + 10_000, 60, "10,000 routes", step=0.05)
    announce = time.monotonic() - started
    assert all(_attr(p, 3)["nexthop"] == "10.0.0.2" for p in topo.rib().values() if p)
    started = time.monotonic()
    driver.send(op="withdraw", range=["10.100.0.0", 10_000])
    wait_for(lambda: topo.count() == base, 60, "10,000 withdrawn", step=0.05)
    withdraw = time.monotonic() - started
    print(f"\n10,000 /32s through ExaBGP to gobgpd: announce {announce:.2f}s, "
          f"withdraw {withdraw:.2f}s")  # fmt: skip
    assert driver.status()["counters"]["commands_failed"] == 0
