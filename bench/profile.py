"""Optional: sample bgpmux (and its children) with py-spy while the phases run (`--profile DIR`).

py-spy writes collapsed stacks (`--format raw`: "frame;frame;... count" per line); `summarize`
turns them into the functions with the most samples, self and inclusive.
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from lab.netns import end_process


def py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy attached by PID; stopped with SIGINT so that it writes its output."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(out.with_suffix(".log"), "wb")  # noqa: SIM115 (closed in stop)
        argv = [binary, "record", "--pid", str(pid), "--subprocesses", "--rate", str(rate)]
        argv += ["--format", "raw", "--output", str(out), "--nonblocking"]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                end_process(self.proc)
        self.log.close()


def summarize(path: Path, top: int = 25) -> str:
    """The busiest functions of a collapsed-stack file, as text."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        self_counts[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            incl_counts[frame] += count
    if not total:
        return f"{path}: no samples"
    lines = [f"{path.name}: {total} samples", "  self:"]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in self_counts.most_common(top)]
    lines.append("  inclusive (bgpmux frames):")
    ours = [(f, n) for f, n in incl_counts.most_common() if "bgpmux/" in f and "/lab/" not in f]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in ours[:top]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "function (/path/to/file.py:123)" -> "function (bgpmux/core.py:123)"
    if "(" in frame and "/" in frame:
        name, _, where = frame.partition(" (")
        where = where.rstrip(")")
        for anchor in ("bgpmux/", "site-packages/", "lib/python"):
            if anchor in where:
                where = where[where.index(anchor) :]
                break
        return f"{name} ({where})"
    return frame
