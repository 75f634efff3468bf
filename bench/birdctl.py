"""A tiny client for BIRD's control socket: cheaper and more precise to poll than `birdc`.

The socket is a file in the daemon's work directory, so it is reachable from the bench process
without entering the daemon's namespace. Replies are lines ``NNNN-text`` (more follows),
``NNNN text`` (the last line of a reply with that code) or `` text`` (continuation); a reply ends
at a line whose code is 0000 or an error (8xxx/9xxx), or at any other final line of a command
that has no 0000 terminator (``enable``/``disable`` end with a final 00xx code).
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

_FINAL = re.compile(rb"^(\d{4}) ", re.MULTILINE)
_ROUTES = re.compile(r"Routes:\s+(\d+) imported")
CONNECT_TIMEOUT = 2.0


class BirdCtlError(RuntimeError):
    pass


class BirdCtl:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._buf = b""

    def connect(self) -> BirdCtl:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                break
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock = sock
        self._buf = b""
        self._read_reply()  # the "0001 BIRD x.y.z ready." greeting
        return self

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> BirdCtl:
        return self if self.sock is not None else self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_reply(self) -> str:
        assert self.sock is not None
        while True:
            # A reply is complete when its last line is a final line (code + space).
            end = self._buf.rfind(b"\n", 0, len(self._buf) - 1) + 1 if self._buf else 0
            last = self._buf[end:]
            if last.endswith(b"\n") and _FINAL.match(last):
                text, self._buf = self._buf, b""
                return text.decode(errors="replace")
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise BirdCtlError(f"{self.path}: BIRD closed the control socket")
            self._buf += chunk

    def cmd(self, command: str) -> str:
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        self.sock.sendall(command.encode() + b"\n")
        reply = self._read_reply()
        for match in _FINAL.finditer(reply.encode()):
            if match.group(1)[:1] in (b"8", b"9"):
                raise BirdCtlError(f"birdc {command!r}: {reply.strip()}")
        return reply

    def imported(self, protocol: str, channel: str = "ipv4") -> int:
        """The channel's imported route count of a BGP protocol (0 while it is down)."""
        text = self.cmd(f"show protocols all {protocol}")
        current = None
        for line in text.splitlines():
            body = line[5:] if line[:4].isdigit() else line
            stripped = body.strip()
            if stripped.startswith("Channel "):
                current = stripped.split()[1]
            elif current == channel:
                match = _ROUTES.search(stripped)
                if match:
                    return int(match.group(1))
        return 0

    def state(self, protocol: str) -> str:
        for line in self.cmd(f"show protocols all {protocol}").splitlines():
            body = line[5:] if line[:4].isdigit() else line
            key, _, value = body.strip().partition(":")
            if key == "BGP state":
                return value.strip()
        return "unknown"
