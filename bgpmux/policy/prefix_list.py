"""Compiled ``accept`` lists: ``prefix [ge N] [le M]`` rules, deny by default."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..wire.constants import AFI, Family
from ..wire.prefix import Prefix


class PrefixRule(Protocol):
    """What the config's parsed ``accept`` entries provide."""

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network: ...
    @property
    def ge(self) -> int | None: ...
    @property
    def le(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class _Compiled:
    shift: int  # address bits below the rule's prefix length
    value: int  # the rule's network, shifted right by ``shift``
    min_len: int
    max_len: int


class PrefixList:
    """Answers whether a prefix matches any rule. An empty list matches nothing."""

    def __init__(self, rules: Iterable[PrefixRule]) -> None:
        self.rules = tuple(rules)
        self._by_afi: dict[int, tuple[_Compiled, ...]] = {}
        for afi, bits in ((AFI.IPV4, 32), (AFI.IPV6, 128)):
            compiled = []
            for rule in self.rules:
                if (rule.network.version == 4) != (afi == AFI.IPV4):
                    continue
                plen = rule.network.prefixlen
                shift = bits - plen
                lo = rule.ge if rule.ge is not None else plen
                hi = rule.le if rule.le is not None else (rule.ge if rule.ge is not None else plen)
                if rule.ge is not None and rule.le is None:
                    hi = bits  # "ge N" alone means N..max, as in BIRD and FRR
                compiled.append(
                    _Compiled(shift, int(rule.network.network_address) >> shift, lo, hi)
                )
            self._by_afi[afi] = tuple(compiled)

    def split(
        self, family: Family, prefixes: Sequence[Prefix]
    ) -> tuple[list[Prefix], list[Prefix]]:
        """(matching, not matching), in order: the batch form of ``matches`` for the hot path."""
        rules = self._by_afi.get(family.afi)
        if not rules:
            return [], list(prefixes)
        accepted: list[Prefix] = []
        refused: list[Prefix] = []
        size = 4 if family.afi == AFI.IPV4 else 16
        from_bytes = int.from_bytes
        if len(rules) == 1:
            rule = rules[0]
            shift, value, lo, hi = rule.shift, rule.value, rule.min_len, rule.max_len
            for prefix in prefixes:
                plen = prefix[0]
                if (
                    lo <= plen <= hi
                    and from_bytes(prefix[1:].ljust(size, b"\0"), "big") >> shift == value
                ):
                    accepted.append(prefix)
                else:
                    refused.append(prefix)
            return accepted, refused
        for prefix in prefixes:
            plen = prefix[0]
            addr = from_bytes(prefix[1:].ljust(size, b"\0"), "big")
            for rule in rules:
                if rule.min_len <= plen <= rule.max_len and addr >> rule.shift == rule.value:
                    accepted.append(prefix)
                    break
            else:
                refused.append(prefix)
        return accepted, refused

    def matches(self, family: Family, prefix: Prefix) -> bool:
        rules = self._by_afi.get(family.afi)
        if not rules:
            return False
        size = 4 if family.afi == AFI.IPV4 else 16
        plen = prefix[0]
        addr = int.from_bytes(prefix[1:].ljust(size, b"\x00"), "big")
        for rule in rules:
            if rule.min_len <= plen <= rule.max_len and addr >> rule.shift == rule.value:
                return True
        return False
