"""The core's record of each client and upstream, and the handle it holds on a client session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .config import Client
from .policy.prefix_list import PrefixList
from .policy.transforms import ClientExport, RejectReason, Tagger
from .rib.adj_rib_in import AdjRibIn
from .rib.paths import Path, Source
from .wire.constants import Family
from .wire.messages import DecodeOptions, Notification
from .wire.prefix import Prefix


class ClientLink(Protocol):
    """The core's handle on an established client session (provided by the transport)."""

    options: DecodeOptions
    families: tuple[Family, ...]

    def send(self, messages: list[bytes]) -> None: ...
    def shutdown(self, notification: Notification) -> None: ...


@dataclass
class ClientState:
    config: Client
    source: Source
    accept: PrefixList
    tag: Tagger
    export: ClientExport
    rib: AdjRibIn = field(default_factory=AdjRibIn)
    # refused prefixes, with what the client sent, so a policy reload can look at them again
    rejected: dict[tuple[Family, Prefix], tuple[RejectReason, Path | None]] = field(
        default_factory=dict
    )
    link: ClientLink | None = None
    stale_deadline: float | None = None
    awaiting_eor: set[Family] = field(default_factory=set)
    updates_received: int = 0
    cutoffs: int = 0
    flaps: int = 0
    established_at: float | None = None


@dataclass
class UpstreamState:
    name: str
    source: Source
    ebgp: bool
    rib: AdjRibIn = field(default_factory=AdjRibIn)
    up: bool = False
    eor_sent: bool = False
    eor_received: set[Family] = field(default_factory=set)
    established_at: float | None = None
    flaps: int = 0
    allow_node_as: bool = False
    looped: set[tuple[Family, Prefix]] = field(default_factory=set)  # dropped: AS_PATH loop
    last_update_at: float | None = None


def group_by_path(
    changes: Mapping[Prefix, Path | None],
) -> tuple[dict[Path, list[Prefix]], list[Prefix]]:
    """Prefixes grouped by their (interned) path, and those withdrawn (path None)."""
    by_path: dict[Path, list[Prefix]] = defaultdict(list)
    withdrawn: list[Prefix] = []
    for prefix, path in changes.items():
        if path is None:
            withdrawn.append(prefix)
        else:
            by_path[path].append(prefix)
    return by_path, withdrawn
