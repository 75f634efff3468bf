"""Logging setup: text for people, JSON lines for pipelines; every peer's lines name the peer.

Attach the peer with ``peer_logger(name, role)`` (or ``extra={"peer": ..., "role": ...}``); both
formats show it: text as ``[peer=calico]`` before the message, JSON as ``peer`` / ``role`` keys.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

_PEER_FIELDS = ("peer", "role")


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [peer=NAME] message``, the peer tag only when the record has one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(peer_tag)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as one text line (more with a traceback)."""
        peer = getattr(record, "peer", None)
        record.peer_tag = f"[peer={peer}] " if peer is not None else ""
        return super().format(record)


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ISO 8601), level, logger, msg, then peer, role
    and exc when present."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _PEER_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send all logs to ``stream`` (stderr) at ``level`` in ``fmt`` ("text" or "json").

    Safe to call again (on reload): it replaces only the handler it installed itself. Raises
    ValueError for an unknown level or format.
    """
    levelno = logging.getLevelNamesMapping().get(level.upper())
    if levelno is None:
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("bgpmux")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "bgpmux"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)
    # watchfiles logs "N change(s) detected" at INFO on every touch of a watched file; bgpmux
    # logs the reload itself.
    logging.getLogger("watchfiles").setLevel(max(levelno, logging.WARNING))


class PeerLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds ``peer`` and ``role`` to every record, keeping any ``extra`` the caller passes."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge the adapter's peer and role into ``extra``; the caller's keys win."""
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def peer_logger(name: str, role: str, logger: str = "bgpmux.peer") -> PeerLoggerAdapter:
    """A logger whose lines name the peer; ``role`` is "client" or "upstream"."""
    return PeerLoggerAdapter(logging.getLogger(logger), {"peer": name, "role": role})


class Throttle:
    """Lets a repeated log line through at most once per ``interval`` seconds for each key, and
    counts the ones it held back (a flood of refused connections must not flood the log)."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """At ``now`` (seconds): None to hold the line back, else how many were held back
        since the last one let through."""
        if now < self._next.get(key, -1.0):
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._next[key] = now + self.interval
        return self._held.pop(key, 0)
