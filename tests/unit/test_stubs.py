"""scripts/gen_stubs.py --check: the committed API stubs match proto/, and drift is caught."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gen_stubs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_stubs", ROOT / "scripts" / "gen_stubs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_match_the_proto() -> None:
    assert gen_stubs().main(["--check"]) == 0


def test_a_changed_proto_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copytree(ROOT / "bgpmux" / "v1", tmp_path / "bgpmux" / "v1")
    module = gen_stubs()
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "PROTO_ROOT", tmp_path / "proto")
    peers = tmp_path / "proto" / "bgpmux" / "v1" / "peers.proto"
    peers.write_text(
        peers.read_text().replace("uint64 flaps = 17;", "uint64 flaps = 17;\n  string x = 18;")
    )
    assert module.main(["--check"]) == 1
    assert "bgpmux/v1/peers_pb2.py: differs from the .proto" in capsys.readouterr().err
    assert module.main([]) == 0  # regenerated
    assert module.main(["--check"]) == 0
