"""The dashboard's per-minute chart: counts keyed by minute become SVG points on one scale."""

from __future__ import annotations

from datetime import UTC, datetime

from api.console.chart import HEIGHT, WIDTH, chart

NOW = datetime(2026, 3, 1, 12, 30, 59, tzinfo=UTC)


def ys(points: str) -> list[float]:
    return [float(pair.split(",")[1]) for pair in points.split()]


def test_minutes_outside_the_window_are_left_out_and_both_series_share_the_peak() -> None:
    drawn = chart(
        {"2026-03-01 12:30": 4, "2026-03-01 12:28": 2, "2026-03-01 09:30": 99},
        {"2026-03-01 12:30": 1},
        NOW,
        minutes=3,
    )
    assert (drawn.total_notifications, drawn.total_changes, drawn.peak) == (6, 1, 4)
    assert ys(drawn.notifications) == [HEIGHT - 1 - 2 / 4 * (HEIGHT - 2), HEIGHT - 1, 1.0]
    assert ys(drawn.changes)[-1] == HEIGHT - 1 - 1 / 4 * (HEIGHT - 2)
    assert [float(p.split(",")[0]) for p in drawn.changes.split()] == [0.0, WIDTH / 2, WIDTH]


def test_a_quiet_account_draws_flat_lines_at_the_bottom() -> None:
    drawn = chart({}, {}, NOW, minutes=180)
    assert set(ys(drawn.notifications)) == {HEIGHT - 1}
    assert len(drawn.changes.split()) == 180
