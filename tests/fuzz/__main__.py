"""``python -m tests.fuzz [--inputs N] [--seed S] [--jobs J] [--timeout T] [--grow]``

Runs the targets (``targets.TARGETS``), one million inputs by default, prints inputs per second
per target and in all, keeps what it finds under ``tests/fuzz/found/`` (and, with ``--grow``,
inputs that gave new outcomes under ``tests/fuzz/corpus/``), and exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

from .corpus import CORPUS, FOUND, dump, load_corpus, save
from .runner import FINDINGS_PER_KEY, Found, Result, jobs_for, run
from .targets import TARGETS

GROW_LIMIT = 200  # seed files a --grow run adds at most
GROW_LARGEST = 1024  # octets; larger new inputs are not worth a corpus file


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per input at most")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--grow", action="store_true", help="add new-outcome inputs to corpus/")
    return parser.parse_args(argv)


def _counts(total: int, names: list[str]) -> dict[str, int]:
    share = sum(TARGETS[n].share for n in names)
    counts = {n: int(total * TARGETS[n].share / share) for n in names}
    counts[names[0]] += total - sum(counts.values())
    return counts


def _show(found: Found) -> str:
    suffix, text = dump(found.payload)
    shown = text.strip().replace("\n", " ")
    shown = shown if len(shown) <= 300 else f"{shown[:300]}… ({len(shown)} characters)"
    note = "" if found.replays else "\n    (does not break a check when replayed: look at it)"
    detail = found.text if len(found.text) <= 600 else found.text[:600] + "…"
    return f"  [{found.target}/{found.source}] {detail}\n    input{suffix}: {shown}{note}"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    names = [n for n in args.targets.split(",") if n]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        print(f"unknown target(s): {', '.join(unknown)}; there are {', '.join(TARGETS)}")
        return 2
    corpus = load_corpus()
    counts = _counts(args.inputs, names)
    print(
        f"fuzz: {args.inputs:,} inputs, seed {args.seed}, {args.jobs} process(es), "
        f"{len(corpus)} seeds, at most {args.timeout:g} s an input"
    )
    start = time.perf_counter()
    totals = {n: Result(n) for n in names}
    for result in run(jobs_for(counts, args.seed, args.timeout, corpus), args.jobs):
        totals[result.target].merge(result)
    wall = time.perf_counter() - start

    print(f"{'target':8} {'inputs':>10} {'inputs/s':>9} {'outcomes':>8} {'findings':>8}  sources")
    for name, r in totals.items():
        rate = r.inputs / r.seconds if r.seconds else 0.0
        sources = ", ".join(f"{s} {c:,}" for s, c in sorted(r.sources.items()))
        findings = sum(r.finding_count.values())
        print(
            f"{name:8} {r.inputs:>10,} {rate:>9,.0f} {len(r.outcomes):>8} {findings:>8}  {sources}"
        )
    inputs = sum(r.inputs for r in totals.values())
    print(f"{'total':8} {inputs:>10,} {inputs / wall:>9,.0f}   in {wall:.1f} s (wall clock)")

    found, kept = [], Counter[tuple[str, str]]()
    for item in (f for r in totals.values() for f in r.findings):
        kept[item.target, item.key] += 1
        if kept[item.target, item.key] <= FINDINGS_PER_KEY:
            found.append(item)
    if args.grow:
        new = list(
            dict.fromkeys(d for r in totals.values() for d in r.new if len(d) <= GROW_LARGEST)
        )
        step = max(len(new) / GROW_LIMIT, 1.0)  # evenly over the run: every target, every job
        chosen = [new[int(i * step)] for i in range(min(len(new), GROW_LIMIT))]
        for data in chosen:
            save(CORPUS, "grown", data)
        print(f"corpus: {len(chosen)} new seeds (of {len(new)} new outcomes) under {CORPUS}")
    if not found:
        print(f"OK: no findings in {inputs:,} inputs")
        return 0
    print(
        f"FAIL: {sum(sum(r.finding_count.values()) for r in totals.values()):,} findings "
        f"of {sum(len(r.finding_count) for r in totals.values())} kinds; kept under {FOUND}:"
    )
    for item in found:
        path = save(FOUND, item.target, item.payload)
        print(f"{path.name}\n{_show(item)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
