"""The four targets, each a mix of input sources, and the pool of inputs they mutate.

- ``framer``: streams of one to four messages (random octets, mutated seeds, encoded random
  values), through ``Framer`` fed whole and in pieces, then every frame decoded.
- ``open``: OPEN bodies (random, mutated seeds, TLV-built, and random ``Open`` values).
- ``update``: UPDATE bodies, decoded with a random ``CodecOptions`` (4-octet AS on or off,
  4096 or 65535) and now and then through an ``AttributeCache``; the same sources, TLV-built
  ones with ADD-PATH identifiers in the NLRI now and then.
- ``export``: ``export.case`` through ``export.check_case``.

Every ``Draw`` carries the check to time and the payload to keep if the check fails.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial

from bgpmux.wire import CodecOptions, Message, encode_message
from bgpmux.wire.constants import HEADER_LEN, MARKER, MAX_EXTENDED_MESSAGE_LEN, MessageType
from bgpmux.wire.messages import AttributeCache

from . import checks, export, mutate, values, wire
from .corpus import Payload, as_message

POOL_LIMIT = 4000


@dataclass
class Pool:
    """What the mutations start from: the seed corpus, then every input of this run that gave
    an outcome not seen before (bounded), by message type."""

    by_type: dict[int, list[bytes]] = field(default_factory=dict)
    every: list[bytes] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    new: list[bytes] = field(default_factory=list)

    def add(self, data: bytes) -> None:
        if len(self.every) >= POOL_LIMIT or len(data) < HEADER_LEN:
            return
        self.every.append(data)
        self.by_type.setdefault(data[18], []).append(data)

    def pick(self, rng: random.Random, kind: int | None = None) -> bytes:
        choices = self.every if kind is None else self.by_type.get(kind) or self.every
        return rng.choice(choices)

    def outcome(self, signature: str, payload: Payload) -> None:
        """Note an outcome; a new one makes ``payload`` (if bytes) a seed for this run."""
        if signature in self.seen:
            return
        self.seen.add(signature)
        if isinstance(payload, bytes):
            self.add(payload)
            self.new.append(payload)


@dataclass(frozen=True)
class Draw:
    source: str
    payload: Payload
    check: Callable[[], str]


def _encoded(rng: random.Random, asn4: bool) -> bytes | None:
    """A random message value, encoded; None for an OPEN whose capabilities pass 255 octets."""
    try:
        return encode_message(
            values.message(rng, asn4), CodecOptions(asn4, MAX_EXTENDED_MESSAGE_LEN)
        )
    except ValueError:
        return None


def _random_message(rng: random.Random) -> bytes:
    size = rng.choice((0, 1, 4, 10, 23, 40, 100, 300))
    kind = rng.choice((1, 2, 3, 4, 5, 0, 6, 255))
    body = rng.randbytes(rng.randint(0, size))
    if rng.random() < 0.3:
        return rng.randbytes(rng.randint(0, HEADER_LEN + size))
    length = HEADER_LEN + len(body) if rng.random() < 0.8 else rng.randrange(1 << 16)
    return MARKER + length.to_bytes(2, "big") + bytes((kind,)) + body


def draw_framer(rng: random.Random, pool: Pool) -> Draw:
    options = rng.choice(checks.ALL_OPTIONS)
    roll = rng.random()
    parts: list[bytes] = []
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        if roll < 0.2:
            parts.append(_random_message(rng))
        elif roll < 0.7:
            parts.append(mutate.mutate(rng, pool.pick(rng), pool.every))
        else:
            parts.append(_encoded(rng, options.asn4) or _random_message(rng))
    if rng.random() < 0.1:
        parts.append(rng.randbytes(rng.randint(1, 30)))
    source = "random" if roll < 0.2 else "mutated" if roll < 0.7 else "structured"
    data = b"".join(parts)
    step = rng.choice([s for s in checks.CUTS if len(data) <= 200 * s] or [checks.CUTS[-1]])
    return Draw(
        source, data, partial(checks.check_stream, data, options, range(0, len(data), step))
    )


def _body(
    rng: random.Random, pool: Pool, kind: int, asn4: bool, build: Callable[[], bytes]
) -> tuple[str, bytes]:
    """A body for the decoder of ``kind``: random, a mutated seed, a mutated encoding of a
    random value, or TLV-built by ``build``."""
    roll = rng.random()
    if roll < 0.15:
        body = rng.randbytes(rng.randint(0, 120))
        if kind == MessageType.OPEN and rng.random() < 0.5:
            body = b"\x04" + body
        return "random", body
    if roll < 0.6:
        seed = pool.pick(rng, kind)
        if roll > 0.45:
            msg = values.open_message(rng) if kind == MessageType.OPEN else values.update(rng, asn4)
            with suppress(ValueError):  # an OPEN past 255 octets of capabilities: keep the seed
                seed = encode_message(msg, CodecOptions(asn4, MAX_EXTENDED_MESSAGE_LEN))
        return "mutated", mutate.mutate(rng, seed, pool.every, start=HEADER_LEN)[HEADER_LEN:]
    return "tlv", build()


def draw_open(rng: random.Random, pool: Pool) -> Draw:
    if rng.random() < 0.15:
        msg = values.open_message(rng)
        return Draw("structured", (msg, True), partial(_value_check, msg, checks.ALL_OPTIONS[0]))
    source, body = _body(rng, pool, MessageType.OPEN, True, partial(wire.open_body, rng))
    payload = as_message(MessageType.OPEN, body)
    return Draw(source, payload, partial(checks.check_open_body, body))


def draw_update(rng: random.Random, pool: Pool) -> Draw:
    options = rng.choice(checks.ALL_OPTIONS)
    if rng.random() < 0.15:
        msg = values.update(rng, options.asn4)
        return Draw("structured", (msg, options.asn4), partial(_value_check, msg, options))
    build = partial(wire.update_body, rng, options.asn4)
    source, body = _body(rng, pool, MessageType.UPDATE, options.asn4, build)
    cache = AttributeCache() if rng.random() < 0.3 else None
    payload = as_message(MessageType.UPDATE, body)
    return Draw(source, payload, partial(checks.check_update_body, body, options, cache))


def _value_check(msg: Message, options: CodecOptions) -> str:
    checks.check_value(msg, options)
    return f"value {type(msg).__name__}"


def draw_export(rng: random.Random, _pool: Pool) -> Draw:
    case = export.case(rng)
    return Draw("structured", case, partial(export.check_case, case))


@dataclass(frozen=True)
class Target:
    name: str
    share: float  # of the inputs of a default run
    chunk: int  # inputs per job
    draw: Callable[[random.Random, Pool], Draw]


TARGETS = {
    t.name: t
    for t in (
        Target("framer", 0.25, 25_000, draw_framer),
        Target("open", 0.20, 25_000, draw_open),
        Target("update", 0.54, 25_000, draw_update),
        Target("export", 0.01, 500, draw_export),
    )
}
