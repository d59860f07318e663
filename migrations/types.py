"""Column types the revisions build with, owned here and frozen.

A revision must build the same schema (and write the same values) next year as today, so it never
imports the application's tables: when `workers.store.tables` changes a type, it is a new revision
that says so. Each type here keeps the behaviour it had when a revision first used it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime: `timestamptz` on PostgreSQL, naive UTC text on SQLite (since 0001)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def portable_json() -> sa.types.TypeEngine[Any]:
    """Portable JSON, JSONB on PostgreSQL (since 0001)."""
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
