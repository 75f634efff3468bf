"""``python -m bench.hitless`` (``make hitless``): restart bgpmux under pings, per engine."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from lab.procs import clean_up_on_signals

from ..cli import RESULTS
from . import report
from .run import INTERVAL, Options, run_mux

ENGINES = ("native", "exabgp", "gobgp")
BASELINES = ("bird",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.hitless",
        description="Ping every 20 ms from a ToR to a pod and an LB address on the node, and from "
        "the node to an address behind the ToR, while bgpmux restarts (SIGTERM and SIGKILL "
        "alternately); report the lost pings per engine. Exit 1 if any was lost. Needs root "
        "(network namespaces named hl*).",
    )
    p.add_argument("--engines", default=",".join(ENGINES), help="default native,exabgp,gobgp")
    p.add_argument("--restarts", type=int, default=10, help="restarts per engine (default 10)")
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=30.0,
        help="seconds a restarted mux has to settle (default 30)",
    )
    p.add_argument(
        "--dwell",
        type=float,
        default=3.0,
        help="seconds of pinging after it settled, before the next restart (default 3)",
    )
    p.add_argument(
        "--baseline",
        choices=BASELINES,
        action="append",
        default=[],
        help="also measure BIRD hand-configured as the mux (reported, not judged)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="exit 0 whatever was lost (a rack that cannot run still exits 1)",
    )
    p.add_argument(
        "--keep-logs",
        type=Path,
        metavar="DIR",
        help="copy every daemon's config and log, and the pings' output, to DIR/<mux>/",
    )
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.engine_list = list(dict.fromkeys(e.strip() for e in args.engines.split(",") if e.strip()))
    if any(e not in ENGINES for e in args.engine_list):
        p.error(f"--engines: choose from {', '.join(ENGINES)}")
    if not args.engine_list and not args.baseline:
        p.error("nothing to measure")
    if not 1 <= args.restarts <= 100:
        p.error("--restarts in 1..100")
    if not 1 <= args.settle_timeout <= 300 or not 0 <= args.dwell <= 60:
        p.error("--settle-timeout in [1, 300], --dwell in [0, 60]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench.hitless needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("ping") is None:
        print("ping not found: apt-get install iputils-ping (make deps does)", file=sys.stderr)
        return 2
    clean_up_on_signals()
    opts = Options(
        restarts=args.restarts,
        settle_timeout=args.settle_timeout,
        dwell=args.dwell,
        keep_logs=args.keep_logs,
    )
    kinds = [*args.engine_list, *args.baseline]
    recorded: dict[str, Any] = {
        "engines": args.engine_list,
        "baseline": args.baseline,
        "restarts": args.restarts,
        "settle_timeout": args.settle_timeout,
        "dwell": args.dwell,
        "interval_s": INTERVAL,
        "report_only": args.report_only,
        "argv": sys.argv[1:] if argv is None else argv,
    }
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    log(
        f"{', '.join(kinds)}: {args.restarts} restarts each. About 10 s per restart that "
        f"settles, up to {args.settle_timeout:g} s more for one that does not; at most "
        f"{len(kinds) * opts.deadline() / 60:.0f} min in all"
    )
    results: list[dict[str, Any]] = []
    interrupted = False
    try:
        for kind in kinds:
            results.append(run_mux(kind, opts, log))
            log(f"{kind}: {'PASS' if results[-1]['ok'] else 'FAIL'}")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: the rack is torn down")
    final = report.build(results, recorded, time.monotonic() - started, interrupted)
    print()
    print(report.markdown(final))
    if results:
        md, js = report.write(final, args.out_dir)
        print(f"written: {md} and {js}")
    else:  # an early Ctrl-C does not replace the last results with an empty report
        print(f"nothing measured: {args.out_dir} left as it was")
    if final["ok"]:
        return 0
    ran = bool(results) and not interrupted and all("targets" in r for r in results)
    return 0 if args.report_only and ran else 1
