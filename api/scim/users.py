"""Users and Groups read from the store: one page of a filtered listing, one user, the groups.

`id` and `externalId` are the extension id; `userName` the email (the extension id when
RingCentral knows no email); `active` is true only in state `active`, so suspended and
deprovisioned users stay listed as inactive with their last known names. `meta.version` is a weak
ETag made of the row's per-user event sequence and `updated_at`, both of which move when the user
changes and only then (a re-read that changes nothing moves neither).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim2_models import Email, EnterpriseUser, Group, GroupMember, GroupMembership, Meta, Name
from sqlalchemy import ColumnElement, RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.scim.documents import display_name, etag, roles_of
from api.scim.schemas import RingsyncUser, ScimUser
from workers.store import tables

_u = tables.users.c
# Roles arrive as a JSON column; until then Groups is served empty through the same code.
_ROLES = _u.get("roles")
# The columns a SCIM User is made of (not `raw`, which is large and not served).
_SERVED = [column for column in tables.users.c if column.name != "raw"]


@dataclass(frozen=True)
class Page:
    total: int
    rows: list[RowMapping]


def user_resource(row: Mapping[Any, Any], location: str) -> ScimUser:
    """One stored user as a SCIM User (`location` is the URL of this user's resource)."""
    given, family = row["first_name"], row["last_name"]
    formatted = display_name(row)
    user = ScimUser(
        id=row["extension_id"],
        external_id=row["extension_id"],
        user_name=row["email"] or row["extension_id"],
        name=Name(given_name=given, family_name=family, formatted=formatted),
        display_name=formatted,
        title=row["job_title"],
        active=row["state"] == "active",
        # Not validated: RingCentral's address is served as it is (see `documents`).
        emails=[Email.model_construct(value=row["email"], type=Email.Type.work, primary=True)]
        if row["email"]
        else None,
        groups=[
            GroupMembership(value=role_id, display=name, type="direct")
            for role_id, name in roles_of(row)
        ]
        or None,
        meta=Meta(
            resource_type="User",
            created=row["first_seen_at"],
            last_modified=row["updated_at"],
            location=location,
            version=etag(row),
        ),
    )
    user[EnterpriseUser] = EnterpriseUser(department=row["department"])
    user[RingsyncUser] = RingsyncUser(
        extension_number=row["extension_number"],
        status=row["status"],
        state=row["state"],
        last_activity=row["last_activity_at"],
    )
    return user


async def user_page(
    engine: AsyncEngine,
    account_id: str | None,
    where: ColumnElement[bool] | None,
    start_index: int,
    count: int,
) -> Page:
    """Users `start_index` (1-based) to `start_index + count - 1` in extension-id order."""
    if account_id is None:
        return Page(0, [])
    condition = _u.account_id == account_id
    if where is not None:
        condition = condition & where
    total = select(func.count()).select_from(tables.users).where(condition)
    query = select(*_SERVED).where(condition).order_by(_u.extension_id)
    async with engine.connect() as conn:
        found = int((await conn.execute(total)).scalar_one())
        page = query.offset(start_index - 1).limit(count)
        rows = list((await conn.execute(page)).mappings()) if count else []
    return Page(found, rows)


async def one_user(
    engine: AsyncEngine, account_id: str | None, extension_id: str
) -> RowMapping | None:
    if account_id is None:
        return None
    query = select(tables.users).where(_u.account_id == account_id, _u.extension_id == extension_id)
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().first()


async def groups(engine: AsyncEngine, account_id: str | None, location: str) -> list[Group]:
    """One group per role held by someone in the account, members = its users."""
    if account_id is None or _ROLES is None:
        return []
    query = select(_u.extension_id, _u.email, _ROLES).where(
        _u.account_id == account_id, _ROLES.is_not(None)
    )
    members: dict[tuple[str, str], list[GroupMember]] = {}
    async with engine.connect() as conn:
        for row in (await conn.execute(query.order_by(_u.extension_id))).mappings():
            for role in roles_of(row):
                members.setdefault(role, []).append(
                    GroupMember(value=row["extension_id"], display=row["email"], type="User")
                )
    return [
        Group(
            id=role_id,
            display_name=name,
            members=users,
            meta=Meta(resource_type="Group", location=f"{location}/{role_id}"),
        )
        for (role_id, name), users in sorted(members.items())
    ]


async def account_ids(engine: AsyncEngine) -> Sequence[str]:
    """Every account the mirror holds users of (until accounts have a table of their own)."""
    query = select(_u.account_id).distinct().order_by(_u.account_id)
    async with engine.connect() as conn:
        return [str(value) for value in (await conn.execute(query)).scalars()]
