"""Notifications received and mirror changes made per account and minute, for the charts.

Complete minutes no longer change, so they are read once a minute for every account at once and
kept; only the current minute is read for each page. A page then costs the same however many
notifications the last hours brought.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, func, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from workers.store import tables

Counts = dict[str, dict[str, int]]
_SERIES: Final = (
    (tables.events, tables.events.c.received_at),
    (tables.user_changes, tables.user_changes.c.changed_at),
)


@dataclass
class MinuteCounts:
    """Per account, per minute: notifications and changes. `current` is the minute being
    counted when the complete minutes before it were read."""

    current: datetime | None = None
    complete: tuple[Counts, Counts] = field(default_factory=lambda: ({}, {}))

    async def read(
        self, conn: AsyncConnection, ids: list[str], now: datetime, minutes: int
    ) -> tuple[Counts, Counts]:
        """The counts of `ids` over the `minutes` minutes up to now's (complete ones kept)."""
        current = now.replace(second=0, microsecond=0)
        if self.current != current:
            since = current - timedelta(minutes=minutes - 1)
            self.complete = await _count(conn, None, since, current)
            self.current = current
        live = await _count(conn, ids, current, None)
        merged: list[Counts] = []
        for kept, now_counts in zip(self.complete, live, strict=True):
            merged.append({a: {**kept.get(a, {}), **now_counts.get(a, {})} for a in ids})
        return merged[0], merged[1]


def _minute(column: Any, dialect: str) -> ColumnElement[Any]:
    """`column` cut to the minute, as text `YYYY-MM-DD HH:MM` (UTC) on both databases."""
    if dialect == "sqlite":
        # Stored as naive UTC text in one fixed format (see UtcDateTime).
        return func.substr(column, 1, 16)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")


async def _count(
    conn: AsyncConnection, ids: list[str] | None, since: datetime, until: datetime | None
) -> tuple[Counts, Counts]:
    """Both series' counts in one statement (one round trip), told apart by a `series` column."""
    parts = []
    for series, (table, column) in enumerate(_SERIES):
        minute = _minute(column, conn.dialect.name).label("minute")
        query = select(
            literal_column(str(series)).label("series"), table.c.account_id, minute, func.count()
        ).where(column >= since)
        if until is not None:
            query = query.where(column < until)
        if ids is not None:
            query = query.where(table.c.account_id.in_(ids))
        parts.append(query.group_by(table.c.account_id, minute))
    counts: tuple[Counts, Counts] = (defaultdict(dict), defaultdict(dict))
    for series, account_id, at, count in await conn.execute(union_all(*parts)):
        counts[int(series)][str(account_id)][str(at)] = int(count)
    return counts
