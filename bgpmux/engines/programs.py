"""The programs the engines run (ExaBGP's ``exabgp``, GoBGP's ``gobgpd``): found in PATH, or a
clear error naming the missing one and the fix, raised when the engine starts (the daemon then
fails /healthz with it and exits)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

EXABGP = "exabgp"
EXABGP_FIX = (
    "install bgpmux with its dependencies (`pip install bgpmux` installs ExaBGP 5.0.15 as "
    "`exabgp`) and put that environment's bin directory on PATH, or set engine: native"
)
GOBGPD = "gobgpd"
GOBGPD_FIX = "apt-get install gobgpd (Debian's, 3.10), or set gobgp.external: true"


class MissingProgram(FileNotFoundError):
    """An engine's program is nowhere bgpmux looks for it; the message names it and the fix."""


def find_program(name: str, fix: str, beside: Path | None = None) -> str:
    """The path of the program ``name`` (or ``name`` itself when it holds a '/' and is
    executable): looked up in PATH, then in the directory ``beside`` when given. Raises
    MissingProgram naming the program, where it looked and ``fix``."""
    found = shutil.which(name)
    if found is None and beside is not None:
        found = shutil.which(name, path=str(beside))
    if found is not None:
        return found
    where = f"PATH ({os.environ.get('PATH', os.defpath)})"
    if beside is not None:
        where += f" nor in {beside}"
    raise MissingProgram(f"{name} not found in {where}: {fix}")


def find_exabgp(name: str = EXABGP) -> str:
    """ExaBGP's program ``name``: in PATH (the image puts its venv's bin there), else beside
    this interpreter (an unactivated venv, as in a checkout's ``.venv/bin/bgpmux``). Raises
    MissingProgram."""
    return find_program(name, EXABGP_FIX, Path(sys.executable).parent)


def find_gobgpd(name: str = GOBGPD) -> str:
    """gobgpd's program ``name``, in PATH. Raises MissingProgram."""
    return find_program(name, GOBGPD_FIX)
