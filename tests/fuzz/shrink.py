"""Makes a finding small before it is kept: drops runs of octets (halves, then quarters, down
to single octets) from a byte input, and cuts down the prefixes and attribute lists of an
export case, for as long as the same finding (by ``Finding.key``) still comes out. Bounded by
a number of tries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from bgpmux.wire.constants import HEADER_LEN

from .checks import Finding
from .export import ExportCase

TRIES = 400
T = TypeVar("T")


def _same(check: Callable[[T], object], candidate: T, key: str) -> bool:
    try:
        check(candidate)
    except Finding as finding:
        return finding.key == key
    except Exception:
        return False
    return False


def _relength(data: bytes) -> bytes:
    if len(data) < HEADER_LEN:
        return data
    return data[:16] + min(len(data), 0xFFFF).to_bytes(2, "big") + data[18:]


def shrink_bytes(data: bytes, key: str, check: Callable[[bytes], object]) -> bytes:
    """The smallest ``data`` found that still raises the finding ``key`` through ``check``;
    the 19-octet header is kept (its length is made right after every cut)."""
    tries = 0
    size = max((len(data) - HEADER_LEN) // 2, 1)
    while size >= 1 and tries < TRIES:
        pos = HEADER_LEN
        while pos < len(data) and tries < TRIES:
            candidate = _relength(data[:pos] + data[pos + size :])
            tries += 1
            if _same(check, candidate, key):
                data = candidate
            else:
                pos += size
        size //= 2
    return data


def _lengths(size: int) -> list[int]:
    """``size`` less a half, a quarter, an eighth... down to one less."""
    out, cut = [], size // 2
    while cut >= 1:
        out.append(size - cut)
        cut //= 2
    return out


def _shorter(items: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return [items[:keep] for keep in _lengths(len(items))]


def shrink_case(case: ExportCase, key: str, check: Callable[[ExportCase], object]) -> ExportCase:
    """``case`` with its prefixes and its attribute lists (and the ASes and octets in them)
    cut down while ``key`` still comes out."""
    for _ in range(TRIES // 20):
        before = case
        for prefixes in _shorter(case.prefixes):
            if _same(check, smaller := replace(case, prefixes=prefixes), key):
                case = smaller
                break
        for name in ("communities", "large_communities", "other", "as_path"):
            for part in _shorter(getattr(case.attributes, name)):
                change: dict[str, Any] = {name: part}
                smaller = replace(case, attributes=replace(case.attributes, **change))
                if _same(check, smaller, key):
                    case = smaller
                    break
        for index, (kind, asns) in enumerate(case.attributes.as_path):
            for part in _shorter(asns):
                path = list(case.attributes.as_path)
                path[index] = (kind, part)
                smaller = replace(case, attributes=replace(case.attributes, as_path=tuple(path)))
                if _same(check, smaller, key):
                    case = smaller
                    break
        for index, (flags, code, value) in enumerate(case.attributes.other):
            for keep in _lengths(len(value)):
                other = list(case.attributes.other)
                other[index] = (flags, code, value[:keep])
                smaller = replace(case, attributes=replace(case.attributes, other=tuple(other)))
                if _same(check, smaller, key):
                    case = smaller
                    break
        if case == before:
            break
    return case
