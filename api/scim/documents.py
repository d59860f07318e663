"""A stored user as the JSON `/scim/v2` serves, written straight from the row.

Building a scim2-models `User` and dumping it costs ~0.7 ms a user (validation, extension
bookkeeping, an email validator), which made a 100-user page CPU-bound. When a request selects no
attributes the answer is written here instead; `tests/api/test_scim_documents.py` holds it equal to
scim2-models' own dump of `users.user_resource`, which still serves `attributes` /
`excludedAttributes`. The email is served as RingCentral stores it: an address a strict validator
dislikes is still a user, never a failed page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from api.scim.schemas import CORE_USER, ENTERPRISE_USER, RINGSYNC_USER

_RINGSYNC_FIELDS: Final = (
    ("extensionNumber", "extension_number"),
    ("status", "status"),
    ("state", "state"),
)


def instant(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as pydantic writes it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def etag(row: Mapping[Any, Any]) -> str:
    """A weak ETag of what the served user is made of: the per-user sequence and `updated_at`
    (both move only on a change) and `last_activity_at` (which the call-log scan moves alone)."""
    updated: datetime = row["updated_at"]
    active: datetime | None = row.get("last_activity_at")
    activity = "" if active is None else f"-{int(active.timestamp() * 1_000_000)}"
    return f'W/"{row["sequence"]}-{int(updated.timestamp() * 1_000_000)}{activity}"'


def roles_of(row: Mapping[Any, Any]) -> list[tuple[str, str]]:
    """(role id, role name) of each role the row holds; none before roles are mirrored."""
    found: list[tuple[str, str]] = []
    for role in row.get("roles") or ():
        if isinstance(role, Mapping) and role.get("id") is not None:
            role_id = str(role["id"])
            found.append((role_id, str(role.get("name") or role.get("displayName") or role_id)))
    return found


def display_name(row: Mapping[Any, Any]) -> str | None:
    return " ".join(part for part in (row["first_name"], row["last_name"]) if part) or None


def user_document(row: Mapping[Any, Any], location: str) -> dict[str, Any]:
    """One stored user as a SCIM User resource (`location` is the URL of this user)."""
    schemas = [CORE_USER]
    document: dict[str, Any] = {
        "schemas": schemas,
        "id": row["extension_id"],
        "externalId": row["extension_id"],
        "meta": {
            "resourceType": "User",
            "created": instant(row["first_seen_at"]),
            "lastModified": instant(row["updated_at"]),
            "location": location,
            "version": etag(row),
        },
        "userName": row["email"] or row["extension_id"],
    }
    formatted = display_name(row)
    name = {"formatted": formatted, "familyName": row["last_name"], "givenName": row["first_name"]}
    _put(document, "name", {key: value for key, value in name.items() if value is not None})
    _put(document, "displayName", formatted)
    _put(document, "title", row["job_title"])
    document["active"] = row["state"] == "active"
    if row["email"]:
        document["emails"] = [{"value": row["email"], "type": "work", "primary": True}]
    groups = [{"value": i, "display": n, "type": "direct"} for i, n in roles_of(row)]
    _put(document, "groups", groups)
    if row["department"] is not None:
        schemas.append(ENTERPRISE_USER)
        document[ENTERPRISE_USER] = {"department": row["department"]}
    ringsync = {key: row[column] for key, column in _RINGSYNC_FIELDS if row[column] is not None}
    if row.get("last_activity_at") is not None:
        ringsync["lastActivity"] = instant(row["last_activity_at"])
    if ringsync:
        schemas.append(RINGSYNC_USER)
        document[RINGSYNC_USER] = ringsync
    return document


def _put(document: dict[str, Any], key: str, value: Any) -> None:
    # As scim2-models dumps: an absent value or an empty object is left out, "" is kept.
    if value is not None and value != {} and value != []:
        document[key] = value
