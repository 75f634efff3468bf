"""The soak's outputs: ``soak-latest.json`` (every sample, every verdict) and ``soak-latest.md``."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from ..report import machine_info


def build(
    engines: list[dict[str, Any]], args: dict[str, Any], elapsed: float, interrupted: bool
) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": args,
        "elapsed_s": round(elapsed, 1),
        "interrupted": interrupted,
        "ok": bool(engines) and not interrupted and all(e.get("ok") for e in engines),
        "engines": engines,
    }


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    args = report["args"]
    lines = [
        f"# bgpmux soak — {report['date']}",
        "",
        f"Machine: {m['nproc']} CPUs, {m['cpu_model']}, kernel {m['kernel']}, Python "
        f"{m['python']}. Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        f"{args['minutes']:g} min of churn in total, split across {', '.join(args['engines'])}: "
        f"{args['rate']:g} LB addresses added and {args['rate']:g} removed per second "
        f"({args['window']} active at once), Calico flapping every {args['flap_every']:g} s "
        "(alternately `birdc disable`/`enable` and SIGKILL + `bird -R`), sampled every "
        f"{args['sample_every']:g} s. Slopes are least-squares fits after a "
        f"{args['warmup_min']:g}-min warm-up; a series fails when its slope is over the "
        "threshold over the whole window and over its second half. RSS threshold: "
        f"{args['rss_pct_per_10min']:g}% of the series' median per 10 min (at least "
        f"{args['rss_floor_kib_min']:g} KiB/min); descriptors: {args['fd_slope_per_min']:g} "
        f"fds/min, and the last minute's median at most {args['fd_tolerance']} above the "
        "first's.",
        "",
        *(
            [
                "bgpmux ran under tracemalloc (`--tracemalloc`): a diagnosis run, its RSS holds "
                "tracemalloc's own records and is not comparable.",
                "",
            ]
            if args.get("tracemalloc")
            else []
        ),
        f"**Result: {'PASS' if report['ok'] else 'FAIL'}**"
        + (" (interrupted)" if report["interrupted"] else "")
        + f"; wall time {report['elapsed_s'] / 60:.1f} min.",
    ]
    for engine in report["engines"]:
        lines += _engine(engine)
    return "\n".join(lines) + "\n"


def _engine(e: dict[str, Any]) -> list[str]:
    rates = e.get("rates", {})
    samples = e.get("samples", [])
    lines = [
        "",
        f"## engine {e['engine']}: {'PASS' if e.get('ok') else 'FAIL'}",
        "",
        f"{len(samples)} samples over {_num(samples[-1]['t_s'] / 60 if samples else None)} min. "
        f"Churn done: {_num(rates.get('adds_per_s'))} adds/s and "
        f"{_num(rates.get('removes_per_s'))} removes/s; the ToR received "
        f"{_num(rates.get('tor_updates_per_s'))} updates/s and "
        f"{_num(rates.get('tor_withdraws_per_s'))} withdrawals/s; at most "
        f"{_num(rates.get('max_tor_lb_stale'))} LB prefixes at the ToR more than 2 s after "
        f"their removal in any sample. CPU of the bgpmux process tree: "
        f"{_num(rates.get('cpu_percent'))}% of a core.",
        "",
        "| series | after warm-up | at the end | slope /min (± s.e.) | 2nd half /min "
        "| threshold /min | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in e.get("growth", []):
        unit = g["unit"]
        threshold = "reported only" if g["threshold"] is None else f"{g['threshold']:.1f} {unit}"
        lines.append(
            f"| {g['name']} | {_num(g['first'], 0)} {unit} | {_num(g['last'], 0)} {unit} "
            f"| {_num(g['slope'], 2)} ± {_num(g['stderr'], 2)} {unit} "
            f"| {_num(g['slope_second_half'], 2)} {unit} | {threshold} "
            f"| {'ok' if g['ok'] else '**grows**'} |"
        )
    flaps = e.get("flaps", [])
    if flaps:
        ok = [f for f in flaps if f.get("ok")]
        worst = max((f.get("reestablished_s", 0) for f in ok), default=0)
        lines += [
            "",
            f"Flaps: {len(ok)} of {len(flaps)} came back (slowest re-establishment {worst:.1f} s).",
        ]
    end = e.get("end")
    if end:
        lines += [
            "",
            "End: the ToR's table "
            + ("equals" if end["table_with_lb"]["ok"] else "**differs from**")
            + f" the expected {end['table_with_lb']['expected']} routes; after withdrawing the "
            f"{end['withdrawn']} active LB addresses it "
            + ("holds exactly" if end["table_after_withdraw_all"]["ok"] else "**differs from**")
            + " the pod blocks; Calico "
            + ("has" if end["calico_has_tor_routes"] else "**lacks**")
            + " the ToR's routes; sessions "
            + ("all Established" if end["sessions_ok"] else f"**{end['sessions']}**")
            + ".",
        ]
    trace = e.get("tracemalloc")
    if trace:
        before, after = trace["traced_kib"]
        lines += [
            "",
            f"tracemalloc (bgpmux's Python heap, {before:.0f} KiB after the warm-up, "
            f"{after:.0f} KiB at the end, each after a full collection that found "
            f"{' and '.join(str(n) for n in trace.get('gc_unreachable_before', []))} "
            "unreachable objects); what grew most, by line:",
            "",
            "| KiB | objects | where |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['size_diff_kib']:+.1f} | {r['count_diff']:+d} | `{r['where'][0]}` |"
            for r in trace["by_line"][:10]
        ]
    for failure in e.get("failures", []):
        lines.append(f"- failure: {failure}")
    return lines


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "soak-latest.md", out_dir / "soak-latest.json"
    md.write_text(markdown(report))
    js.write_text(json.dumps(report, indent=1) + "\n")
    return md, js
