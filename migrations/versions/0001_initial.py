"""The initial identity store: users and their history, raw events, the outbox, dead letters,
subscriptions, gaps, resync plans and small state facts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.types import UtcDateTime, portable_json

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


def _account(*, nullable: bool = False) -> sa.Column[str]:
    return sa.Column("account_id", sa.String(64), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        _account(),
        sa.Column("extension_id", sa.String(64), nullable=False),
        sa.Column("extension_number", sa.String(32)),
        sa.Column("first_name", sa.Text()),
        sa.Column("last_name", sa.Text()),
        sa.Column("email", sa.Text()),
        sa.Column("email_as_login", sa.Boolean()),
        sa.Column("department", sa.Text()),
        sa.Column("job_title", sa.Text()),
        sa.Column("type", sa.String(64)),
        sa.Column("status", sa.String(32)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("international_calling", sa.Boolean()),
        sa.Column("raw", portable_json()),
        _time("observed_at"),
        _time("first_seen_at"),
        _time("updated_at"),
        _time("deprovisioned_at", nullable=True),
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("account_id", "extension_id", name="pk_users"),
    )
    op.create_index("ix_users_account_id_state", "users", ["account_id", "state"])
    op.create_index("ix_users_account_id_email", "users", ["account_id", "email"])

    op.create_table(
        "user_changes",
        _id(),
        _account(),
        sa.Column("extension_id", sa.String(64), nullable=False),
        _time("changed_at"),
        sa.Column("old_state", sa.String(16)),
        sa.Column("new_state", sa.String(16)),
        sa.Column("diffs", portable_json(), nullable=False),
        sa.Column("cause", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_user_changes"),
    )
    op.create_index(
        "ix_user_changes_account_id_extension_id",
        "user_changes",
        ["account_id", "extension_id", "id"],
    )
    op.create_index("ix_user_changes_changed_at", "user_changes", ["changed_at"])

    op.create_table(
        "events",
        _id(),
        sa.Column("uuid", sa.String(128), nullable=False),
        _account(nullable=True),
        _time("received_at"),
        sa.Column("event", sa.Text()),
        sa.Column("subscription_id", sa.String(128)),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("uuid", name="uq_events_uuid"),
    )
    op.create_index("ix_events_received_at", "events", ["received_at"])

    op.create_table(
        "outbox",
        _id(),
        sa.Column("event_id", sa.String(64), nullable=False),
        _account(),
        sa.Column("extension_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        _time("occurred_at"),
        sa.Column("payload", portable_json(), nullable=False),
        sa.Column("cause", sa.Text()),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        sa.UniqueConstraint(
            "account_id",
            "extension_id",
            "sequence",
            name="uq_outbox_account_id_extension_id_sequence",
        ),
    )

    op.create_table(
        "dead_letters",
        _id(),
        _account(nullable=True),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("arguments", portable_json(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("created_at"),
        _time("replayed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_created_at", "dead_letters", ["created_at"])

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(128), nullable=False),
        _account(),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("event_filters", portable_json(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _time("expiration_time", nullable=True),
        sa.Column("token_hash", sa.String(128)),
        _time("created_at"),
        _time("renewed_at", nullable=True),
        _time("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
    )
    op.create_index(
        "ix_subscriptions_account_id_address", "subscriptions", ["account_id", "address"]
    )

    op.create_table(
        "gaps",
        _id(),
        _account(),
        _time("started_at", nullable=True),
        _time("ended_at", nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("resync_id", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_gaps"),
    )
    op.create_index("ix_gaps_account_id_ended_at", "gaps", ["account_id", "ended_at"])

    op.create_table(
        "resync_plans",
        sa.Column("id", sa.String(64), nullable=False),
        _account(),
        _time("created_at"),
        sa.Column("deprovision_ids", portable_json(), nullable=False),
        sa.Column("ratio", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resync_plans"),
    )
    op.create_index("ix_resync_plans_account_id_status", "resync_plans", ["account_id", "status"])

    op.create_table(
        "state",
        sa.Column("account_id", sa.String(64), server_default="", nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("account_id", "key", name="pk_state"),
    )


def downgrade() -> None:
    for table in (
        "state",
        "resync_plans",
        "gaps",
        "subscriptions",
        "dead_letters",
        "outbox",
        "events",
        "user_changes",
        "users",
    ):
        op.drop_table(table)
