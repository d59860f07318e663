"""Un-freeze users whose last read is dated in the future.

Before reads were stamped on the clock every process shares (Redis `TIME`), a Company Directory
notification's own `timestamp` could become a user's `observed_at`. A sender that dated one 2099
froze that user: the stale-write guard refused every later, real read as "older". No read taken
on our clock is more than moments ahead of the upgrade, so a row more than a day ahead was stamped
by a sender; it is brought back to now, and the next real read of that user goes through.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from migrations.types import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Hosts disagree by seconds, not by a day: anything further ahead was never our own clock.
AHEAD = timedelta(days=1)


def upgrade() -> None:
    users = sa.table("users", sa.column("observed_at", UtcDateTime()))
    now = datetime.now(UTC)
    op.execute(users.update().where(users.c.observed_at > now + AHEAD).values(observed_at=now))


def downgrade() -> None:
    """Nothing to undo: the dates it replaced were never true."""
