"""The corpus and the findings, as files under ``tests/fuzz/``, and how each is replayed.

``corpus/*.hex``: whole BGP messages (header included), one per file as one line of hex, like
the golden vectors: the seeds the mutations start from. ``found/`` holds what broke an
invariant, named ``<target>-<hash>``:

- ``.hex``: bytes, a stream or one message (whose body is what the OPEN or UPDATE decoder got);
- ``.json``: an ``ExportCase``, its fields as JSON (octet strings in hex);
- ``.txt``: a message value that did not come back through the codec: ``asn4 True`` or
  ``asn4 False`` on the first line, its ``repr`` on the second.

``load`` reads one back and ``replay`` runs every check on it, as
``tests/unit/test_fuzz_corpus.py`` does for them all.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path
from typing import Any

from bgpmux import wire
from bgpmux.wire import Family, Message, PathAttributes
from bgpmux.wire.constants import HEADER_LEN, MARKER

from . import checks, export

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
FOUND = HERE / "found"
Payload = bytes | export.ExportCase | tuple[Message, bool]
_ENUM_REPR = re.compile(r"<\w+\.\w+: (\d+)>")


def read_hex(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


def load_corpus(folder: Path = CORPUS) -> list[bytes]:
    """Every seed, in file-name order (so that a run is the same for the same seed)."""
    return [read_hex(path) for path in sorted(folder.glob("*.hex"))]


def as_message(kind: int, body: bytes) -> bytes:
    """``body`` under a BGP header of type ``kind`` (length capped at 65535): how a body that
    broke a decoder is kept, so that every ``.hex`` file reads the same way."""
    length = min(HEADER_LEN + len(body), 0xFFFF)
    return MARKER + struct.pack("!HB", length, kind) + body


def dump(payload: Payload) -> tuple[str, str]:
    """(file suffix, file text) for ``payload``."""
    if isinstance(payload, bytes):
        return ".hex", payload.hex() + "\n"
    if isinstance(payload, export.ExportCase):
        return ".json", case_to_json(payload)
    msg, asn4 = payload
    return ".txt", f"asn4 {asn4}\n{msg!r}\n"


def load_value(text: str) -> tuple[Message, bool]:
    """A ``.txt`` finding back as (message, asn4)."""
    first, _, rest = text.partition("\n")
    names = {name: getattr(wire, name) for name in wire.__all__}
    value = eval(_ENUM_REPR.sub(r"\1", rest), {"__builtins__": {}}, names)  # our own files
    return value, first.split()[1] == "True"


def save(folder: Path, stem: str, payload: Payload) -> Path:
    """``payload`` as ``<stem>-<hash><suffix>`` in ``folder``; its path."""
    suffix, text = dump(payload)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{hashlib.sha1(text.encode()).hexdigest()[:10]}{suffix}"
    path.write_text(text)
    return path


def load(path: Path) -> Payload:
    """The payload kept in ``path`` (``.hex``, ``.json`` or ``.txt``)."""
    if path.suffix == ".hex":
        return read_hex(path)
    if path.suffix == ".json":
        return case_from_json(path.read_text())
    if path.suffix == ".txt":
        return load_value(path.read_text())
    raise ValueError(f"{path}: not a kept input")


def replay(payload: Payload) -> None:
    """Every check on a kept payload, with every option; raises ``Finding`` if it still
    breaks one."""
    if isinstance(payload, bytes):
        checks.check_bytes(payload)
    elif isinstance(payload, export.ExportCase):
        export.check_case(payload)
    else:
        msg, asn4 = payload
        checks.check_value(msg, checks.wide(asn4))


def case_to_json(case: export.ExportCase) -> str:
    a = case.attributes
    attributes: dict[str, Any] = {
        "origin": a.origin,
        "as_path": [[kind, list(asns)] for kind, asns in a.as_path],
        "next_hop": a.next_hop.hex() if a.next_hop is not None else None,
        "med": a.med,
        "local_pref": a.local_pref,
        "atomic_aggregate": a.atomic_aggregate,
        "aggregator": [a.aggregator[0], a.aggregator[1].hex()] if a.aggregator else None,
        "communities": list(a.communities),
        "large_communities": [list(c) for c in a.large_communities],
        "other": [[flags, code, value.hex()] for flags, code, value in a.other],
    }
    doc = {
        "family": list(case.family),
        "next_hop": case.next_hop.hex(),
        "asn4": case.asn4,
        "max_len": case.max_len,
        "prefixes": [p.hex() for p in case.prefixes],
        "attributes": attributes,
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


def case_from_json(text: str) -> export.ExportCase:
    doc = json.loads(text)
    a = doc["attributes"]
    attributes = PathAttributes(
        origin=a["origin"],
        as_path=tuple((kind, tuple(asns)) for kind, asns in a["as_path"]),
        next_hop=bytes.fromhex(a["next_hop"]) if a["next_hop"] is not None else None,
        med=a["med"],
        local_pref=a["local_pref"],
        atomic_aggregate=a["atomic_aggregate"],
        aggregator=(a["aggregator"][0], bytes.fromhex(a["aggregator"][1]))
        if a["aggregator"]
        else None,
        communities=tuple(a["communities"]),
        large_communities=tuple(tuple(c) for c in a["large_communities"]),
        other=tuple((f, c, bytes.fromhex(v)) for f, c, v in a["other"]),
    )
    return export.ExportCase(
        Family(*doc["family"]),
        attributes,
        bytes.fromhex(doc["next_hop"]),
        tuple(bytes.fromhex(p) for p in doc["prefixes"]),
        doc["asn4"],
        doc["max_len"],
    )
