"""Best-path selection among the candidates for one prefix.

Clients: the higher ``priority`` wins, then the higher LOCAL_PREF (100 when absent; RFC 4271
§9.1.1), then the tie-breaks of RFC 4271 §9.1.2.2 (a)-(c): shorter AS_PATH, lower ORIGIN, lower
MED (0 when absent, compared across all sources, not only within one neighbour AS); then the
order in the config, so the winner never depends on arrival order. Upstreams are ranked with
the same key, but their priority is minus their config order: the first configured upstream
that holds a prefix always wins it, and the BGP steps never separate two upstreams.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from .paths import Path


class BestReason(Enum):
    """The step of the decision process that picked the winner (its value is for log lines)."""

    ONLY_CANDIDATE = "only candidate"
    PRIORITY = "priority"
    LOCAL_PREF = "local-pref"
    AS_PATH = "as-path length"
    ORIGIN = "origin"
    MED = "med"
    CONFIG_ORDER = "config order"


def _rank(path: Path) -> tuple[int, int, int, int, int, int]:
    attrs = path.attributes
    local_pref = attrs.local_pref if attrs.local_pref is not None else 100
    med = attrs.med if attrs.med is not None else 0
    return (
        -path.source.priority,
        -local_pref,
        attrs.as_path_length(),
        attrs.origin,
        med,
        path.source.order,
    )


_REASONS = (
    BestReason.PRIORITY,
    BestReason.LOCAL_PREF,
    BestReason.AS_PATH,
    BestReason.ORIGIN,
    BestReason.MED,
    BestReason.CONFIG_ORDER,
)


def best_path(candidates: Sequence[Path]) -> Path | None:
    """The best of ``candidates`` by the ranking above; None when there are none."""
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    return min(candidates, key=_rank)


def explain(winner: Path, loser: Path) -> BestReason:
    """Which step of the decision process separated two candidates."""
    for reason, a, b in zip(_REASONS, _rank(winner), _rank(loser), strict=True):
        if a != b:
            return reason
    return BestReason.CONFIG_ORDER
