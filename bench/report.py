"""Summaries (min / median / max over runs), ratios of bgpmux to BIRD and GoBGP from the same
run, the machine, and the Markdown and JSON outputs."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import shutil
import statistics
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .measure import RunResult

MUX_LABELS = {
    "direct": "injector → ToR direct (floor)",
    "bird": "BIRD",
    "gobgp": "GoBGP",
    "bgpmux-native": "bgpmux native",
    "bgpmux-exabgp": "bgpmux exabgp",
    "bgpmux-gobgp": "bgpmux gobgp engine",
}
REFERENCES = ("bird", "gobgp")
CANDIDATES = ("bgpmux-native", "bgpmux-exabgp", "bgpmux-gobgp")


def size_label(n: int) -> str:
    """10000 -> "10k", 1000000 -> "1M"."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def metric_label(metric: str) -> tuple[str, str]:
    """(label, unit) of a metric key."""
    if metric == "latency_p50_ms":
        return "1 route, added latency, median", "ms"
    if metric == "latency_p99_ms":
        return "1 route, added latency, p99", "ms"
    if metric == "rss_idle_mib":
        return "idle RSS, sessions up, no route", "MiB"
    if metric.startswith("rss_mib_"):
        n = size_label(int(metric.rsplit("_", 1)[1]))
        return f"peak RSS (VmHWM) after the {n} IPv4 phases", "MiB"
    if metric.startswith("rss_slope_"):
        a, b = (size_label(int(x)) for x in metric.split("_")[2:])
        return f"memory per route, peak RSS slope {a} → {b}", "B/route"
    kind, family, n = metric.rsplit("_", 2)
    size = f"{size_label(int(n))} {'IPv4' if family == 'v4' else 'IPv6'}"
    what = {
        "up": "up (client → ToR)",
        "down": "withdrawn (client → ToR)",
        "rev": "ToR → client",
        "revdown": "ToR withdrawn → client",
    }[kind]
    return f"{size} {what}", "s"


def metric_order(metrics: set[str]) -> list[str]:
    def key(metric: str) -> tuple[int, int, int]:
        if metric.startswith("latency"):
            return (0, 0, 0 if "p50" in metric else 1)
        if metric == "rss_idle_mib":
            return (3, 0, 0)
        if metric.startswith("rss_mib_"):
            return (4, int(metric.rsplit("_", 1)[1]), 0)
        if metric.startswith("rss_slope_"):
            return (5, int(metric.rsplit("_", 1)[1]), 0)
        kind, family, n = metric.rsplit("_", 2)
        kinds = ["up", "down", "rev", "revdown"]
        return (1 if family == "v4" else 2, int(n), kinds.index(kind))

    return sorted((m for m in metrics if m != "aborted" and m != "setup"), key=key)


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(results: list[RunResult], muxes: list[str]) -> dict[str, Any]:
    metrics = metric_order({m for r in results for m in (*r.values, *r.failures)})
    summary: dict[str, dict[str, Any]] = {}
    for mux in muxes:
        runs = [r for r in results if r.mux == mux]
        summary[mux] = {}
        for metric in metrics:
            values = [r.values[metric] for r in runs if metric in r.values]
            reasons = [
                r.failures.get(metric) or r.failures.get("setup")
                for r in runs
                if metric not in r.values
            ]
            entry: dict[str, Any] = {"n": len(values), "runs": len(runs)}
            if values:
                entry.update(_stats(values))
            failures = [x for x in reasons if x]
            if failures:
                entry["failures"] = failures
            summary[mux][metric] = entry
    ratios: dict[str, dict[str, Any]] = {}
    for cand in CANDIDATES:
        for ref in REFERENCES:
            if cand not in muxes or ref not in muxes:
                continue
            per_metric = {}
            for metric in metrics:
                pairs = []
                for r in results:
                    if r.mux != cand or metric not in r.values:
                        continue
                    other = next((o for o in results if o.mux == ref and o.run == r.run), None)
                    if other is not None and other.values.get(metric):
                        pairs.append(r.values[metric] / other.values[metric])
                if pairs:
                    per_metric[metric] = {"n": len(pairs), **_stats(pairs)}
            ratios[f"{cand}/{ref}"] = per_metric
    return {"metrics": metrics, "summary": summary, "ratios": ratios}


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"
    if unit == "ms":
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if unit == "B/route":
        return f"{value:.0f}"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _cell(entry: dict[str, Any], unit: str, runs_wanted: int) -> str:
    if not entry.get("n"):
        failures = entry.get("failures") or ["not measured"]
        reason = failures[0]
        return reason if reason.startswith("not measured") else f"failed: {reason}"
    text = f"{_fmt(entry['median'], unit)} ({_fmt(entry['min'], unit)}-{_fmt(entry['max'], unit)})"
    if entry["n"] == 1:
        text = _fmt(entry["median"], unit)
    if entry["n"] < runs_wanted:
        text += f" [{entry['n']} of {runs_wanted} runs]"
    return text


