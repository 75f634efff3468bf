"""The API's unix socket: where it may be created, with which modes, and its removal.

Whoever can replace the socket can answer ``bgpmux status`` in bgpmux's place, so the socket's
directory must be one that only root or bgpmux's user can change, and the socket is mode 0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("bgpmux.api")
SOCKET_MODE = 0o600  # only bgpmux's user (root in the DaemonSet) may ask
DIRECTORY_MODE = 0o700  # of the socket's directory, when bgpmux creates it


class ApiPathError(OSError):
    """The API cannot listen at ``api.listen``; the message names the field and says why."""


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a socket"


def _check_directory(directory: Path) -> None:
    """Create ``directory`` with mode 0700 when it is missing; refuse (ApiPathError) one that
    another user could change: whoever can replace the socket can answer ``bgpmux status``
    in bgpmux's place. An existing directory's mode is the operator's and is left alone."""
    try:
        directory.mkdir(mode=DIRECTORY_MODE, parents=True)
        os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise ApiPathError(f"api.listen: cannot create {directory}: {exc.strerror}") from None
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise ApiPathError(f"api.listen: {directory} is not a directory")
    if info.st_uid not in (0, os.geteuid()):
        raise ApiPathError(
            f"api.listen: {directory} belongs to uid {info.st_uid} (neither root nor bgpmux's"
            " user), who could replace the socket"
        )
    # With the sticky bit (as /tmp) others can write the directory but not remove or rename
    # what bgpmux put there.
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not info.st_mode & stat.S_ISVTX:
        raise ApiPathError(
            f"api.listen: {directory} is writable by its group or others (mode"
            f" {stat.S_IMODE(info.st_mode):04o}), who could replace the socket; use a directory"
            " only its owner can write (bgpmux creates a missing one with mode 0700)"
        )


def clear_path(path: Path) -> None:
    """Make ``path`` ready to bind: its directory checked (created with mode 0700 when
    missing), a socket left there by an earlier run removed. Raises ApiPathError naming
    ``api.listen`` when ``path`` holds anything else or its directory is unsafe."""
    _check_directory(path.parent)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ApiPathError(
            f"api.listen: {path} is {_kind(mode)}; bgpmux replaces only a socket"
            " (left by an earlier run): remove it or choose another path"
        )
    try:
        path.unlink()
    except OSError as exc:
        msg = f"api.listen: cannot remove the old socket {path}: {exc.strerror}"
        raise ApiPathError(msg) from None


@contextlib.contextmanager
def socket_umask() -> Iterator[None]:
    """While in it, files are created with no access for group and others: the socket gRPC
    binds is mode 0600 from the start, never open to others until a chmod."""
    old = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(old)


def secure_bound(path: Path) -> tuple[int, int]:
    """After the bind: set ``path``'s mode to 0600 and return its (st_dev, st_ino), to tell
    later whether the path still holds our socket. Raises ApiPathError."""
    try:
        os.chmod(path, SOCKET_MODE)
        info = os.lstat(path)
    except OSError as exc:
        raise ApiPathError(f"api.listen: cannot bind {path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise ApiPathError(f"api.listen: {path} is not the socket bgpmux bound")
    return (info.st_dev, info.st_ino)


def remove_ours(path: Path, bound: tuple[int, int] | None) -> None:
    """Remove the socket at ``path`` unless it is no longer the one bound (``bound``: its
    st_dev and st_ino): another process took the path since."""
    with contextlib.suppress(FileNotFoundError):
        info = os.lstat(path)
        if bound == (info.st_dev, info.st_ino):
            path.unlink(missing_ok=True)
        elif bound is not None:
            log.warning("api.listen: %s is no longer our socket; left in place", path)
