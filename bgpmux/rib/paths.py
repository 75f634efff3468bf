"""A path is what one source says about a prefix: attributes, next hop, and who said it.

Paths are interned per (source, attributes, next hop): a client that sends 100k prefixes with
one attribute set costs one ``Path``, shared by every RIB entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.attributes import PathAttributes


@dataclass(frozen=True, slots=True)
class Source:
    """A client or an upstream, with what the decision process needs to know about it."""

    name: str
    is_upstream: bool
    priority: int  # clients: the configured priority; upstreams: minus their config order
    order: int  # position in the config: the last tie-breaker


@dataclass(frozen=True, slots=True, eq=False)
class Path:
    """What ``source`` says about a prefix. ``next_hop``: 4 octets (IPv4), 16 (IPv6) or 32
    (IPv6 global + link-local). Compared by identity: interned paths are shared."""

    source: Source
    attributes: PathAttributes
    next_hop: bytes


class PathInterner:
    """Hands out one shared ``Path`` per distinct (source, attributes, next hop). Past
    ``limit`` distinct paths the cache is emptied and sharing starts again."""

    def __init__(self, limit: int = 50_000) -> None:
        self._paths: dict[tuple[str, PathAttributes, bytes], Path] = {}
        self._limit = limit

    def get(self, source: Source, attributes: PathAttributes, next_hop: bytes) -> Path:
        """The shared ``Path`` for these values, made if needed (or if ``source`` was
        replaced by a new one of the same name)."""
        key = (source.name, attributes, next_hop)
        path = self._paths.get(key)
        if path is None or path.source is not source:
            if len(self._paths) >= self._limit:
                self._paths.clear()  # only sharing is lost; paths in the RIBs stay valid
            path = Path(source, attributes, next_hop)
            self._paths[key] = path
        return path
