"""The export path under large attribute sets: ``pack_announce``, ``pack_withdraw`` and
``pack_end_of_rib`` as the exporter and the native engine call them.

Each case is one attribute set (many communities or large communities, long AS paths, big
unknown optional transitive attributes), sized from well under to well past the peer's maximum
(4096, or 65535 with RFC 8654), sometimes aimed at leaving only a few octets for NLRI, with a
next hop and up to a few thousand prefixes. Every message must be within the maximum, decode
to exactly these attributes and next hop, and announce (or withdraw) at least one prefix; every
prefix must be announced once or reported in ``too_large``, and only if it could not fit.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace

from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, CodecOptions, Family, Framer, PathAttributes
from bgpmux.wire.constants import MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN
from bgpmux.wire.messages import AttributeCache, MpReach, Update, decode_body, encode_update
from bgpmux.wire.packing import nlri_room, pack_announce, pack_end_of_rib, pack_withdraw

from . import values
from .checks import Finding, unexpected

# pack_announce always gives MP_REACH_NLRI the extended length (4-octet header); the tightest
# encoding of a short one takes 3. A prefix refused for that one octet is not a finding.
_MP_SLACK = 1


@dataclass(frozen=True)
class ExportCase:
    """One call of the packers: what the exporter would pass for one attribute set."""

    family: Family
    attributes: PathAttributes
    next_hop: bytes
    prefixes: tuple[bytes, ...]
    asn4: bool
    max_len: int


def _large_attributes(rng: random.Random, asn4: bool, budget: int) -> PathAttributes:
    """Canonical attributes of roughly ``budget`` octets, spread over a random mix."""
    parts = [rng.random() for _ in range(4)]
    share = [budget * p / sum(parts) for p in parts]
    size = 4 if asn4 else 2
    asns = int(share[0] // size)
    path: list[tuple[int, tuple[int, ...]]] = []
    if asns:
        path.append((2, tuple(values.asn(rng) for _ in range(asns))))
        if rng.random() < 0.3:  # an AS_SET after it (at most 255: sets are not split)
            path.append((1, tuple(values.asn(rng) for _ in range(rng.randint(1, 255)))))
    other: tuple[tuple[int, int, bytes], ...] = ()
    if share[3] >= 4:
        count = rng.randint(1, 3)
        codes = rng.sample(values.UNKNOWN_ATTRIBUTES, count)
        other = tuple(
            (values.PARTIAL_OPTIONAL_TRANSITIVE, code, rng.randbytes(int(share[3] / count)))
            for code in codes
        )
    return PathAttributes(
        origin=rng.randint(0, 2),
        as_path=tuple(path),
        med=values.u32(rng) if rng.random() < 0.5 else None,
        local_pref=values.u32(rng) if rng.random() < 0.3 else None,
        atomic_aggregate=rng.random() < 0.2,
        aggregator=(values.asn(rng), rng.randbytes(4)) if rng.random() < 0.2 else None,
        communities=tuple(values.u32(rng) for _ in range(int(share[1] // 4))),
        large_communities=tuple(
            (values.u32(rng), values.u32(rng), values.u32(rng)) for _ in range(int(share[2] // 12))
        ),
        other=other,
    )


def case(rng: random.Random) -> ExportCase:
    """A random case; its attribute set from a tenth of the maximum to past what any attribute
    can hold (over 65535 octets in one of them, now and then)."""
    fam = IPV4_UNICAST if rng.random() < 0.6 else IPV6_UNICAST
    max_len = rng.choice((MAX_MESSAGE_LEN, MAX_EXTENDED_MESSAGE_LEN))
    asn4 = rng.random() < 0.7
    roll = rng.random()
    if roll < 0.4:
        budget = rng.uniform(0.0, 0.9) * max_len
    elif roll < 0.8:
        budget = rng.uniform(0.9, 1.1) * max_len
    elif roll < 0.97:
        budget = rng.uniform(1.1, 1.5) * max_len
    else:
        budget = rng.uniform(1.0, 1.3) * 4 * MAX_EXTENDED_MESSAGE_LEN
    attrs = _large_attributes(rng, asn4, int(budget))
    next_hop = rng.randbytes(4 if fam == IPV4_UNICAST else rng.choice((16, 32)))
    if fam == IPV4_UNICAST and rng.random() < 0.1:
        next_hop = rng.randbytes(8)  # through MP_REACH_NLRI, as a route learned that way
    if rng.random() < 0.2:
        attrs = _aim(rng, attrs, fam, next_hop, asn4, max_len)
    count = rng.choice((1, 2, 3, 10, 50)) if rng.random() < 0.8 else rng.randint(100, 3000)
    prefixes = {values.prefix(rng, fam) for _ in range(count)}
    return ExportCase(fam, attrs, next_hop, tuple(sorted(prefixes)), asn4, max_len)


def _aim(
    rng: random.Random,
    attrs: PathAttributes,
    fam: Family,
    next_hop: bytes,
    asn4: bool,
    max_len: int,
) -> PathAttributes:
    """``attrs`` padded with one more unknown attribute so as to leave about 0 to 18 octets for
    NLRI: where a /32 or a /128 no longer fits but a shorter prefix may."""
    try:
        extra = nlri_room(fam, attrs, next_hop, asn4, max_len) - rng.randint(-2, 18)
    except (ValueError, struct.error):  # beyond what any message holds: pack_announce's to see
        return attrs
    if extra < 3:
        return attrs
    size = extra - 3 if extra - 3 <= 255 else extra - 4
    used = {code for _f, code, _v in attrs.other}
    code = next(c for c in values.UNKNOWN_ATTRIBUTES if c not in used)
    pad = (values.PARTIAL_OPTIONAL_TRANSITIVE, code, rng.randbytes(size))
    return replace(attrs, other=(*attrs.other, pad))


def _decode(
    case: ExportCase, data: bytes, what: str, cache: AttributeCache | None = None
) -> Update:
    if len(data) > case.max_len:
        raise Finding(
            f"{what}: a message of {len(data)} octets, over the maximum {case.max_len}",
            f"{what}: over the maximum",
        )
    options = CodecOptions(asn4=case.asn4, max_message_len=case.max_len)
    try:
        [(kind, body)] = Framer(case.max_len).feed(data)
        msg = decode_body(kind, body, options, cache)
    except Exception as exc:
        raise unexpected(exc, f"{what}: decoding what we packed") from exc
    if not isinstance(msg, Update) or msg.treat_as_withdraw is not None or msg.notes:
        raise Finding(
            f"{what}: packed {data.hex()[:80]}… decodes to {msg!r}"[:600], f"{what}: decodes wrong"
        )
    return msg


def _fits_alone(case: ExportCase, prefix: bytes) -> bool:
    """Whether one UPDATE, encoded as tightly as the codec can, carries ``prefix`` alone (only
    its length matters)."""
    if case.family == IPV4_UNICAST and len(case.next_hop) == 4:
        update = Update(attributes=replace(case.attributes, next_hop=case.next_hop), nlri=(prefix,))
        slack = 0
    else:
        reach = MpReach(case.family, case.next_hop, (prefix,))
        update = Update(attributes=replace(case.attributes, next_hop=None), mp_reach=reach)
        slack = _MP_SLACK
    huge = CodecOptions(asn4=case.asn4, max_message_len=1 << 30)
    try:
        return len(encode_update(update, huge)) + slack <= case.max_len
    except (ValueError, struct.error):  # an attribute or the attribute list past 65535 octets
        return False


def check_announce(case: ExportCase) -> str:
    try:
        messages, too_large = pack_announce(
            case.family, case.attributes, case.next_hop, case.prefixes, case.asn4, case.max_len
        )
    except Exception as exc:
        raise unexpected(exc, "pack_announce") from exc
    announced: list[bytes] = []
    ipv4 = case.family == IPV4_UNICAST and len(case.next_hop) == 4
    want = replace(case.attributes, next_hop=case.next_hop if ipv4 else None)
    cache = AttributeCache()  # thousands of messages, one attribute set: decoded once
    for data in messages:
        msg = _decode(case, data, "pack_announce", cache)
        groups = list(msg.announcements())
        if not groups or list(msg.withdrawals()):
            raise Finding(
                f"pack_announce: an UPDATE announcing nothing: {data.hex()[:120]}",
                "pack_announce: empty",
            )
        for family, attrs, next_hop, nlri in groups:
            if (family, attrs, next_hop) != (case.family, want, case.next_hop):
                raise Finding(
                    f"pack_announce: sent {family} {next_hop.hex()} {attrs!r}"[:600],
                    "pack_announce: changed",
                )
            announced += nlri
    if sorted(announced + too_large) != sorted(case.prefixes):
        raise Finding(
            f"pack_announce: {len(case.prefixes)} prefixes in, {len(announced)} announced and"
            f" {len(too_large)} too large out",
            "pack_announce: lost",
        )
    fits = {size: _fits_alone(case, b"\x00" * size) for size in {len(p) for p in too_large}}
    for prefix in too_large:
        if fits[len(prefix)]:
            raise Finding(
                f"pack_announce: {prefix.hex()} reported too large, but it fits",
                "pack_announce: fits",
            )
    return f"announce {len(messages) > 1:d}{bool(too_large):d}{not messages:d}"


def check_withdraw(case: ExportCase) -> None:
    try:
        messages = pack_withdraw(case.family, case.prefixes, case.max_len)
    except Exception as exc:
        raise unexpected(exc, "pack_withdraw") from exc
    withdrawn: list[bytes] = []
    for data in messages:
        msg = _decode(case, data, "pack_withdraw")
        groups = list(msg.withdrawals())
        if not groups or list(msg.announcements()) or msg.end_of_rib() is not None:
            raise Finding(
                f"pack_withdraw: an UPDATE withdrawing nothing: {data.hex()[:120]}",
                "pack_withdraw: empty",
            )
        for family, prefixes in groups:
            if family != case.family:
                raise Finding(
                    f"pack_withdraw: withdrew in {family}, not {case.family}",
                    "pack_withdraw: family",
                )
            withdrawn += prefixes
    if sorted(withdrawn) != sorted(case.prefixes):
        raise Finding(
            f"pack_withdraw: {len(case.prefixes)} in, {len(withdrawn)} withdrawn",
            "pack_withdraw: lost",
        )
    if _decode(case, pack_end_of_rib(case.family), "EoR").end_of_rib() != case.family:
        raise Finding(f"pack_end_of_rib({case.family}) is not an End-of-RIB")


def check_case(case: ExportCase) -> str:
    check_withdraw(case)
    return check_announce(case)
