"""The actions table: suspend, deprovision and reactivate requests, their approval and outcome.

Revision ID: actions
Revises: accounts
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UtcDateTime, portable_json

revision: str = "actions"
down_revision: str | None = "accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("extension_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.Text()),
        sa.Column("decided_by", sa.Text()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("decided_at", UtcDateTime()),
        sa.Column("started_at", UtcDateTime()),
        sa.Column("finished_at", UtcDateTime()),
        sa.Column("error", sa.Text()),
        sa.Column("snapshot", portable_json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
    )
    op.create_index("ix_actions_account_id_state", "actions", ["account_id", "state"])
    op.create_index("ix_actions_account_id_started_at", "actions", ["account_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_actions_account_id_started_at", table_name="actions")
    op.drop_index("ix_actions_account_id_state", table_name="actions")
    op.drop_table("actions")
