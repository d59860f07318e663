"""Activity: each user's `last_activity_at`, from the account's call log.

The scan's own state (its watermark and the page a stopped scan resumes from) is kept per account
in the `state` table, so no other table changes.

Revision ID: activity
Revises: actions
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UtcDateTime

revision: str = "activity"
down_revision: str | None = "actions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("last_activity_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_activity_at")
