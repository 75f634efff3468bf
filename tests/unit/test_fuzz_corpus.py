"""The fuzzer's seeds and every input it kept as a finding (``tests/fuzz/corpus/``,
``tests/fuzz/found/``), replayed through the fuzzer's own checks with every option: a finding,
once fixed, stays fixed. ``make fuzz`` is the search; this is the regression test."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.fuzz import checks, runner, targets
from tests.fuzz.corpus import CORPUS, FOUND, load, replay

SEEDS = sorted(CORPUS.glob("*.hex"))
FOUND_FILES = sorted(p for p in FOUND.glob("*") if p.suffix in (".hex", ".json", ".txt"))


def test_the_corpus_starts_from_the_golden_vectors() -> None:
    names = {path.name for path in SEEDS}
    golden = Path(__file__).parent / "golden"
    assert {f"golden-{path.name}" for path in golden.glob("*.hex")} <= names


@pytest.mark.parametrize("path", SEEDS + FOUND_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_kept_input_passes_every_check(path: Path) -> None:
    replay(load(path))


def test_a_stray_exception_and_a_hang_are_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness itself: anything but ``BGPError`` out of a decoder, and a check that runs
    past its time, are reported (and shrunk) as findings."""

    def broken(body: bytes, *_args: object) -> object:
        raise IndexError("index out of range")

    monkeypatch.setattr(checks, "decode_update", broken)
    with pytest.raises(checks.Finding, match="IndexError"):
        checks.check_update_body(b"\x00\x00\x00\x00", checks.ALL_OPTIONS[0], None)

    def slow(_rng: random.Random, _pool: targets.Pool) -> targets.Draw:
        return targets.Draw("structured", b"", lambda: str(time.sleep(5)))

    monkeypatch.setitem(runner.TARGETS, "slow", targets.Target("slow", 0.0, 1, slow))
    result = runner.run_job(runner.Job("slow", 0, 1, 1, 0.05, ()))
    assert result.finding_count == {"hang": 1} and result.seconds < 2
