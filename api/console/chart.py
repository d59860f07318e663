"""The per-minute chart of an account, drawn as inline SVG by the template (pure: counts in,
coordinates out; no script, nothing fetched)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

WIDTH: Final = 360
HEIGHT: Final = 64


@dataclass(frozen=True, slots=True)
class Chart:
    """Two series over the same minutes, as SVG polyline points, with their totals and peak."""

    notifications: str
    changes: str
    total_notifications: int
    total_changes: int
    peak: int
    minutes: int
    width: int = WIDTH
    height: int = HEIGHT


def chart(
    notifications: dict[str, int], changes: dict[str, int], now: datetime, minutes: int
) -> Chart:
    """`notifications` and `changes` are counts keyed by minute (`YYYY-MM-DD HH:MM`, UTC); the
    chart covers the `minutes` minutes up to and including `now`'s."""
    keys = [
        (now - timedelta(minutes=minutes - 1 - i)).strftime("%Y-%m-%d %H:%M")
        for i in range(minutes)
    ]
    first = [notifications.get(key, 0) for key in keys]
    second = [changes.get(key, 0) for key in keys]
    peak = max([*first, *second, 1])
    return Chart(
        notifications=_points(first, peak),
        changes=_points(second, peak),
        total_notifications=sum(first),
        total_changes=sum(second),
        peak=peak,
        minutes=minutes,
    )


def _points(values: list[int], peak: int) -> str:
    step = WIDTH / max(len(values) - 1, 1)
    usable = HEIGHT - 2
    return " ".join(
        f"{i * step:.1f},{HEIGHT - 1 - value / peak * usable:.1f}" for i, value in enumerate(values)
    )
