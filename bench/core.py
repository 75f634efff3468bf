"""A sans-IO microbenchmark of the core alone: no sockets, no root, no BIRD.

One client and one upstream on a ``Core`` with a fake engine that only counts. Per table size
(each in a fresh process, so that memory figures do not mix): the client announces N /32s in
UPDATEs of ``--per-update`` prefixes, then withdraws them; then the upstream does the same
towards the client. Prints the seconds per phase and the growth of VmRSS and VmHWM (MiB) over
the idle core.

    python -m bench.core [--sizes 100k,1000k] [--per-update 800] [--batch 1] [--lb 0]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import (
    ClientEstablished,
    ClientUpdate,
    UpstreamEstablished,
    UpstreamRoutes,
    UpstreamWithdrawn,
)
from bgpmux.engines.fake import FakeEngine
from bgpmux.wire import IPV4_UNICAST, CodecOptions, Family, PathAttributes, Update
from bgpmux.wire.prefix import Prefix

CONFIG = """
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2, initial_sync_timeout: 30}
engine: native
upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]
clients:
  - {name: calico, listen: "127.0.0.1:1790", asn: 64512, max_prefixes: 4000000,
     accept: ["10.0.0.0/8 le 32"], receive_upstream_routes: true}
  - {name: metallb, listen: "127.0.0.1:1791", asn: 64514, max_prefixes: 1000,
     accept: ["198.51.100.0/24 le 32"]}
"""


class CountingEngine(FakeEngine):
    """Counts the prefixes handed to it and keeps nothing."""

    def __init__(self) -> None:
        super().__init__(["tor"])
        self.announced = 0
        self.withdrawn = 0

    def announce(
        self,
        upstreams: Sequence[str],
        family: Family,
        attributes: PathAttributes,
        next_hop: bytes,
        prefixes: Sequence[Prefix],
    ) -> dict[str, list[Prefix]]:
        self.announced += len(prefixes)
        return {}

    def withdraw(
        self, upstreams: Sequence[str], family: Family, prefixes: Sequence[Prefix]
    ) -> None:
        self.withdrawn += len(prefixes)


class CountingLink:
    """A client link that counts the octets it is sent and keeps nothing."""

    def __init__(self) -> None:
        self.options = CodecOptions()
        self.families = (IPV4_UNICAST,)
        self.octets = 0

    def send(self, messages: list[bytes]) -> None:
        self.octets += sum(len(m) for m in messages)

    def send_route_refresh(self, family: Family, subtype: int = 0) -> bool:
        return False

    def shutdown(self, notification: object, reason: object) -> None:
        raise AssertionError("the bench's client was shut down")


def chunks(count: int, size: int, base: int) -> Iterator[list[Prefix]]:
    """``count`` /32s from ``base`` (an IPv4 address as an int), ``size`` at a time."""
    for start in range(0, count, size):
        yield [
            b"\x20" + (base + i).to_bytes(4, "big") for i in range(start, min(count, start + size))
        ]


def memory() -> dict[str, float]:
    """VmRSS and VmHWM of this process, MiB."""
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def one(size: int, per_update: int, batch: int = 1, lb: int = 0) -> dict[str, float]:
    """Every phase at ``size`` routes, the core flushed every ``batch`` events (as the runner
    does when its queue runs empty), a second client holding ``lb`` IPv4 /32s of its own
    (MetalLB next to Calico: two sources of the family); seconds per phase, MiB of growth."""
    engine = CountingEngine()
    clock = time.monotonic
    core = Core(parse_config(CONFIG, env={}), engine, now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    link = CountingLink()
    core.handle(ClientEstablished("calico", link, False), 0.0)  # type: ignore[arg-type]
    if lb:
        lb_link = CountingLink()
        core.handle(ClientEstablished("metallb", lb_link, False), 0.0)  # type: ignore[arg-type]
        lb_base = int(ipaddress.ip_address("198.51.100.0"))
        for chunk in chunks(lb, per_update, lb_base):
            update = Update(
                attributes=PathAttributes(next_hop=b"\x0a\x00\x00\x03"), nlri=tuple(chunk)
            )
            core.handle(ClientUpdate("metallb", update), 0.0)
    core.flush(0.0)
    nh = ipaddress.ip_address("10.0.0.2").packed
    client_attrs = PathAttributes(next_hop=nh)
    tor_attrs = PathAttributes(
        as_path=((2, (65000,)),), next_hop=ipaddress.ip_address("10.0.0.1").packed
    )
    client_base = int(ipaddress.ip_address("10.0.0.0"))
    tor_base = int(ipaddress.ip_address("10.128.0.0"))
    idle = memory()
    out: dict[str, float] = {}

    def phase(name: str, make: Iterator[object]) -> None:
        events = list(make)  # built before the clock starts; the RIB keeps their prefixes
        start = time.perf_counter()
        for i, event in enumerate(events, 1):
            now = clock()  # the runner's clock: the core's once-a-second work runs as it would
            core.handle(event, now)
            if i % batch == 0:
                core.flush(now)
        core.flush(clock())
        out[name] = time.perf_counter() - start

    phase("up", (ClientUpdate("calico", Update(attributes=client_attrs, nlri=tuple(c)))
                 for c in chunks(size, per_update, client_base)))  # fmt: skip
    held = memory()
    out["rss_held_mib"] = held["VmRSS"] - idle["VmRSS"]
    phase("withdrawn", (ClientUpdate("calico", Update(withdrawn=tuple(c)))
                        for c in chunks(size, per_update, client_base)))  # fmt: skip
    phase("tor_to_client", (UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, nh, c)
                            for c in chunks(size, per_update, tor_base)))  # fmt: skip
    phase("tor_withdrawn", (UpstreamWithdrawn("tor", IPV4_UNICAST, c)
                            for c in chunks(size, per_update, tor_base)))  # fmt: skip
    assert engine.announced - lb == engine.withdrawn == size, (engine.announced, engine.withdrawn)
    out["hwm_growth_mib"] = memory()["VmHWM"] - idle["VmHWM"]
    return out


def parse_size(text: str) -> int:
    return int(text[:-1]) * 1000 if text.endswith("k") else int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.core", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default="100k,1000k")
    parser.add_argument("--per-update", type=int, default=800)
    parser.add_argument("--batch", type=int, default=1, help="events per flush")
    parser.add_argument("--lb", type=int, default=0, help="/32s a second client holds")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one size, JSON out
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one(args.one, args.per_update, args.batch, args.lb)))
        return 0
    rows = {}
    for text in args.sizes.split(","):
        size = parse_size(text)
        child = [
            sys.executable,
            "-m",
            "bench.core",
            "--one",
            str(size),
            "--per-update",
            str(args.per_update),
            "--batch",
            str(args.batch),
            "--lb",
            str(args.lb),
        ]
        rows[size] = json.loads(subprocess.run(child, check=True, capture_output=True).stdout)
    names = ["up", "withdrawn", "tor_to_client", "tor_withdrawn", "rss_held_mib", "hwm_growth_mib"]
    print(f"{'routes':>8} " + " ".join(f"{n:>14}" for n in names))
    for size, row in rows.items():
        print(f"{size:>8} " + " ".join(f"{row[n]:>14.3f}" for n in names))
    if len(rows) >= 2:
        (small, a), (large, b) = list(rows.items())[:2]
        slope = (b["rss_held_mib"] - a["rss_held_mib"]) * 2**20 / (large - small)
        print(f"RSS slope (client routes held): {slope:.0f} bytes/route")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
