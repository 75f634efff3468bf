"""``python -m bench.soak``: churn each engine in turn, sample, judge, write the results."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from lab.procs import clean_up_on_signals

from ..cli import RESULTS
from . import report
from .rack import LB_POOL
from .run import Options, run_engine

ENGINES = ("exabgp", "native")
WARMUP_SHARE = 0.3  # at most this share of a phase is warm-up (short trial runs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="An hour of churn split across the engines: LB addresses added and removed "
        "at --rate per second, Calico flapping every minute; RSS and open descriptors sampled "
        "and their growth judged. Needs root (network namespaces named soak*).",
    )
    p.add_argument("--minutes", type=float, default=60.0, help="total churn time (default 60)")
    p.add_argument("--engines", default=",".join(ENGINES), help="default exabgp,native")
    p.add_argument("--rate", type=float, default=100.0, help="LB adds/s, as many removes/s")
    p.add_argument("--window", type=int, default=100, help="LB addresses active at once")
    p.add_argument("--flap-every", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--sample-every", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="minutes left out of the fit")
    p.add_argument("--rss-pct-per-10min", type=float, default=1.0)
    p.add_argument("--rss-floor-kib-min", type=float, default=8.0)
    p.add_argument("--fd-slope-per-min", type=float, default=0.1)
    p.add_argument("--fd-tolerance", type=int, default=2)
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="diagnosis: run bgpmux under tracemalloc and list what grew between the end of "
        "the warm-up and the end (slower; its RSS is not comparable)",
    )
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not args.engine_list or any(e not in ENGINES for e in args.engine_list):
        p.error(f"--engines: choose from {', '.join(ENGINES)}")
    if not 0 < args.rate <= 500 or not 0 < args.window < LB_POOL:
        p.error(f"--rate must be in (0, 500], --window in 1..{LB_POOL - 1}")
    if args.minutes <= 0 or args.minutes > 24 * 60 or args.sample_every < 1:
        p.error("--minutes in (0, 1440], --sample-every at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench.soak needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    clean_up_on_signals()
    phase = args.minutes * 60 / len(args.engine_list)
    warmup = min(args.warmup * 60, WARMUP_SHARE * phase)
    opts = Options(
        seconds=phase,
        warmup=warmup,
        rate=args.rate,
        window=args.window,
        flap_every=args.flap_every,
        sample_every=args.sample_every,
        rss_pct_per_10min=args.rss_pct_per_10min,
        rss_floor_kib_min=args.rss_floor_kib_min,
        fd_slope_per_min=args.fd_slope_per_min,
        fd_tolerance=args.fd_tolerance,
        tracemalloc=args.tracemalloc,
    )
    recorded: dict[str, Any] = {
        "minutes": args.minutes,
        "engines": args.engine_list,
        "rate": args.rate,
        "window": args.window,
        "flap_every": args.flap_every,
        "sample_every": args.sample_every,
        "warmup_min": round(warmup / 60, 2),
        "rss_pct_per_10min": args.rss_pct_per_10min,
        "rss_floor_kib_min": args.rss_floor_kib_min,
        "fd_slope_per_min": args.fd_slope_per_min,
        "fd_tolerance": args.fd_tolerance,
        "tracemalloc": args.tracemalloc,
        "argv": sys.argv[1:] if argv is None else argv,
    }
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {line}", flush=True)

    results: list[dict[str, Any]] = []
    interrupted = False
    try:
        for engine in args.engine_list:
            results.append(run_engine(engine, opts, log))
            log(f"{engine}: {'PASS' if results[-1]['ok'] else 'FAIL'}")
            # after each engine, so that an interrupted run keeps what it measured
            report.write(report.build(results, recorded, time.monotonic() - started, False),
                         args.out_dir)  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: the rack is torn down")
    final = report.build(results, recorded, time.monotonic() - started, interrupted)
    md, js = report.write(final, args.out_dir)
    print()
    print(report.markdown(final))
    print(f"written: {md} and {js}")
    return 0 if final["ok"] else 1
