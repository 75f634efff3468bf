"""Generate the API's Python stubs (bgpmux/v1/) from proto/bgpmux/v1/*.proto, or check them.

The stubs are committed, so that installing bgpmux needs neither grpcio-tools nor a build step;
pyproject.toml pins grpcio-tools together with the protobuf runtime they are generated for.
``--check`` (run by ``make lint``) regenerates into a temporary directory and fails, listing the
files, when the committed ones differ: edit the .proto, then run this script without it.

    python scripts/gen_stubs.py [--check]
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("bgpmux/v1")  # the .proto package bgpmux.v1, relative to both roots
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out: Path) -> list[Path]:
    """Run protoc (grpcio-tools) with the mypy-protobuf plugins; returns the files written,
    relative to ``out``."""
    protos = sorted((PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    plugins = Path(sys.executable).parent
    (out / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
        f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}", f"--grpc_python_out={out}",
        f"--mypy_out={out}", f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"protoc failed:\n{done.stderr}")
    return sorted(p.relative_to(out) for p in (out / PACKAGE_DIR).iterdir() if p.is_file())


def committed() -> list[Path]:
    return sorted(
        p.relative_to(ROOT) for p in (ROOT / PACKAGE_DIR).iterdir() if p.name.endswith(SUFFIXES)
    )


def main(argv: list[str]) -> int:
    check = "--check" in argv
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fresh = generate(out)
        if not check:
            for old in committed():
                (ROOT / old).unlink()
            for rel in fresh:
                shutil.copyfile(out / rel, ROOT / rel)
            print(f"wrote {len(fresh)} files to {PACKAGE_DIR}/")
            return 0
        problems = [f"{rel}: missing (run scripts/gen_stubs.py)" for rel in fresh
                    if not (ROOT / rel).exists()]  # fmt: skip
        problems += [f"{rel}: differs from the .proto (run scripts/gen_stubs.py)"
                     for rel in fresh if (ROOT / rel).exists()
                     and not filecmp.cmp(out / rel, ROOT / rel, shallow=False)]  # fmt: skip
        problems += [f"{rel}: no .proto makes it (remove it)" for rel in committed()
                     if rel not in fresh]  # fmt: skip
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
