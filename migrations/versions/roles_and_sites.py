"""Who may do what: each user's roles (with the time they were read), admin flag and site.

Existing rows get NULL everywhere: roles never read, admin and site not known yet. The next read
of each is a baseline and announces nothing.

Revision ID: roles_and_sites
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UtcDateTime, portable_json

revision: str = "roles_and_sites"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("site", portable_json(), nullable=True))
    op.add_column("users", sa.Column("admin", sa.Boolean(), nullable=True))
    op.add_column("users", sa.Column("roles", portable_json(), nullable=True))
    op.add_column("users", sa.Column("roles_observed_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        for name in ("roles_observed_at", "roles", "admin", "site"):
            batch.drop_column(name)
