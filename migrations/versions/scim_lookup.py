"""SCIM lookups by userName: an index on the lower-cased address SCIM filters compare.

Identity providers look a user up with `userName eq "…"` before anything else; RFC 7643 makes the
comparison case-insensitive, so the filter is `lower(coalesce(email, extension_id)) = …` and
this index answers it without reading the account's every row.

Revision ID: scim_lookup
Revises: activity
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "scim_lookup"
down_revision: str | None = "activity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_users_account_id_username",
        "users",
        ["account_id", sa.text("lower(coalesce(email, extension_id))")],
    )


def downgrade() -> None:
    op.drop_index("ix_users_account_id_username", table_name="users")
