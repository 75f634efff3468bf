"""The fuzzer's seeds and every input it kept as a finding (``tests/fuzz/corpus/``,
``tests/fuzz/found/``), replayed through the fuzzer's own checks with every option: a finding,
once fixed, stays fixed. ``make fuzz`` is the search; this is the regression test."""

from __future__ import annotations

from pathlib import Path

import pytest

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
