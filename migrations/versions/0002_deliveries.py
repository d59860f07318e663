"""Outbox deliveries: one row per outbox row and downstream endpoint, with its retry clock; and
an index to find recent outbox rows that have no delivery yet.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("extension_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _time("next_attempt_at"),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_status", sa.Integer()),
        _time("delivered_at", nullable=True),
        _time("replayed_at", nullable=True),
        sa.Column("dead_letter_id", sa.BigInteger()),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name="fk_deliveries_outbox_id_outbox"
        ),
        sa.UniqueConstraint("outbox_id", "endpoint", name="uq_deliveries_outbox_id_endpoint"),
    )
    op.create_index(
        "ix_deliveries_endpoint_account_id_extension_id_sequence",
        "deliveries",
        ["endpoint", "account_id", "extension_id", "sequence"],
    )
    op.create_index(
        "ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
