"""Times the wire-side bulk steps for N IPv4 /32s (default 1M), sans IO: decoding BIRD-like
UPDATEs (about 4 KiB, ~800 NLRI or withdrawn routes each), the import prefix filter, grouping
by path, and packing announcements and withdrawals. Hold /tmp/bench12.lock while it runs.

    .venv/bin/python scripts/wire_microbench.py [N]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from bgpmux.core.peers import group_by_path
from bgpmux.policy.prefix_list import PrefixList, PrefixRule
from bgpmux.rib.paths import Path, Source
from bgpmux.wire.attributes import PathAttributes
from bgpmux.wire.constants import IPV4_UNICAST
from bgpmux.wire.framer import Framer
from bgpmux.wire.messages import AttributeCache, decode_update
from bgpmux.wire.packing import pack_announce, pack_withdraw


def _best(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    base = 0x0A800000  # 10.128.0.0, inside the bench's accept rule
    prefixes = [b"\x20" + (base + i).to_bytes(4, "big") for i in range(n)]
    attrs = PathAttributes(origin=0, as_path=((2, (65001,)),))
    nh = bytes((10, 0, 0, 1))
    announce = pack_announce(IPV4_UNICAST, attrs, nh, prefixes).messages
    withdraw = pack_withdraw(IPV4_UNICAST, prefixes)
    stream_a, stream_w = b"".join(announce), b"".join(withdraw)

    def decode(stream: bytes) -> Callable[[], object]:
        def run() -> object:
            cache = AttributeCache()
            total = 0
            for _kind, body in Framer().feed(stream):
                u = decode_update(body, cache=cache)
                total += len(u.nlri) + len(u.withdrawn)
            assert total == n
            return total

        return run

    plist = PrefixList([PrefixRule.parse("10.128.0.0/9 le 32")])
    path = Path(Source("client", False, 0, 0), attrs, nh)
    announced = dict.fromkeys(prefixes, path)
    withdrawn = dict.fromkeys(prefixes)
    rows = [
        ("frame+decode announce", decode(stream_a)),
        ("frame+decode withdraw", decode(stream_w)),
        ("PrefixList.split", lambda: plist.split(IPV4_UNICAST, prefixes)),
        ("group_by_path announce", lambda: group_by_path(announced)),
        ("group_by_path withdraw", lambda: group_by_path(withdrawn)),
        ("pack_announce", lambda: pack_announce(IPV4_UNICAST, attrs, nh, prefixes)),
        ("pack_withdraw", lambda: pack_withdraw(IPV4_UNICAST, prefixes)),
    ]
    print(f"{n} IPv4 /32s, {len(announce)} announce / {len(withdraw)} withdraw UPDATEs")
    for name, fn in rows:
        print(f"{name:24} {_best(fn) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
