"""A user as the listings show it (`ringsync users --json`, `GET /v1/users`)."""

from __future__ import annotations

from typing import Any

from workers.store.identity import MirroredUser

# The fields `users --json` promises to keep, then what else helps a reader.
USER_FIELDS = (
    "extension_id",
    "account_id",
    "email",
    "first_name",
    "last_name",
    "extension_number",
    "status",
    "state",
    "updated_at",
    "type",
    "department",
    "job_title",
    "email_as_login",
    "international_calling",
    "site",
    "admin",
    "roles",
    "observed_at",
    "first_seen_at",
    "deprovisioned_at",
    "sequence",
    "last_activity_at",
)


def user_json(user: MirroredUser) -> dict[str, Any]:
    """One user as the `--json` line shows it (timestamps ISO 8601 UTC)."""
    values: dict[str, Any] = {"account_id": user.account_id, "extension_id": user.extension_id}
    for name in USER_FIELDS:
        if name not in values:
            row_field = name != "last_activity_at"
            values[name] = getattr(user.row, name) if row_field else user.last_activity_at
    values["state"] = str(user.row.state)
    for name, value in values.items():
        if hasattr(value, "isoformat"):
            values[name] = value.isoformat()
    return values
