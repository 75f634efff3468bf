"""The check's outputs: ``hitless-latest.json`` (every restart, every gap) and
``hitless-latest.md``; the same table on stdout."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from .run import TARGETS

JUDGED = ("exabgp", "native", "gobgp")  # the BIRD baseline is reported, never judged
TARGET_TITLES = {"pod": "ToR → pod address", "lb": "ToR → LB address",
                 "behind_tor": "node → behind the ToR"}  # fmt: skip


def build(
    results: list[dict[str, Any]],
    args: dict[str, Any],
    elapsed: float,
    interrupted: bool,
    machine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report: PASS (``ok``) when every bgpmux engine run lost nothing and every restart
    settled, every rack (the baseline's too) could run, and the run was not interrupted."""
    if machine is None:
        from ..report import machine_info  # runs the daemons for their versions

        machine = machine_info()
    judged = [r for r in results if r["mux"] in JUDGED]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "args": args,
        "elapsed_s": round(elapsed, 1),
        "interrupted": interrupted,
        "judged": bool(judged),
        "ok": not interrupted
        and all(r.get("ok") for r in judged)
        and all("targets" in r for r in results),  # a baseline that could not run fails too
        "results": results,
    }


def _cell(target: dict[str, Any] | None) -> str:
    if target is None:
        return "-"
    text = f"{target['lost']} / {target['sent']}"
    return text if target["lost"] == 0 else f"**{text}**"


def summary_table(report: dict[str, Any]) -> list[str]:
    """Lost / sent per target per mux, with the verdict."""
    names = [name for name, _, _ in TARGETS]
    lines = [
        "| mux | "
        + " | ".join(TARGET_TITLES[n] for n in names)
        + " | restarts settled | verdict |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for r in report["results"]:
        targets = r.get("targets", {})
        restarts = r.get("restarts", [])
        settled = sum(1 for x in restarts if x.get("settled_s") is not None)
        mux = f"bgpmux {r['mux']}" if r["mux"] in JUDGED else f"{r['mux']} (baseline)"
        verdict = ("PASS" if r.get("ok") else "FAIL") if r["mux"] in JUDGED else "not judged"
        cells = " | ".join(_cell(targets.get(n)) for n in names)
        lines.append(f"| {mux} | {cells} | {settled} / {len(restarts)} | {verdict} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    m, a = report["machine"], report["args"]
    verdict = "PASS" if report["ok"] else "FAIL"
    if not report["judged"] and not report["interrupted"]:
        verdict = "no bgpmux engine measured, nothing judged"
    lines = [
        f"# bgpmux hitless-restart check — {report['date']}",
        "",
        f"Machine: {m['nproc']} CPUs, {m['cpu_model']}, kernel {m['kernel']}, Python "
        f"{m['python']}. Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        f"Per mux: a BIRD ToR (GR helper), bgpmux on the node with a Calico-role BIRD (graceful "
        f"restart) and a MetalLB-role FRR (graceful restart, no listener, `timers connect 1`). "
        f"One ping every 20 ms{_measured_interval(report)} to each target for the whole run, "
        f"while the mux restarts {a['restarts']} times, SIGTERM and SIGKILL alternately; after "
        f"each restart it has {a['settle_timeout']:g} s to settle (every session Established, "
        f"the routes back, `/readyz`), then {a['dwell']:g} s more of pinging. Lost / sent:",
        "",
        *summary_table(report),
        "",
        f"**Result: {verdict}**" + (" (interrupted)" if report["interrupted"] else "")
        + (" (`--report-only`: exit 0 whatever was lost)" if a.get("report_only") else "")
        + f"; wall time {report['elapsed_s'] / 60:.1f} min. The goal is 0 lost everywhere.",
    ]  # fmt: skip
    if any(r.get("restarts") for r in report["results"]):
        lines += [
            "",
            "Below, per restart: the pings lost in gaps that began after it and before the next "
            "one (a gap that lasts past later restarts counts once, at the restart it began in), "
            "and the longest such gap.",
        ]
    for r in report["results"]:
        lines += _details(r)
    return "\n".join(lines) + "\n"


def _measured_interval(report: dict[str, Any]) -> str:
    values = [t["interval_ms"] for r in report["results"]
              for t in r.get("targets", {}).values() if t.get("interval_ms")]  # fmt: skip
    if not values:
        return ""
    low, high = min(values), max(values)
    return f" (`ping -i 0.02`; its timer makes it {low:.1f} to {high:.1f} ms between probes)"


def _details(r: dict[str, Any]) -> list[str]:
    names = [name for name, _, _ in TARGETS]
    verdict = "PASS" if r.get("ok") else "FAIL"
    lines = ["", f"## {r['mux']}: {verdict} ({r.get('duration_s', 0):.0f} s)"]
    restarts = r.get("restarts", [])
    if restarts:
        lines += [
            "",
            "| # | signal | exited after | settled after | "
            + " | ".join(f"lost {TARGET_TITLES[n]} (longest gap)" for n in names)
            + " |",
            "|---|---|---|---|" + "---|" * len(names),
        ]
        for x in restarts:
            settled = "**no**" if x["settled_s"] is None else f"{x['settled_s']} s"
            cells = [_cycle(r.get("targets", {}).get(n), x["n"]) for n in names]
            lines.append(f"| {x['n']} | {x['signal']} | {x['exit_s']} s | {settled} | "
                         + " | ".join(cells) + " |")  # fmt: skip
        before = [_cycle(r.get("targets", {}).get(n), 0) for n in names]
        if any(c != "0" for c in before):
            lines.append("| before the first | | | | " + " | ".join(before) + " |")
    for failure in r.get("failures", []):
        lines.append(f"- {failure}")
    return lines


def _cycle(target: dict[str, Any] | None, n: int) -> str:
    """Lost pings whose gap began during restart ``n``'s cycle, and the longest such gap."""
    if target is None:
        return "-"
    gaps = [g for g in target["gaps"] if g["restart"] == n]
    lost = sum(g["lost"] for g in gaps)
    if not lost:
        return "0"
    return f"{lost} ({max(g['seconds'] for g in gaps):.2f} s)"


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "hitless-latest.md", out_dir / "hitless-latest.json"
    md.write_text(markdown(report))
    js.write_text(json.dumps(report, indent=1) + "\n")
    return md, js
