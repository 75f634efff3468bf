"""`python -m bench`: every mux, every run, then the table."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .measure import Plan, RunResult, run_once
from .report import build_report, markdown
from .scenario import MUXES

RESULTS = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "").replace("k", "000")) for x in text.split(",") if x]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="bgpmux (engines native, exabgp and gobgp) against BIRD and GoBGP doing the "
        "same job, and the injector straight to the ToR as the floor. Needs root (network "
        "namespaces).",
    )
    p.add_argument("--runs", type=int, default=3, help="runs per mux (default 3)")
    p.add_argument(
        "--quick", action="store_true", help="development: N=10k only (IPv4 and IPv6), 1 run"
    )
    p.add_argument(
        "--muxes", default=",".join(MUXES), help=f"comma-separated subset of {','.join(MUXES)}"
    )
    p.add_argument("--sizes", default="10k,100k", help="IPv4 table sizes (default 10k,100k)")
    p.add_argument(
        "--v6-sizes", default="100k", help="IPv6 table sizes (default 100k; '' for none)"
    )
    p.add_argument(
        "--v6-muxes",
        default=None,
        help="muxes the IPv6 phases run for (default: all but bgpmux-exabgp, whose IPv6 at 100k "
        "would add ~1.5 min per run; with --quick: all)",
    )
    p.add_argument(
        "--exabgp-runs",
        type=int,
        default=None,
        help="runs for bgpmux with engine exabgp (default: --runs); the slow one",
    )
    p.add_argument(
        "--probes", type=int, default=25, help="latency probes per run (default 25, at least 20)"
    )
    p.add_argument(
        "--poll-ms", type=float, default=50.0, help="count polling interval (default 50 ms)"
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample bgpmux and its children with py-spy during the phases "
        "(collapsed stacks to DIR)",
    )
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where latest.md/latest.json go")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.sizes, args.v6_sizes = 1, "10k", "10k"
    args.mux_list = [m.strip() for m in args.muxes.split(",") if m.strip()]
    if args.v6_muxes is None:
        args.v6_muxes = ",".join(m for m in MUXES if args.quick or m != "bgpmux-exabgp")
    args.v6_list = tuple(m.strip() for m in args.v6_muxes.split(",") if m.strip())
    unknown = [m for m in args.mux_list if m not in MUXES]
    if unknown:
        p.error(f"unknown mux {unknown[0]!r}; choose from {', '.join(MUXES)}")
    if args.runs < 1 or args.probes < 1:
        p.error("--runs and --probes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    plan = Plan(
        sizes=_ints(args.sizes),
        v6_sizes=_ints(args.v6_sizes),
        v6_muxes=args.v6_list,
        probes=args.probes,
        poll=args.poll_ms / 1000,
        profile_dir=args.profile,
    )
    runs_per_mux = {m: args.runs for m in args.mux_list}
    if "bgpmux-exabgp" in runs_per_mux and args.exabgp_runs is not None:
        runs_per_mux["bgpmux-exabgp"] = max(1, min(args.runs, args.exabgp_runs))
    notes = []
    skipped_v6 = [m for m in args.mux_list if m not in plan.v6_muxes]
    if plan.v6_sizes and skipped_v6:
        notes.append(
            "IPv6 phases not run for "
            + ", ".join(skipped_v6)
            + " (time budget; --v6-muxes to add)."
        )
    if runs_per_mux.get("bgpmux-exabgp", args.runs) < args.runs:
        notes.append(
            f"bgpmux with engine exabgp ran {runs_per_mux['bgpmux-exabgp']} of {args.runs} runs "
            "(--exabgp-runs) to fit the time budget; its ratios use those runs only."
        )

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    started = time.monotonic()
    log(
        f"bench: muxes {', '.join(args.mux_list)}; IPv4 sizes {plan.sizes}, "
        f"IPv6 sizes {plan.v6_sizes}; {args.runs} run(s); {plan.probes} latency probes"
    )
    results: list[RunResult] = []
    for run in range(1, args.runs + 1):
        for mux in args.mux_list:
            if run > runs_per_mux[mux]:
                continue
            log(f"run {run}/{args.runs}: {mux}")
            results.append(run_once(mux, run, plan, log))
    elapsed = time.monotonic() - started
    report = build_report(
        results,
        args.mux_list,
        args={
            "runs": args.runs,
            "quick": args.quick,
            "sizes": plan.sizes,
            "v6_sizes": plan.v6_sizes,
            "v6_muxes": list(plan.v6_muxes),
            "probes": plan.probes,
            "poll_ms": args.poll_ms,
            "argv": sys.argv[1:] if argv is None else argv,
        },
        runs_per_mux=runs_per_mux,
        elapsed=elapsed,
        notes=notes,
    )
    text = markdown(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "latest.md").write_text(text)
    (args.out_dir / "latest.json").write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    print()
    print(text)
    print(f"written: {args.out_dir / 'latest.md'} and {args.out_dir / 'latest.json'}")
    return 0
