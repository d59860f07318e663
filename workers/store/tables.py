"""The identity store's schema as SQLAlchemy Core tables; the migrations build the same schema.

Every row carries `account_id` so several RingCentral accounts can share one store later.
Timestamps are timezone-aware UTC on both databases (see `UtcDateTime`), and JSON columns use
the portable JSON type (JSONB on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

# Constraint names are fixed so later migrations can refer to them on both databases.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases.

    PostgreSQL keeps `timestamptz`. SQLite has no such type: values are stored as naive UTC text
    in one fixed format, so text comparison is time comparison and reads come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> TypeEngine[Any]:
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


users = Table(
    "users",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("extension_id", String(64), primary_key=True),
    Column("extension_number", String(32)),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("email", Text),
    Column("email_as_login", Boolean),
    Column("department", Text),
    Column("job_title", Text),
    Column("type", String(64)),
    Column("status", String(32)),
    Column("state", String(16), nullable=False),
    Column("international_calling", Boolean),
    Column("site", _json()),
    Column("admin", Boolean),
    # `{id, name}` lists; NULL until the first roles read. Roles are read on their own clock.
    Column("roles", _json()),
    Column("roles_observed_at", UtcDateTime),
    Column("raw", _json()),
    # When the read that produced this row was sent: the stale-write guard's clock.
    Column("observed_at", UtcDateTime, nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("deprovisioned_at", UtcDateTime),
    Column("sequence", Integer, nullable=False, server_default="0"),
    Index("ix_users_account_id_state", "account_id", "state"),
    Index("ix_users_account_id_email", "account_id", "email"),
)

user_changes = Table(
    "user_changes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("extension_id", String(64), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("old_state", String(16)),
    Column("new_state", String(16)),
    Column("diffs", _json(), nullable=False),
    Column("cause", Text),
    Index("ix_user_changes_account_id_extension_id", "account_id", "extension_id", "id"),
    Index("ix_user_changes_changed_at", "changed_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("uuid", String(128), nullable=False, unique=True),
    Column("account_id", String(64)),
    Column("received_at", UtcDateTime, nullable=False),
    Column("event", Text),
    Column("subscription_id", String(128)),
    Column("body", Text, nullable=False),
    Column("outcome", String(64)),
    Index("ix_events_received_at", "received_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("account_id", String(64), nullable=False),
    Column("extension_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("payload", _json(), nullable=False),
    Column("cause", Text),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("account_id", "extension_id", "sequence"),
    Index("ix_outbox_created_at", "created_at"),
)

# One row per outbox row and downstream endpoint (a URL, or "hook:module:function"): its status
# (pending, failed = in backoff, delivered, dead, unsubscribed) and retry clock. The user key and
# sequence are copied from the outbox row so each endpoint delivers one user's events in order.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("outbox_id", BigInteger, ForeignKey("outbox.id"), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("extension_id", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text),
    Column("last_status", Integer),
    Column("delivered_at", UtcDateTime),
    Column("replayed_at", UtcDateTime),
    Column("dead_letter_id", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("outbox_id", "endpoint"),
    Index(
        "ix_deliveries_endpoint_account_id_extension_id_sequence",
        "endpoint",
        "account_id",
        "extension_id",
        "sequence",
    ),
    Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account_id", String(64)),
    Column("job", String(128), nullable=False),
    Column("arguments", _json(), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("replayed_at", UtcDateTime),
    Index("ix_dead_letters_created_at", "created_at"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("address", Text, nullable=False),
    Column("event_filters", _json(), nullable=False),
    Column("status", String(32), nullable=False),
    Column("expiration_time", UtcDateTime),
    Column("token_hash", String(128)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("renewed_at", UtcDateTime),
    Column("deleted_at", UtcDateTime),
    Index("ix_subscriptions_account_id_address", "account_id", "address"),
)

gaps = Table(
    "gaps",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("started_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("reason", Text, nullable=False),
    Column("resync_id", String(64)),
    Index("ix_gaps_account_id_ended_at", "account_id", "ended_at"),
)

resync_plans = Table(
    "resync_plans",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("deprovision_ids", _json(), nullable=False),
    Column("ratio", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Index("ix_resync_plans_account_id_status", "account_id", "status"),
)

# Small facts such as last_event_at; account_id "" holds deployment-wide ones.
state = Table(
    "state",
    metadata,
    Column("account_id", String(64), primary_key=True, server_default=""),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The RingCentral accounts this deployment mirrors. The default account (the RC_* environment)
# has a row too, without credentials: they stay in the environment. Others keep their JWT here,
# Fernet-encrypted under RINGSYNC_SECRET_KEY (never in plaintext).
accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("server_url", Text, nullable=False),
    Column("credentials", Text),
    Column("is_default", Boolean, nullable=False),
    # active | failing | removed
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Suspend / deprovision / reactivate requests against RingCentral, and their audit trail. The
# life of an action: proposed → approved → running → done | failed, or rejected / cancelled.
# `snapshot` is the user as mirrored when proposed: the execution refuses when RingCentral's
# answer has moved away from it. `started_at` (when it went running) counts toward the hourly cap.
actions = Table(
    "actions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("extension_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("proposed_by", Text, nullable=False),
    Column("approved_by", Text),
    Column("decided_by", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("decided_at", UtcDateTime),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("error", Text),
    Column("snapshot", _json(), nullable=False),
    Index("ix_actions_account_id_state", "account_id", "state"),
    Index("ix_actions_account_id_started_at", "account_id", "started_at"),
)
