"""A ConfigMap volume written the way the kubelet writes one (its AtomicWriter): each update is
a new ``..<timestamp>`` directory holding the keys, a ``..data_tmp`` symlink to it renamed over
``..data`` (the one atomic step), then the old directory removed. Each key is a symlink
``KEY -> ..data/KEY`` made once, so its path never changes while its content does."""

from __future__ import annotations

import os
from pathlib import Path


class ConfigMapVolume:
    """The volume at ``root`` (created); ``write`` publishes a new version of every key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.generation = 0

    def path(self, key: str) -> Path:
        """Where a container reads ``key``: the symlink through ``..data``."""
        return self.root / key

    def write(self, files: dict[str, str]) -> None:
        """Publish ``files`` (key -> content) as the volume's new version, atomically."""
        self.generation += 1
        stamp = f"..2026_11_30_15_00_{self.generation:02d}.{os.getpid()}"
        new = self.root / stamp
        new.mkdir()
        for key, content in files.items():
            (new / key).write_text(content)
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(stamp, tmp)
        os.rename(tmp, data)
        for key in files:
            if not self.path(key).is_symlink():
                os.symlink(f"..data/{key}", self.path(key))
        if old is not None:
            for leftover in (self.root / old).iterdir():
                leftover.unlink()
            (self.root / old).rmdir()
