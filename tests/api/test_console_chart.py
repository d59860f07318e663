"""The dashboard's per-minute chart: counts keyed by minute become SVG step paths on one scale."""

from __future__ import annotations

from datetime import UTC, datetime

from api.console.chart import chart, minutes_until

NOW = datetime(2026, 3, 1, 12, 30, 59, tzinfo=UTC)


def test_minutes_outside_the_window_are_left_out_and_both_series_share_the_peak() -> None:
    drawn = chart(
        {"2026-03-01 12:30": 4, "2026-03-01 12:28": 2, "2026-03-01 09:30": 99},
        {"2026-03-01 12:30": 1},
        minutes_until(NOW, 3),
    )
    assert (drawn.total_notifications, drawn.total_changes, drawn.peak) == (6, 1, 4)
    # 64 px high, 1 px margins: a count of c sits at 63 - c / 4 * 62; each minute is 120 px.
    assert drawn.notifications == "M0,32H120V63H240V1H360"
    assert drawn.changes == "M0,63H240V47.5H360"


def test_a_quiet_account_draws_a_flat_line_at_the_bottom() -> None:
    drawn = chart({}, {}, minutes_until(NOW, 180))
    assert (drawn.notifications, drawn.changes) == ("M0,63H360", "M0,63H360")
    assert (drawn.total_notifications, drawn.peak) == (0, 1)
