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
from .report import size_label as _label
from .scenario import MUXES

RESULTS = Path(__file__).resolve().parent / "results"


DEFAULT_BIG = ("direct", "bird", "bgpmux-native")
_SUFFIX = {"k": 1_000, "m": 1_000_000}


def parse_size(text: str) -> int:
    """A table size: `10000`, `10_000`, `10k`, `1000k`, `1M` or `1m`, `1.5M`. Raises
    ValueError."""
    word = text.strip().replace("_", "").lower()
    scale = _SUFFIX.get(word[-1:], 1) if word else 1
    number = word[:-1] if scale != 1 else word
    value = float(number) * scale if "." in number else int(number) * scale
    if value != int(value) or value < 1:
        raise ValueError(f"not a whole number of routes: {text!r}")
    return int(value)


def _ints(text: str) -> list[int]:
    return [parse_size(x) for x in text.split(",") if x.strip()]


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
    p.add_argument(
        "--sizes",
        default="10k,100k,1M",
        help="IPv4 table sizes: 10000, 10_000, 10k, 1000k, 1M (default 10k,100k,1M); each has "
        "its own address range, at most 1,048,576 routes",
    )
    p.add_argument(
        "--v6-sizes", default="100k", help="IPv6 table sizes (default 100k; '' for none)"
    )
    p.add_argument(
        "--big-sizes-muxes",
        default=",".join(DEFAULT_BIG),
        help="muxes that measure every size; the others skip sizes above --size-cap (default "
        f"{','.join(DEFAULT_BIG)}: GoBGP, the exabgp and the gobgp engines would add minutes "
        "per run at 1M); 'all' for every mux",
    )
    p.add_argument(
        "--size-cap",
        default="100k",
        help="largest size (both families) of a mux not in --big-sizes-muxes (default 100k)",
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
        "--poll-ms",
        type=float,
        default=5.0,
        help="finest count polling interval (default 5 ms; a `show protocols all` poll costs "
        "the bench about 0.13 ms of CPU, 0.2-0.6 ms of wall time)",
    )
    p.add_argument(
        "--poll-rel",
        type=float,
        default=2.0,
        help="... widened to this percentage of the time elapsed in the phase (default 2%%: "
        "every 5 ms up to 0.25 s, 20 ms at 1 s)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample bgpmux and its children with py-spy during the phases "
        "(collapsed stacks to DIR)",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where latest.md/latest.json go (default bench/results, or bench/results/quick with "
        "--quick, which is not tracked, so a quick look never replaces the full results)",
    )
    args = p.parse_args(argv)
    try:
        args.size_list, args.v6_size_list = _ints(args.sizes), _ints(args.v6_sizes)
        args.cap = parse_size(args.size_cap)
    except ValueError as error:
        p.error(f"--sizes, --v6-sizes, --size-cap: {error}")
    if args.quick:
        args.runs, args.size_list, args.v6_size_list = 1, [10_000], [10_000]
    if args.out_dir is None:
        args.out_dir = RESULTS / "quick" if args.quick else RESULTS
    args.mux_list = [m.strip() for m in args.muxes.split(",") if m.strip()]
    if args.v6_muxes is None:
        args.v6_muxes = ",".join(m for m in MUXES if args.quick or m != "bgpmux-exabgp")
    args.v6_list = tuple(m.strip() for m in args.v6_muxes.split(",") if m.strip())
    unknown = [m for m in args.mux_list if m not in MUXES]
    big = args.big_sizes_muxes.strip()
    args.big_list = MUXES if big == "all" else tuple(m.strip() for m in big.split(",") if m)
    unknown += [m for m in (*args.big_list, *args.v6_list) if m not in MUXES]
    if unknown:
        p.error(f"unknown mux {unknown[0]!r}; choose from {', '.join(MUXES)}")
    if args.runs < 1 or args.probes < 1:
        p.error("--runs and --probes must be at least 1")
    if args.poll_ms <= 0 or args.poll_rel < 0:
        p.error("--poll-ms must be positive and --poll-rel not negative")
    args.plan = Plan(
        sizes=args.size_list,
        v6_sizes=args.v6_size_list,
        v6_muxes=args.v6_list,
        size_cap=args.cap,
        big_muxes=args.big_list,
        probes=args.probes,
        poll=args.poll_ms / 1000,
        poll_rel=args.poll_rel / 100,
        profile_dir=args.profile,
    )
    try:
        args.plan.check()
    except ValueError as error:
        p.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    plan: Plan = args.plan
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
    capped = [m for m in args.mux_list if plan.sizes_for(m) != plan.sizes]
    if capped and plan.size_cap is not None:
        notes.append(
            "Sizes above " + _label(plan.size_cap) + " not run for " + ", ".join(capped)
            + " (time budget; --big-sizes-muxes to add)."
        )  # fmt: skip
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
        f"IPv6 sizes {plan.v6_sizes} (above {plan.size_cap} only for "
        f"{', '.join(plan.big_muxes)}); {args.runs} run(s); {plan.probes} latency probes"
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
            "size_cap": plan.size_cap,
            "big_sizes_muxes": list(plan.big_muxes),
            "sizes_per_mux": {
                m: {"ipv4": plan.sizes_for(m), "ipv6": plan.v6_sizes_for(m)} for m in args.mux_list
            },
            "probes": plan.probes,
            "poll_ms": args.poll_ms,
            "poll_rel_pct": args.poll_rel,
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
