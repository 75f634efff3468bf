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


def _size(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def metric_label(metric: str) -> tuple[str, str]:
    """(label, unit) of a metric key."""
    if metric == "latency_p50_ms":
        return "1 route, added latency, median", "ms"
    if metric == "latency_p99_ms":
        return "1 route, added latency, p99", "ms"
    kind, *rest = metric.rsplit("_", 2)
    if metric.startswith("rss_mib_"):
        return f"peak RSS at {_size(int(metric.rsplit('_', 1)[1]))}", "MiB"
    family, n = rest
    size = f"{_size(int(n))} {'IPv4' if family == 'v4' else 'IPv6'}"
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
        if metric.startswith("rss"):
            return (3, 0, 0)
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
        f"Each cell: median (min-max) over {runs} run(s); times in seconds from the injector's "
        f"`birdc enable/disable` until the receiver's imported count first reached the target "
        f"(polled 5, 15, 35 and 75 ms after the trigger, then every {report['poll_ms']:g} ms, so "
        "times below ~0.1 s are at the polling resolution and their ratios say little); "
        "latency from packet timestamps (tcpdump on the injector's and the ToR's veth), "
        f"{report['probes']} probes per run; peak RSS is VmHWM of the mux's processes "
        "(bgpmux: itself plus its children) after the IPv4 phases.",
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
            "Peak RSS per process (MiB, last run): "
            + "; ".join(
                f"{MUX_LABELS.get(m, m)}: " + ", ".join(f"{k} {v:g}" for k, v in d.items())
                for m, d in rss_notes.items()
            ),
        ]
    for note in report.get("notes", []):
        lines += ["", note]
    lines += ["", f"Wall time of the whole benchmark: {report['elapsed_s']:.0f} s."]
    return "\n".join(lines) + "\n"


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
