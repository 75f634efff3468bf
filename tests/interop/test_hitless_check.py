"""The hitless check (``make hitless``, bench/hitless) measures what it says. In its rack, with
its pings running, an outage made at the ToR (its BGP session disabled for a second) shows as
one gap of lost pings per ToR-side target, of at least that length, and nothing is lost before
or after it. Whether bgpmux's own restarts lose pings is what ``make hitless`` reports; this
test does not judge it."""

from __future__ import annotations

import time

from bench.hitless import pinglog
from bench.hitless.rack import TOR_PROTO, Rack
from bench.hitless.run import INTERVAL, TARGETS, Pinger
from lab import wait_until

OUTAGE_S = 1.0
CLEAN_S = 1.0  # pinging before and after the outage


def test_an_outage_at_the_tor_is_one_gap_and_nothing_else_is_lost() -> None:
    with Rack("native") as rack:
        assert rack.tor is not None
        pingers = [
            Pinger(rack.tor_host, name, addr, deadline=120)
            for name, src, addr in TARGETS
            if src == "tor"
        ]
        try:
            time.sleep(CLEAN_S)
            rack.tor.birdc_cmd(f"disable {TOR_PROTO}")
            time.sleep(OUTAGE_S)
            rack.tor.birdc_cmd(f"enable {TOR_PROTO}")
            wait_until(rack.settled, timeout=60, interval=0.25, what="the rack settled again",
                       logs_of=rack.daemons)  # fmt: skip
            time.sleep(CLEAN_S)
        finally:
            outputs = {p.name: p.stop() for p in pingers}
    for name, text in outputs.items():
        log = pinglog.parse(text)
        loss = pinglog.count_loss(log)
        assert log.transmitted is not None, f"{name}: ping printed no summary"
        assert loss.sent > CLEAN_S / INTERVAL, (name, loss)
        assert len(loss.gaps) == 1, (name, loss.gaps)
        (gap,) = loss.gaps
        assert gap.first > 1 and gap.before is not None, (name, gap)  # answered around it
        assert pinglog.seconds(gap, INTERVAL) >= OUTAGE_S * 0.8, (name, gap)
        assert loss.lost == gap.count
