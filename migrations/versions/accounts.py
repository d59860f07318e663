"""The accounts table: the RingCentral accounts one deployment mirrors.

Existing rows (users, history, subscriptions, ...) already carry their account id, so nothing
else changes: the default account (the RC_* environment) registers its row at start-up.

Revision ID: accounts
Revises: roles_and_sites
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UtcDateTime

revision: str = "accounts"
down_revision: str | None = "roles_and_sites"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("server_url", sa.Text(), nullable=False),
        sa.Column("credentials", sa.Text()),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )


def downgrade() -> None:
    op.drop_table("accounts")
