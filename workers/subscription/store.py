"""Our webhook subscription and the gaps it left, as kept in the identity store.

One row per subscription we created (or adopted), never deleted: a row marked `deleted_at` still
says "we had one", so a re-create that failed half-way is noticed as a gap on the next check.
RingCentral reports only the seconds *left*, never the lifetime asked for, so the `expiresIn` we
last asked for lives beside the row in the `state` table (`subscription_expires_in`, the same
transaction) and a changed RINGSYNC_SUBSCRIPTION_TTL can be told from a row merely growing older.
Expiration times are kept in this machine's clock: read time plus the seconds RingCentral said
were left, so a skewed clock on either side never makes a renewal late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from workers.ringcentral.resources import Subscription
from workers.store import tables
from workers.store.engine import write_transaction
from workers.store.identity import Store
from workers.store.mirror import upsert_for

EXPIRES_IN_KEY = "subscription_expires_in"


@dataclass(frozen=True)
class StoredSubscription:
    """The subscription we last created, renewed or updated, as we recorded it."""

    id: str
    account_id: str
    address: str
    event_filters: tuple[str, ...]
    status: str
    expiration_time: datetime | None
    token_hash: str | None
    created_at: datetime
    renewed_at: datetime | None
    deleted_at: datetime | None
    expires_in: int | None


@dataclass(frozen=True)
class Gap:
    """A window in which notifications may have been lost, and why."""

    started_at: datetime | None
    ended_at: datetime | None
    reason: str


async def load(store: Store, account_id: str) -> StoredSubscription | None:
    """Our newest subscription row for the account (deleted or not), or None if never any."""
    subs = tables.subscriptions
    query = (
        select(subs)
        .where(subs.c.account_id == account_id)
        .order_by(subs.c.created_at.desc(), subs.c.id)
        .limit(1)
    )
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        expires_in = await _expires_in(conn, account_id, str(row["id"]))
    return StoredSubscription(
        id=row["id"],
        account_id=row["account_id"],
        address=row["address"],
        event_filters=tuple(row["event_filters"] or ()),
        status=row["status"],
        expiration_time=row["expiration_time"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        renewed_at=row["renewed_at"],
        deleted_at=row["deleted_at"],
        expires_in=expires_in,
    )


async def save(
    store: Store,
    account_id: str,
    sub: Subscription,
    *,
    token_hash: str,
    expires_at: datetime | None,
    expires_in: int,
    now: datetime,
    created: bool,
) -> None:
    """Record `sub` as RingCentral just returned it (after a create, renew or update)."""
    subs = tables.subscriptions
    values: dict[str, Any] = {
        "id": sub.id,
        "account_id": account_id,
        "address": sub.delivery_mode.address or "",
        "event_filters": list(sub.event_filters),
        "status": sub.status,
        "expiration_time": expires_at,
        "token_hash": token_hash,
        "created_at": now,
        "renewed_at": now,
        "deleted_at": None,
    }
    async with write_transaction(store.engine) as conn:
        if created:
            await conn.execute(upsert_for(conn, subs, ("id",)), [values])
        else:
            del values["created_at"]
            await conn.execute(subs.update().where(subs.c.id == sub.id).values(**values))
        remembered = orjson.dumps({"id": sub.id, "expires_in": expires_in}).decode()
        state = {"account_id": account_id, "key": EXPIRES_IN_KEY, "value": remembered}
        await conn.execute(
            upsert_for(conn, tables.state, ("account_id", "key")), [{**state, "updated_at": now}]
        )


async def mark_deleted(store: Store, subscription_id: str, now: datetime) -> None:
    subs = tables.subscriptions
    async with write_transaction(store.engine) as conn:
        await conn.execute(
            subs.update()
            .where(and_(subs.c.id == subscription_id, subs.c.deleted_at.is_(None)))
            .values(deleted_at=now)
        )


async def record_gap(store: Store, account_id: str, gap: Gap) -> None:
    values = {
        "account_id": account_id,
        "started_at": gap.started_at,
        "ended_at": gap.ended_at,
        "reason": gap.reason,
    }
    async with write_transaction(store.engine) as conn:
        await conn.execute(tables.gaps.insert(), [values])


async def last_gap(store: Store, account_id: str | None = None) -> Gap | None:
    """The most recent gap (of one account, or of any)."""
    gaps = tables.gaps
    query = select(gaps).order_by(gaps.c.id.desc()).limit(1)
    if account_id is not None:
        query = query.where(gaps.c.account_id == account_id)
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return Gap(started_at=row["started_at"], ended_at=row["ended_at"], reason=row["reason"])


async def list_gaps(store: Store, account_id: str) -> list[Gap]:
    gaps = tables.gaps
    query = select(gaps).where(gaps.c.account_id == account_id).order_by(gaps.c.id)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [Gap(r["started_at"], r["ended_at"], r["reason"]) for r in rows]


async def subscription_status(store: Store, account_id: str | None = None) -> dict[str, Any]:
    """Our current subscription and the last gap, for `ringsync status` (times ISO 8601 UTC).

    `id` is None when no subscription was ever made; `status` is "Deleted" when the newest one
    was deleted without a successor (a re-create that has not completed yet). Without
    `account_id`, the newest subscription of any account is shown.
    """
    subs = tables.subscriptions
    query = select(subs).order_by(subs.c.created_at.desc(), subs.c.id).limit(1)
    if account_id is not None:
        query = query.where(subs.c.account_id == account_id)
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    gap = await last_gap(store, account_id if row is None else row["account_id"])
    shown: dict[str, Any] = {
        "id": None,
        "status": None,
        "address": None,
        "expires_at": None,
        "remaining_seconds": None,
        "last_gap": None,
    }
    if row is not None:
        expires: datetime | None = row["expiration_time"]
        remaining = None
        if expires is not None:
            remaining = max(0, int((expires - datetime.now(UTC)).total_seconds()))
        shown.update(
            id=row["id"],
            status="Deleted" if row["deleted_at"] is not None else row["status"],
            address=row["address"],
            expires_at=None if expires is None else expires.isoformat(),
            remaining_seconds=remaining,
        )
    if gap is not None:
        shown["last_gap"] = {
            "started_at": None if gap.started_at is None else gap.started_at.isoformat(),
            "ended_at": None if gap.ended_at is None else gap.ended_at.isoformat(),
            "reason": gap.reason,
        }
    return shown


async def _expires_in(conn: AsyncConnection, account_id: str, subscription_id: str) -> int | None:
    state = tables.state
    query = select(state.c.value).where(
        and_(state.c.account_id == account_id, state.c.key == EXPIRES_IN_KEY)
    )
    raw = (await conn.execute(query)).scalar_one_or_none()
    if raw is None:
        return None
    remembered = orjson.loads(raw)
    if not isinstance(remembered, dict) or remembered.get("id") != subscription_id:
        return None
    value = remembered.get("expires_in")
    return value if isinstance(value, int) else None