def _ratio_cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    if entry["n"] == 1:
        return f"{entry['median']:.2f}"
    return f"{entry['median']:.2f} ({entry['min']:.2f}-{entry['max']:.2f})"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    muxes: list[str] = report["muxes"]
    summary = report["summary"]
    machine = report["machine"]
    runs = report["runs_requested"]
    lines = [
        f"# bgpmux benchmark — {report['date']}",
        "",
        f"Machine: {machine['nproc']} CPUs, {machine['cpu_model']}, kernel {machine['kernel']}, "
        f"Python {machine['python']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
        + ".",
        "",
        f"Each cell: median (min-max) over {runs} run(s); times in seconds from the "
        "`birdc enable/disable` of the sender (the injector, or the ToR for the reverse "
        "direction) until the receiver's imported count first reached the target, polled over "
        f"BIRD's control socket (`show protocols all`) every {report['poll_ms']:g} ms, the "
        f"interval widened to {_pct(report)}% of the time elapsed in the phase "
        f"({_resolution(report)}); "
        "latency from packet timestamps (tcpdump on the injector's and the ToR's veth), "
        f"{report['probes']} probes per run. Memory: the mux's processes (bgpmux: itself plus "
        "its ExaBGP child and relay, or its gobgpd; BIRD, GoBGP: the daemon); idle RSS is "
        "VmRSS once both sessions are Established, before any route; peak RSS is the sum of "
        "each process's VmHWM (its peak so far) read after all four phases of an IPv4 size "
        "(up, withdrawn, ToR → client, withdrawn), so the 1M row is the peak over every phase "
        "up to 1M; memory per route is the difference of two peak rows divided by the "
        "difference of their route counts (e.g. (peak at 1M - peak at 100k) / 900k).",
        "",
        "| figure | " + " | ".join(MUX_LABELS.get(m, m) for m in muxes) + " |",
        "|---|" + "---|" * len(muxes),
    ]
    for metric in report["metrics"]:
        label, unit = metric_label(metric)
        cells = []
        for mux in muxes:
            wanted = report["runs_per_mux"].get(mux, runs)
            entry = summary[mux].get(metric, {})
            cells.append(
                _escape(_cell(entry, unit, wanted))
                if mux != "direct" or not metric.startswith("rss")
                else "-"
            )
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    ratio_keys = [k for k in report["ratios"]]
    if ratio_keys:
        lines += [
            "",
            "Ratios (bgpmux ÷ reference, computed per run from the same run; median (min-max); "
            "below 1 means bgpmux is faster / smaller):",
            "",
            "| figure | "
            + " | ".join(
                k.replace("bgpmux-gobgp", "gobgp engine")
                .replace("bgpmux-", "")
                .replace("/", " ÷ ")
                .replace("bird", "BIRD")
                .replace("÷ gobgp", "÷ GoBGP")
                for k in ratio_keys
            )
            + " |",
            "|---|" + "---|" * len(ratio_keys),
        ]
        for metric in report["metrics"]:
            label, unit = metric_label(metric)
            cells = [_ratio_cell(report["ratios"][k].get(metric)) for k in ratio_keys]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rss_notes = report.get("rss_detail", {})
    if rss_notes:
        lines += [
            "",
            "RSS per process (MiB, last run; idle is VmRSS, the sizes VmHWM): "
            + "; ".join(
                f"{MUX_LABELS.get(m, m)}: "
                + ", ".join(
                    f"{tag if tag == 'idle' else size_label(int(tag))} "
                    + " + ".join(f"{k} {v:g}" for k, v in d.items())
                    for tag, d in per_tag.items()
                )
                for m, per_tag in rss_notes.items()
            ),
        ]
    for note in report.get("notes", []):
        lines += ["", note]
    lines += ["", f"Wall time of the whole benchmark: {report['elapsed_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def _pct(report: dict[str, Any]) -> str:
    return f"{report['args'].get('poll_rel_pct', 0):g}"


def _resolution(report: dict[str, Any]) -> str:
    """How late a time can be, in words, with the median cost of one poll."""
    rel = report["args"].get("poll_rel_pct", 0) / 100
    poll = report["poll_ms"]
    costs = [r["notes"]["poll_cost_ms"] for r in report["results"] if "poll_cost_ms" in r["notes"]]
    cost = ""
    if costs:
        wall, p99 = (statistics.median(c[k] for c in costs) for k in ("median", "p99"))
        cpu = statistics.median(c.get("cpu_mean", 0.0) for c in costs)
        cost = (
            f"; one poll took {wall:.2f} ms (median; p99 {p99:.1f} ms, while the receiving "
            f"BIRD is busy importing) and {cpu:.2f} ms of the bench's CPU"
        )
    if rel <= 0:
        return f"a time is late by at most {poll:g} ms plus one poll{cost}"
    knee = poll / 1000 / rel
    return (
        f"a time is late by at most {poll:g} ms up to {knee:.2g} s and {rel * 100:g}% beyond, "
        f"plus one poll{cost}"
    )


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": daemon_versions(),
    }


