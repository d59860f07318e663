"""The per-minute chart of an account, drawn as inline SVG by the template (pure: counts in,
coordinates out; no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final

WIDTH: Final = 360
HEIGHT: Final = 64


@dataclass(frozen=True, slots=True)
class Chart:
    """Two series over the same minutes, as SVG path data (steps), with their totals and peak."""

    notifications: str
    changes: str
    total_notifications: int
    total_changes: int
    peak: int
    minutes: int
    width: int = WIDTH
    height: int = HEIGHT


def minutes_until(now: datetime, minutes: int) -> tuple[str, ...]:
    """The keys (`YYYY-MM-DD HH:MM`, UTC) of the `minutes` minutes up to and including now's."""
    return _minute_keys(now.replace(second=0, microsecond=0), minutes)


@lru_cache(maxsize=4)
def _minute_keys(minute: datetime, minutes: int) -> tuple[str, ...]:
    # Every page of the same minute asks for the same keys; formatting them costs about as much
    # as drawing four accounts' charts.
    return tuple(
        (minute - timedelta(minutes=minutes - 1 - i)).strftime("%Y-%m-%d %H:%M")
        for i in range(minutes)
    )


def chart(notifications: dict[str, int], changes: dict[str, int], keys: Sequence[str]) -> Chart:
    """`notifications` and `changes` are counts keyed by minute; the chart covers `keys`."""
    first = [notifications.get(key, 0) for key in keys]
    second = [changes.get(key, 0) for key in keys]
    peak = max([*first, *second, 1])
    return Chart(
        notifications=_points(first, peak),
        changes=_points(second, peak),
        total_notifications=sum(first),
        total_changes=sum(second),
        peak=peak,
        minutes=len(keys),
    )


def _points(values: list[int], peak: int) -> str:
    """A step line: each minute is a flat stretch, and only a change of value adds a vertex
    (a quiet account's line is a few bytes, not one point per minute)."""
    step = WIDTH / max(len(values), 1)
    scale = (HEIGHT - 2) / peak
    path: list[str] = []
    last: int | None = None
    for i, value in enumerate(values):
        if value != last:
            y = round(HEIGHT - 1 - value * scale, 1)
            path.append(f"M0,{y:g}" if last is None else f"H{i * step:g}V{y:g}")
            last = value
    path.append(f"H{WIDTH}")
    return "".join(path)
