"""The API process ExaBGP runs for bgpmux:
``python -m bgpmux.engines.exabgp_relay SOCKET [--stop-parent]``.

It copies bytes between ExaBGP and the unix socket bgpmux listens on: its stdin (ExaBGP's JSON
messages and acks) to the socket, and the socket (bgpmux's commands) to its stdout. It never
blocks on one side while the other waits: ExaBGP writes to our stdin with blocking writes and
stops speaking BGP (keepalives included) while such a write is stuck, so stdin is read whenever
it is readable. Only the command direction is bounded: when ExaBGP reads commands slower than
bgpmux sends them, the relay stops reading the socket and bgpmux's writer waits on its drain.

It exits when either side closes; ExaBGP is configured not to respawn it, and bgpmux restarts
ExaBGP when the relay's connection ends. With ``--stop-parent``, when bgpmux goes away (even by
SIGKILL) the relay also sends SIGTERM to ExaBGP, its parent, by PID: an ExaBGP without its API
process would otherwise keep the upstream session up with nobody driving it (ExaBGP 5.0 only
resets the peers then).
Standard library only: it starts once per ExaBGP start.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys

CHUNK = 256 * 1024
MAX_PENDING_COMMANDS = 4 * 1024 * 1024  # stop reading the socket above this


def _write_some(fd: int, pending: bytearray) -> bool:
    """Write what the fd takes now; False once it is closed."""
    try:
        written = os.write(fd, pending)
    except BlockingIOError:
        return True
    except (BrokenPipeError, ConnectionError):
        return False
    del pending[:written]
    return True


def _end_parent(parent: int) -> int:
    """bgpmux closed the socket: ask ExaBGP (our parent, if it still is) to stop too."""
    if parent > 1 and os.getppid() == parent:  # 0 when not asked to
        with contextlib.suppress(OSError):
            os.kill(parent, signal.SIGTERM)
    return 0


def relay(path: str, stop_parent: bool = False) -> int:
    """Connect to bgpmux's socket at ``path`` and copy bytes both ways until a side closes.
    Returns the exit status: 0, or 1 when the socket cannot be reached."""
    parent = os.getppid() if stop_parent else 0
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        print(f"exabgp_relay: cannot connect to {path}: {e}", file=sys.stderr)
        return 1
    sock.setblocking(False)
    stdin, stdout, sock_fd = sys.stdin.fileno(), sys.stdout.fileno(), sock.fileno()
    for fd in (stdin, stdout):
        os.set_blocking(fd, False)
    to_bgpmux = bytearray()  # ExaBGP's output, bound for the socket
    to_exabgp = bytearray()  # bgpmux's commands, bound for ExaBGP
    selector = selectors.DefaultSelector()
    stdin_open = True
    while True:
        # What to wait for is recomputed each pass; registrations are cheap next to the data.
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
        if stdin_open:
            selector.register(stdin, selectors.EVENT_READ)
        sock_events = 0
        if len(to_exabgp) < MAX_PENDING_COMMANDS:
            sock_events |= selectors.EVENT_READ
        if to_bgpmux:
            sock_events |= selectors.EVENT_WRITE
        if sock_events:
            selector.register(sock_fd, sock_events)
        if to_exabgp:
            selector.register(stdout, selectors.EVENT_WRITE)
        if not stdin_open and not to_bgpmux:
            return 0  # ExaBGP is gone and everything it said was delivered
        for key, events in selector.select():
            fd = key.fd
            if fd == stdin:
                try:
                    data = os.read(stdin, CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    stdin_open = False
                to_bgpmux += data
            elif fd == sock_fd:
                if events & selectors.EVENT_READ:
                    try:
                        data = sock.recv(CHUNK)
                    except BlockingIOError:
                        data = None
                    except ConnectionError:
                        return _end_parent(parent)
                    if data == b"":
                        return _end_parent(parent)  # bgpmux closed
                    if data:
                        to_exabgp += data
                if events & selectors.EVENT_WRITE and not _write_some(sock_fd, to_bgpmux):
                    return _end_parent(parent)
            elif fd == stdout and not _write_some(stdout, to_exabgp):
                return 0


def main(argv: list[str]) -> int:
    """The command line (``argv`` with the program name first); returns the exit status, 2 on
    bad usage."""
    args = argv[1:]
    stop_parent = "--stop-parent" in args
    paths = [a for a in args if a != "--stop-parent"]
    if len(paths) != 1:
        print(
            "usage: python -m bgpmux.engines.exabgp_relay SOCKET [--stop-parent]", file=sys.stderr
        )
        return 2
    try:
        return relay(paths[0], stop_parent)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
