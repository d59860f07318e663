"""The console's user pages: an account's users (searched, paged in SQL) and one user's history
and the events the mirror emitted for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.store import tables

USERS_PER_PAGE: Final = 50
EVENTS_SHOWN: Final = 100


@dataclass(frozen=True, slots=True)
class UserList:
    users: list[dict[str, Any]]
    number: int
    pages: int
    total: int
    query: str


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.casefold()}%"


async def user_list(engine: AsyncEngine, account_id: str, query: str, number: int) -> UserList:
    """The `number`th page of the account's users whose email, name, extension number or id
    contains `query` (case-insensitive)."""
    users = tables.users.c
    where = [users.account_id == account_id]
    needle = query.strip()
    if needle:
        pattern = _like(needle)
        where.append(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (
                        users.email,
                        users.first_name,
                        users.last_name,
                        users.extension_number,
                        users.extension_id,
                    )
                )
            )
        )
    async with engine.connect() as conn:
        total = int((await conn.execute(select(func.count()).where(*where))).scalar_one())
        pages = max(1, -(-total // USERS_PER_PAGE))
        number = min(max(number, 1), pages)
        rows = await conn.execute(
            select(
                users.extension_id,
                users.extension_number,
                users.first_name,
                users.last_name,
                users.email,
                users.status,
                users.state,
                users.updated_at,
            )
            .where(*where)
            .order_by(users.extension_id)
            .limit(USERS_PER_PAGE)
            .offset((number - 1) * USERS_PER_PAGE)
        )
        found = [dict(row) for row in rows.mappings()]
    return UserList(found, number, pages, total, query)


async def user_events(engine: AsyncEngine, account_id: str, extension_id: str) -> list[Any]:
    """The newest events the mirror emitted for the user (the outbox), newest first."""
    outbox = tables.outbox.c
    query = (
        select(outbox.event_id, outbox.type, outbox.occurred_at, outbox.cause, outbox.payload)
        .where(outbox.account_id == account_id, outbox.extension_id == extension_id)
        .order_by(outbox.id.desc())
        .limit(EVENTS_SHOWN)
    )
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]
