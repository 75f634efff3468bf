"""Growth of a sampled series: the least-squares slope and whether it is beyond noise.

A series grows "beyond noise" when its least-squares slope after the warm-up is over the
threshold both over the whole window and over its second half. A leak grows at a steady rate
and passes both; a one-off step (an allocator arena, a cache filled once) raises the whole
window's slope but not the later half's, and is not a leak.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

MIN_POINTS = 3


@dataclass(frozen=True)
class Fit:
    slope: float  # units per minute
    stderr: float  # of the slope, units per minute
    points: int


def least_squares(ts: list[float], ys: list[float]) -> Fit:
    """Slope of ys against ts (seconds), per minute, with its standard error."""
    n = len(ts)
    if n < MIN_POINTS:
        return Fit(slope=0.0, stderr=math.inf, points=n)
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    sxx = sum((t - mt) ** 2 for t in ts)
    if sxx == 0:
        return Fit(slope=0.0, stderr=math.inf, points=n)
    slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / sxx
    residual = sum((y - my - slope * (t - mt)) ** 2 for t, y in zip(ts, ys, strict=True))
    stderr = math.sqrt(residual / (n - 2) / sxx)
    return Fit(slope=slope * 60, stderr=stderr * 60, points=n)


@dataclass(frozen=True)
class Growth:
    """Verdict on one series after the warm-up."""

    name: str
    unit: str  # of the values; slopes are unit per minute
    first: float  # median of the first samples after the warm-up
    last: float  # median of the last samples
    slope: float
    stderr: float
    slope_second_half: float
    threshold: float  # slope per minute allowed
    points: int
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    return value


def growth(
    name: str,
    unit: str,
    ts: list[float],
    ys: list[float],
    threshold: float,
    *,
    edge: int = 6,
    step_tolerance: float | None = None,
) -> Growth:
    """Fit ``ys`` (already cut to after the warm-up). ``step_tolerance``: also fail when the
    median of the last ``edge`` samples exceeds that of the first ``edge`` by more than this
    (for descriptors, where any lasting growth counts)."""
    whole = least_squares(ts, ys)
    half = len(ts) // 2
    later = least_squares(ts[half:], ys[half:])
    first = statistics.median(ys[:edge]) if ys else math.nan
    last = statistics.median(ys[-edge:]) if ys else math.nan
    ok = whole.points >= MIN_POINTS and not (whole.slope > threshold and later.slope > threshold)
    if step_tolerance is not None and ys and last - first > step_tolerance:
        ok = False
    return Growth(
        name=name,
        unit=unit,
        first=first,
        last=last,
        slope=whole.slope,
        stderr=whole.stderr,
        slope_second_half=later.slope,
        threshold=threshold,
        points=whole.points,
        ok=ok,
    )