def _first_match(argv: list[str], pattern: str) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def daemon_versions() -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    versions = {
        "bgpmux": dist("bgpmux"),
        "BIRD": _first_match(["bird", "--version"], r"version\s+(\S+)"),
        "GoBGP": _first_match(["gobgpd", "--version"], r"version\s+(\S+)"),
        "ExaBGP": dist("exabgp"),
        "tcpdump": _first_match(["tcpdump", "--version"], r"tcpdump version\s+(\S+)"),
    }
    commit = _first_match(
        ["git", "-C", str(Path(__file__).resolve().parent.parent), "rev-parse", "--short", "HEAD"],
        r"(\w+)",
    )
    if commit not in ("unknown", "not installed"):
        versions["bgpmux"] += f" (commit {commit})"
    return versions


def build_report(
    results: list[RunResult],
    muxes: list[str],
    *,
    args: dict[str, Any],
    runs_per_mux: dict[str, int],
    elapsed: float,
    notes: list[str],
) -> dict[str, Any]:
    data = summarize(results, muxes)
    rss_detail = {}
    for r in results:
        if "rss_detail_mib" in r.notes:
            rss_detail[r.mux] = r.notes["rss_detail_mib"]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": args,
        "muxes": muxes,
        "runs_requested": args["runs"],
        "runs_per_mux": runs_per_mux,
        "poll_ms": args["poll_ms"],
        "probes": args["probes"],
        **data,
        "rss_detail": rss_detail,
        "notes": notes,
        "elapsed_s": elapsed,
        "results": [asdict(r) for r in results],
    }
