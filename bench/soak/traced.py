"""bgpmux under tracemalloc, for ``python -m bench.soak --tracemalloc``.

``python -m bench.soak.traced DIR run -c FILE`` runs bgpmux with its arguments; each SIGUSR2
runs a full garbage collection (how many unreachable objects it found goes to ``gc-N.json``)
and writes a snapshot to ``DIR/snapshot-N.pickle`` (through a temporary name, so a reader never
sees half a file). ``compare`` lists where the allocations that grew between two snapshots were
made. tracemalloc makes bgpmux slower and bigger: a diagnosis, not a measurement.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

FRAMES = 12
TOP = 15
IGNORED = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>", "<unknown>")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    taken = 0

    def dump(signum: int, frame: FrameType | None) -> None:
        nonlocal taken
        taken += 1
        path = out / f"snapshot-{taken}.pickle"
        # Reference cycles (asyncio transports, protocols and tasks of closed connections) wait
        # for the collector's oldest generation; what a full collection frees is not a leak,
        # but how much was waiting is worth knowing.
        unreachable = gc.collect()
        (out / f"gc-{taken}.json").write_text(json.dumps({"unreachable": unreachable}))
        tracemalloc.take_snapshot().dump(str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)

    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR2, dump)
    sys.argv = ["bgpmux", *sys.argv[2:]]
    runpy.run_module("bgpmux", run_name="__main__", alter_sys=True)


def compare(first: Path, second: Path) -> dict[str, Any]:
    """The TOP growths by line and by traceback, KiB and object counts."""
    filters = [tracemalloc.Filter(False, name) for name in (*IGNORED, tracemalloc.__file__)]
    old = tracemalloc.Snapshot.load(str(first)).filter_traces(filters)
    new = tracemalloc.Snapshot.load(str(second)).filter_traces(filters)

    def rows(key: str) -> list[dict[str, Any]]:
        out = []
        for stat in new.compare_to(old, key)[:TOP]:
            frames = [f"{f.filename}:{f.lineno}" for f in stat.traceback]
            out.append(
                {
                    "size_diff_kib": round(stat.size_diff / 1024, 1),
                    "count_diff": stat.count_diff,
                    "size_kib": round(stat.size / 1024, 1),
                    "where": frames[-6:] if key == "traceback" else frames[:1],
                }
            )
        return out

    total_old = sum(s.size for s in old.statistics("filename"))
    total_new = sum(s.size for s in new.statistics("filename"))
    unreachable = []
    for snapshot in (first, second):
        meta = snapshot.with_name(
            snapshot.name.replace("snapshot-", "gc-").replace(".pickle", ".json")
        )
        unreachable.append(json.loads(meta.read_text())["unreachable"] if meta.exists() else None)
    return {
        "gc_unreachable_before": unreachable,
        "traced_kib": [round(total_old / 1024, 1), round(total_new / 1024, 1)],
        "by_line": rows("lineno"),
        "by_traceback": rows("traceback"),
    }


if __name__ == "__main__":
    main()
