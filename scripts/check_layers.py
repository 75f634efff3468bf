"""The layering of the bgpmux package, checked from its source (run by `make test`).

Rules:
1. No import cycle between the package's top-level parts (``bgpmux/wire``, ``bgpmux/core``,
   ``bgpmux/config.py``, ...).
2. The pure layers import only what lies below them: ``wire`` nothing, ``session`` and ``rib``
   only ``wire``, ``policy`` only ``wire`` and ``rib``.
3. The sans-IO layers (those four, and the core but for its asyncio runner) never import
   asyncio, threads or a clock (``time``).
4. No module is over 500 lines.

Exit status 0 when every rule holds; otherwise 1, with each violation on a line of its own.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "bgpmux"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
MAX_LINES = 500
BELOW = {  # rule 2: what each pure layer may import of the package
    "wire": set(),
    "session": {"wire"},
    "rib": {"wire"},
    "policy": {"wire", "rib"},
}
IO_MODULES = {"asyncio", "time", "selectors", "threading"}
SANS_IO_EXEMPT = {"core/runner.py"}  # the core's asyncio glue
GENERATED = "gobgp_api"  # bgpmux/engines/gobgp_api: generated, gitignored


def part_of(module: str) -> str | None:
    """``bgpmux.wire.messages`` -> ``wire``; None outside the package."""
    names = module.split(".")
    if names[0] != PACKAGE or len(names) < 2:
        return None
    return names[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    names = list(rel.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def imports_of(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # "from . import reload" names a module
                yield f"{target}.{alias.name}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def main() -> int:
    problems: list[str] = []
    graph: dict[str, set[str]] = {}
    # GoBGP's API stubs are generated at build time and not ours (scripts/gobgp_stubs.py)
    files = sorted(p for p in ROOT.rglob("*.py") if GENERATED not in p.relative_to(ROOT).parts)
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        part = rel.split("/")[0].removesuffix(".py")
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            problems.append(f"{PACKAGE}/{rel}: {lines} lines (at most {MAX_LINES})")
        sans_io = part in BELOW or (part == "core" and rel not in SANS_IO_EXEMPT)
        for target in imports_of(path):
            other = part_of(target)
            top = target.split(".")[0]
            if sans_io and top in IO_MODULES:
                problems.append(f"{PACKAGE}/{rel}: imports {top} (sans-IO layer)")
            if other is None or other == part or other == "__init__":
                continue
            graph.setdefault(part, set()).add(other)
            if part in BELOW and other not in BELOW[part]:
                problems.append(f"{PACKAGE}/{rel}: {part} imports {target} (above it)")
    cycle = find_cycle(graph)
    if cycle is not None:
        problems.append("import cycle between parts: " + " -> ".join(cycle))
    for problem in sorted(set(problems)):
        print(problem)
    parts = sorted(graph)
    print(
        f"layers: {len(files)} modules in {len(parts)} parts; "
        + ("OK" if not problems else f"{len(set(problems))} problems")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
