"""Prefix rules (``prefix [ge N] [le M]``, as in BIRD and FRR) and compiled lists of them,
deny by default: the one matcher behind every ``accept`` list."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..wire.constants import AFI, IPV4_UNICAST, IPV6_UNICAST, Family
from ..wire.prefix import Prefix

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PrefixRule:
    """``prefix [ge N] [le M]``: a route matches if it lies inside ``network`` with a length in
    ``min_len..max_len``. Without ge/le only ``network`` itself matches (as in BIRD and FRR)."""

    network: IPNetwork
    ge: int | None = None
    le: int | None = None

    @property
    def min_len(self) -> int:
        """The shortest prefix length (bits) that matches: ``ge``, else the network's."""
        return self.ge if self.ge is not None else self.network.prefixlen

    @property
    def max_len(self) -> int:
        """The longest prefix length (bits) that matches: ``le``; else with ``ge`` the
        family's maximum (32 or 128), without it the network's."""
        if self.le is not None:
            return self.le
        return self.network.max_prefixlen if self.ge is not None else self.network.prefixlen

    def matches(self, net: IPNetwork) -> bool:
        """Whether ``net`` matches this rule alone (the same matcher as ``PrefixList``)."""
        family = IPV4_UNICAST if net.version == 4 else IPV6_UNICAST
        wire = bytes((net.prefixlen,)) + net.network_address.packed[: (net.prefixlen + 7) // 8]
        return PrefixList([self]).matches(family, wire)

    def __str__(self) -> str:
        ge = f" ge {self.ge}" if self.ge is not None else ""
        le = f" le {self.le}" if self.le is not None else ""
        return f"{self.network}{ge}{le}"

    @classmethod
    def parse(cls, text: str) -> PrefixRule:
        """Parse ``prefix [ge N] [le M]``; raises ValueError saying what is wrong."""
        words = text.split()
        if not words:
            raise ValueError("empty prefix rule")
        try:
            network = ipaddress.ip_network(words[0])
        except ValueError as e:
            raise ValueError(f"{words[0]!r}: {e}") from None
        bounds: dict[str, int] = {}
        rest = words[1:]
        if len(rest) % 2:
            raise ValueError(f"{text!r} is not 'prefix [ge N] [le M]'")
        for key, num in zip(rest[::2], rest[1::2], strict=True):
            if key not in ("ge", "le") or key in bounds or not num.isdigit():
                raise ValueError(f"{text!r} is not 'prefix [ge N] [le M]'")
            bounds[key] = int(num)
        rule = cls(network, bounds.get("ge"), bounds.get("le"))
        if not network.prefixlen <= rule.min_len <= rule.max_len <= network.max_prefixlen:
            raise ValueError(
                f"{text!r}: need {network.prefixlen} <= ge <= le <= {network.max_prefixlen}"
            )
        return rule


@dataclass(frozen=True, slots=True)
class _Compiled:
    shift: int  # address bits below the rule's prefix length
    value: int  # the rule's network, shifted right by ``shift``
    min_len: int
    max_len: int


# Per count of significant bits (1-7): a ``bytes.translate`` table clearing the rest.
_KEEP_HIGH = {
    bits: bytes(b & (0xFF << (8 - bits)) & 0xFF for b in range(256)) for bits in range(1, 8)
}


def _all_match(rule: _Compiled, size: int, prefixes: Sequence[Prefix]) -> bool:
    """Whether every one of ``prefixes`` (wire form, ``size``-octet addresses) matches
    ``rule``, checked in bulk for a batch of one prefix length; False where that is not so or
    cannot be told that way. Over the join of the prefixes, each octet the rule fixes is one
    strided slice compared at once, so no step runs per prefix in Python."""
    first = prefixes[0]
    plen, step, count = first[0], len(first), len(prefixes)
    rule_len = size * 8 - rule.shift
    if not (rule.min_len <= plen <= rule.max_len and rule_len <= plen):
        return False
    joined = b"".join(prefixes)
    # Wire form: a length octet says its prefix's size, so equal length octets every ``step``
    # octets (and the total) mean every prefix is this long.
    if len(joined) != count * step or joined[::step] != first[:1] * count:
        return False
    network = (rule.value << rule.shift).to_bytes(size, "big")
    for octet in range(rule_len >> 3):
        if joined[1 + octet :: step] != network[octet : octet + 1] * count:
            return False
    spare = rule_len & 7
    if spare:
        octet = rule_len >> 3
        column = joined[1 + octet :: step].translate(_KEEP_HIGH[spare])
        if column != network[octet : octet + 1] * count:
            return False
    return True


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
                shift = bits - rule.network.prefixlen
                value = int(rule.network.network_address) >> shift
                compiled.append(_Compiled(shift, value, rule.min_len, rule.max_len))
            self._by_afi[afi] = tuple(compiled)

    def split(
        self, family: Family, prefixes: Sequence[Prefix]
    ) -> tuple[list[Prefix], list[Prefix]]:
        """(matching, not matching), each in input order: the batch form of ``matches``."""
        rules = self._by_afi.get(family.afi)
        if not rules:
            return [], list(prefixes)
        accepted: list[Prefix] = []
        refused: list[Prefix] = []
        size = 4 if family.afi == AFI.IPV4 else 16
        from_bytes = int.from_bytes
        if len(rules) == 1:
            rule = rules[0]
            if len(prefixes) > 1 and _all_match(rule, size, prefixes):
                return list(prefixes), []
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
        """Whether ``prefix`` (wire form: length octet, then address octets) matches a rule
        of ``family``'s address family."""
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
