"""Decoded attribute sets by the bytes they arrived as (the interning of ``decode_update``)."""

from __future__ import annotations

from .attributes import PathAttributes


class AttributeCache:
    """Decoded attribute sets by their received bytes, so that a peer that sends 100k prefixes
    with one attribute set costs one ``PathAttributes`` (and one decode). Owned by whoever
    decodes a peer's UPDATEs (the ``Session``); bounded: past ``limit`` entries it starts over
    (only sharing is lost, values are immutable)."""

    __slots__ = ("_entries", "_plain", "limit")

    def __init__(self, limit: int = 100_000) -> None:
        self._entries: dict[tuple[bool, bytes], PathAttributes] = {}
        # Whole attribute blocks without MP_REACH/MP_UNREACH that decoded cleanly (no RFC 7606
        # notes) and carry ORIGIN and AS_PATH: the attributes, and whether NEXT_HOP was there.
        self._plain: dict[tuple[bool, bytes], tuple[PathAttributes, bool]] = {}
        self.limit = limit

    def __len__(self) -> int:
        return len(self._entries) + len(self._plain)

    def get(self, key: tuple[bool, bytes]) -> PathAttributes | None:
        """The attributes decoded for ``(asn4, attribute bytes)``, if cached."""
        return self._entries.get(key)

    def put(self, key: tuple[bool, bytes], attrs: PathAttributes) -> None:
        """Cache ``attrs`` under ``key``, emptying the cache first if it is full."""
        if len(self._entries) + len(self._plain) >= self.limit:
            self.clear()
        self._entries[key] = attrs

    def get_plain(self, key: tuple[bool, bytes]) -> tuple[PathAttributes, bool] | None:
        """For ``(asn4, whole attribute block)`` seen before without MP attributes: the
        attributes and whether NEXT_HOP is among them; None if not cached."""
        return self._plain.get(key)

    def put_plain(self, key: tuple[bool, bytes], attrs: PathAttributes, next_hop: bool) -> None:
        """Cache a whole block (see ``get_plain``), emptying the cache first if it is full."""
        if len(self._entries) + len(self._plain) >= self.limit:
            self.clear()
        self._plain[key] = (attrs, next_hop)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self._plain.clear()
