"""Activity in the identity store: `users.last_activity_at` (only ever moved forward), the scan's
watermark and its cursor, kept per account in the `state` table.

A page's activity and the cursor that says the page was read are written in one transaction, so a
scan stopped anywhere (a crash, a penalty, a failed request) resumes at the first page whose
activity is not stored, never re-reading a stored one and never skipping one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from workers.lifecycle import State
from workers.store import tables
from workers.store.engine import write_transaction
from workers.store.identity import Store
from workers.store.mirror import upsert_for

WATERMARK = "activity_watermark"
CURSOR = "activity_cursor"


class Cursor(BaseModel):
    """A scan under way: its window, the next call-log page to read and, once the log is read
    (with RINGSYNC_ACTIVITY_SMS), the last user whose texts were read."""

    date_from: datetime
    date_to: datetime
    next_page: int = 1
    pages: int = 0
    records: int = 0
    calls_done: bool = False
    texts_after: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A live user and what the licence report judges them by."""

    account_id: str
    extension_id: str
    email: str | None
    state: str
    last_activity_at: datetime | None
    created_at: datetime


_u = tables.users.c
_FORWARD = (
    update(tables.users)
    .where(
        and_(
            _u.account_id == bindparam("account"),
            _u.extension_id == bindparam("extension"),
            or_(
                _u.last_activity_at.is_(None),
                _u.last_activity_at < bindparam("at", type_=tables.UtcDateTime()),
            ),
        )
    )
    .values(last_activity_at=bindparam("at", type_=tables.UtcDateTime()))
)


class ActivityStore:
    """The activity half of the identity store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def watermark(self, account_id: str) -> datetime | None:
        """Where the last complete scan ended (its `dateTo`), or None before the first one."""
        value = await self._store.get_state(WATERMARK, account_id)
        return None if value is None else datetime.fromisoformat(value)

    async def cursor(self, account_id: str) -> Cursor | None:
        value = await self._store.get_state(CURSOR, account_id)
        return None if value is None else Cursor.model_validate_json(value)

    async def begin(self, account_id: str, cursor: Cursor) -> None:
        await self._store.set_state(CURSOR, cursor.model_dump_json(), account_id)

    async def record_page(
        self, account_id: str, latest: Mapping[str, datetime], cursor: Cursor
    ) -> int:
        """One page's activity and the cursor past it, together; returns the users moved."""
        async with write_transaction(self._store.engine) as conn:
            moved = 0
            if latest:
                rows = [
                    {"account": account_id, "extension": extension, "at": at}
                    for extension, at in latest.items()
                ]
                result = await conn.execute(_FORWARD, rows)
                moved = max(result.rowcount, 0)
            await _put(conn, account_id, CURSOR, cursor.model_dump_json())
        return moved

    async def finish(self, account_id: str, cursor: Cursor) -> None:
        """The scan read its window to the end: the watermark moves, the cursor goes."""
        async with write_transaction(self._store.engine) as conn:
            await _put(conn, account_id, WATERMARK, cursor.date_to.isoformat())
            state = tables.state
            await conn.execute(
                delete(state).where(and_(state.c.account_id == account_id, state.c.key == CURSOR))
            )

    async def without_calls(self, account_id: str, since: datetime, after: str | None) -> list[str]:
        """Live users with no counting call since `since`, by extension id, after `after`."""
        query = select(_u.extension_id).where(
            _u.account_id == account_id,
            _u.state.in_([str(State.ACTIVE), str(State.PENDING)]),
            or_(_u.last_activity_at.is_(None), _u.last_activity_at < since),
        )
        if after is not None:
            query = query.where(_u.extension_id > after)
        async with self._store.engine.connect() as conn:
            return [str(i) for i in (await conn.execute(query.order_by(_u.extension_id))).scalars()]

    async def live_users(
        self, idle_since: datetime, account_id: str | None = None
    ) -> list[Candidate]:
        """Users `active` or `pending` with no activity since `idle_since` (never-active ones
        included, whenever they were created: the report decides about those)."""
        query = (
            select(
                _u.account_id,
                _u.extension_id,
                _u.email,
                _u.state,
                _u.last_activity_at,
                _u.first_seen_at,
                _u.raw,
            )
            .where(
                _u.state.in_([str(State.ACTIVE), str(State.PENDING)]),
                or_(_u.last_activity_at.is_(None), _u.last_activity_at < idle_since),
            )
            .order_by(_u.account_id, _u.extension_id)
        )
        if account_id is not None:
            query = query.where(_u.account_id == account_id)
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            Candidate(
                account_id=row["account_id"],
                extension_id=row["extension_id"],
                email=row["email"],
                state=row["state"],
                last_activity_at=row["last_activity_at"],
                created_at=created_at(row["raw"], row["first_seen_at"]),
            )
            for row in rows
        ]


def created_at(raw: Any, first_seen_at: datetime) -> datetime:
    """RingCentral's `creationTime` of the extension when the mirror holds it, else when the
    mirror first saw the user."""
    value = raw.get("creationTime") if isinstance(raw, Mapping) else None
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return first_seen_at
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return first_seen_at


async def _put(conn: AsyncConnection, account_id: str, key: str, value: str) -> None:
    values = {"account_id": account_id, "key": key, "value": value, "updated_at": datetime.now(UTC)}
    await conn.execute(upsert_for(conn, tables.state, ("account_id", "key")), [values])
