"""Runs the targets: each in jobs of a fixed number of inputs, each job seeded from (seed,
target, job number) so that a run is the same for the same seed however the jobs are spread
over processes. Every input's check runs under a SIGALRM timer: one that takes longer is a
hang. A finding is shrunk (bytes and export cases), then handed back to be kept."""

from __future__ import annotations

import multiprocessing
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

from . import checks, export, shrink
from .corpus import Payload, replay
from .targets import TARGETS, Pool

FINDINGS_PER_KEY = 1  # kept per kind of finding (and job); the others are only counted


class Hang(BaseException):
    """An input's check ran past its time (a BaseException, so that no ``except Exception`` in
    the code under test swallows it)."""


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise Hang


@dataclass(frozen=True)
class Job:
    target: str
    index: int
    count: int
    seed: int
    timeout: float
    corpus: tuple[bytes, ...]


@dataclass(frozen=True)
class Found:
    target: str
    source: str
    key: str
    text: str
    payload: Payload
    replays: bool  # whether the kept payload still breaks a check when replayed


@dataclass
class Result:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    outcomes: set[str] = field(default_factory=set)
    findings: list[Found] = field(default_factory=list)
    finding_count: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    new: list[bytes] = field(default_factory=list)

    def merge(self, other: Result) -> None:
        self.inputs += other.inputs
        self.seconds += other.seconds
        self.outcomes |= other.outcomes
        self.findings += other.findings
        self.finding_count += other.finding_count
        self.sources += other.sources
        self.new += other.new


def _shrunk(payload: Payload, key: str) -> tuple[Payload, bool]:
    if isinstance(payload, bytes):
        payload = shrink.shrink_bytes(payload, key, replay)
    elif isinstance(payload, export.ExportCase):
        payload = shrink.shrink_case(payload, key, replay)
    try:
        replay(payload)
    except checks.Finding:
        return payload, True
    return payload, False


def run_job(job: Job) -> Result:
    """``job.count`` inputs of one target."""
    target = TARGETS[job.target]
    rng = random.Random(f"{job.seed}/{job.target}/{job.index}")
    pool = Pool()
    for data in job.corpus:
        pool.add(data)
    result = Result(job.target)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    start = time.perf_counter()
    try:
        for _ in range(job.count):
            draw = target.draw(rng, pool)
            result.sources[draw.source] += 1
            try:
                signal.setitimer(signal.ITIMER_REAL, job.timeout)
                try:
                    signature = draw.check()
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except checks.Finding as finding:
                _record(result, draw.source, finding.key, str(finding), draw.payload)
                continue
            except Hang:
                text = f"hang: the check ran past {job.timeout} s"
                _record(result, draw.source, "hang", text, draw.payload, shrink_it=False)
                continue
            except Exception as exc:  # the harness itself; kept like a finding, to look at
                stray = checks.unexpected(exc, "harness")
                _record(result, draw.source, stray.key, str(stray), draw.payload)
                continue
            pool.outcome(signature, draw.payload)
    finally:
        signal.signal(signal.SIGALRM, previous)
    result.seconds = time.perf_counter() - start
    result.inputs = job.count
    result.outcomes = pool.seen
    result.new = pool.new
    return result


def _record(
    result: Result, source: str, key: str, text: str, payload: Payload, shrink_it: bool = True
) -> None:
    result.finding_count[key] += 1
    if result.finding_count[key] > FINDINGS_PER_KEY:
        return
    replays = True
    if shrink_it:
        payload, replays = _shrunk(payload, key)
    result.findings.append(Found(result.target, source, key, text, payload, replays))


def jobs_for(counts: dict[str, int], seed: int, timeout: float, corpus: list[bytes]) -> list[Job]:
    """The jobs for ``counts`` inputs per target, the slowest targets' jobs first."""
    out = []
    for name, count in counts.items():
        chunk = TARGETS[name].chunk
        for index, start in enumerate(range(0, count, chunk)):
            size = min(chunk, count - start)
            out.append(Job(name, index, size, seed, timeout, tuple(corpus)))
    return sorted(out, key=lambda job: (job.target != "export", job.target, job.index))


def run(jobs: list[Job], processes: int) -> Iterator[Result]:
    """Each job's result, in the order of ``jobs``, over ``processes`` processes."""
    if processes <= 1:
        yield from map(run_job, jobs)
        return
    with multiprocessing.get_context("fork").Pool(processes) as workers:
        yield from workers.imap(run_job, jobs)
