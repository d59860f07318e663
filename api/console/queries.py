"""The SQL behind the console's dashboard. Each read takes the page's one connection and covers
the whole page (`account_id IN (...)`), never one account at a time, so a page costs the same
with one account or hundreds; the few that cover every account (subscriptions, what waits for a
person, dead letters) read small tables.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from workers.accounts.store import AccountState
from workers.actions.decide import ActionState
from workers.resync.store import PENDING, Plan
from workers.store import tables

TRANSITIONS: Final = 6
# How far back the newest transitions and the lag of the newest change are looked for.
RECENT: Final = timedelta(days=30)
LAG_WINDOW: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Listed:
    """An account as the accounts table (or, for the default account, the mirror) knows it."""

    account_id: str
    name: str
    state: str
    reason: str | None
    is_default: bool
    server_url: str


@dataclass(frozen=True, slots=True)
class Overview:
    """What covers every account: the accounts, each one's newest subscription (status word,
    expired) and what waits for a person (held plans, proposed actions)."""

    accounts: list[Listed]
    subscriptions: dict[str, tuple[str, bool]]
    waiting: dict[str, dict[str, int]]


async def overview(
    conn: AsyncConnection, default: str | None, server_url: str, now: datetime
) -> Overview:
    return Overview(
        await accounts(conn, default, server_url),
        await subscription_health(conn, now),
        await waiting(conn),
    )


async def accounts(conn: AsyncConnection, default: str | None, server_url: str) -> list[Listed]:
    """Every account not removed, the default one first; the default account is listed even
    before a worker registered it (its users are mirrored under its id)."""
    c = tables.accounts.c
    query = select(c.account_id, c.name, c.state, c.reason, c.is_default, c.server_url)
    found = await conn.execute(query.where(c.state != AccountState.REMOVED.value))
    rows = [Listed(a, n, s, r, bool(d), u) for a, n, s, r, d, u in found]
    if default is not None and all(row.account_id != default for row in rows):
        rows.append(Listed(default, "default", "active", None, True, server_url))
    rows.sort(key=lambda row: (not row.is_default, _numeric(row.account_id)))
    return rows


def _numeric(account_id: str) -> tuple[int, str]:
    return (int(account_id), "") if account_id.isdigit() else (0, account_id)


async def users_by_state(conn: AsyncConnection, ids: list[str]) -> list[tuple[str, str, int]]:
    users = tables.users.c
    query = (
        select(users.account_id, users.state, func.count())
        .where(users.account_id.in_(ids))
        .group_by(users.account_id, users.state)
    )
    return [(str(a), str(s), int(n)) for a, s, n in (await conn.execute(query)).all()]


async def proposed_actions(conn: AsyncConnection, ids: list[str]) -> list[dict[str, Any]]:
    """Actions waiting for a person's decision, oldest first, with whom they concern."""
    actions, users = tables.actions.c, tables.users.c
    who = and_(users.account_id == actions.account_id, users.extension_id == actions.extension_id)
    query = (
        select(
            actions.id,
            actions.account_id,
            actions.extension_id,
            actions.kind,
            actions.reason,
            actions.proposed_by,
            actions.created_at,
            users.email,
            users.first_name,
            users.last_name,
        )
        .select_from(tables.actions.join(tables.users, who, isouter=True))
        .where(actions.state == ActionState.PROPOSED.value, actions.account_id.in_(ids))
        .order_by(actions.created_at, actions.id)
    )
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def waiting(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """Per account: held resync plans and proposed actions, waiting for a person."""
    plans, actions = tables.resync_plans.c, tables.actions.c
    waiting: dict[str, dict[str, int]] = defaultdict(dict)
    for what, column, where in (
        ("held plans", plans.account_id, plans.status == PENDING),
        ("proposed actions", actions.account_id, actions.state == ActionState.PROPOSED.value),
    ):
        query = select(column, func.count()).where(where).group_by(column)
        for account_id, count in await conn.execute(query):
            waiting[str(account_id)][what] = int(count)
    return waiting


def _newest_subscriptions(ids: list[str] | None) -> Any:
    """Each account's newest subscription row (older ones stay as history)."""
    subs = tables.subscriptions.c
    rank = func.row_number().over(
        partition_by=subs.account_id, order_by=(subs.created_at.desc(), subs.id)
    )
    query = select(tables.subscriptions, rank.label("rank"))
    if ids is not None:
        query = query.where(subs.account_id.in_(ids))
    ranked = query.subquery()
    return select(ranked).where(ranked.c.rank == 1).subquery()


async def subscription_health(conn: AsyncConnection, now: datetime) -> dict[str, tuple[str, bool]]:
    """Every account's newest subscription: RingCentral's status word ("Deleted" once we
    deleted it) and whether it expired, judged in SQL (no row of history leaves the database)."""
    newest = _newest_subscriptions(None)
    word = case((newest.c.deleted_at.is_not(None), "Deleted"), else_=newest.c.status)
    expired = and_(newest.c.expiration_time.is_not(None), newest.c.expiration_time <= now)
    query = select(newest.c.account_id, word, case((expired, True), else_=False))
    return {str(a): (str(w), bool(e)) for a, w, e in await conn.execute(query)}


async def subscriptions(
    conn: AsyncConnection, ids: list[str], now: datetime
) -> dict[str, dict[str, Any]]:
    """The page's accounts' newest subscriptions: status word and remaining life."""
    newest = _newest_subscriptions(ids)
    found: dict[str, dict[str, Any]] = {}
    for row in (await conn.execute(select(newest))).mappings():
        expires = row["expiration_time"]
        found[row["account_id"]] = {
            "id": row["id"],
            "status": "Deleted" if row["deleted_at"] is not None else row["status"],
            "expires_at": expires,
            "remaining": None if expires is None else max(expires - now, timedelta()),
        }
    return found


async def last_events(conn: AsyncConnection, shown: list[Listed]) -> dict[str, datetime]:
    # The default account keeps its facts under the scope "" (as before accounts existed).
    scopes = {("" if one.is_default else one.account_id): one.account_id for one in shown}
    rows = tables.state.c
    query = select(rows.account_id, rows.value).where(
        rows.key == "last_event_at", rows.account_id.in_(list(scopes))
    )
    found = (await conn.execute(query)).all()
    return {scopes[scope]: datetime.fromisoformat(value) for scope, value in found}


async def lags(conn: AsyncConnection, ids: list[str], now: datetime) -> dict[str, float]:
    """Notification received → mirror changed, for each account's newest change a notification
    caused (its `cause` is the notification's uuid) in the last day (the history's older rows,
    however many, are never read)."""
    changes, events = tables.user_changes.c, tables.events.c
    # The notification is looked up change by change (an index probe each), never joined: a
    # join let PostgreSQL hash every notification ever received to match a page's few changes.
    caused = select(events.id).where(events.uuid == changes.cause).scalar_subquery()
    newest = (
        select(func.max(changes.id))
        .where(
            changes.account_id.in_(ids),
            changes.changed_at >= now - LAG_WINDOW,
            caused.is_not(None),
        )
        .group_by(changes.account_id)
    )
    received = select(events.received_at).where(events.uuid == changes.cause).scalar_subquery()
    query = select(changes.account_id, changes.changed_at, received).where(
        changes.id.in_(newest.correlate(None).scalar_subquery())
    )
    rows = (await conn.execute(query)).all()
    return {
        str(account): max((changed - received).total_seconds(), 0.0)
        for account, changed, received in rows
    }


async def transitions(
    conn: AsyncConnection, ids: list[str], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The newest moves between states (who was suspended or deprovisioned, when, by what) of
    the last `RECENT` (so a long history is never read whole)."""
    changes, users = tables.user_changes.c, tables.users.c
    rank = func.row_number().over(partition_by=changes.account_id, order_by=changes.id.desc())
    moved = and_(
        changes.changed_at >= now - RECENT,
        changes.account_id.in_(ids),
        changes.old_state.is_not(None),
        changes.old_state != changes.new_state,
    )
    ranked = (
        select(
            changes.account_id,
            changes.extension_id,
            changes.changed_at,
            changes.old_state,
            changes.new_state,
            changes.cause,
            rank.label("rank"),
        )
        .where(moved)
        .subquery()
    )
    # Whom each concerns, looked up row by row (an index probe each) rather than joined: a join
    # let PostgreSQL hash every user of the deployment for a page's few dozen rows.
    of_user = and_(
        users.account_id == ranked.c.account_id, users.extension_id == ranked.c.extension_id
    )
    named = [
        select(column).where(of_user).scalar_subquery().label(column.name)
        for column in (users.first_name, users.last_name, users.email)
    ]
    query = (
        select(ranked, *named)
        .where(ranked.c.rank <= TRANSITIONS)
        .order_by(ranked.c.account_id, ranked.c.rank)
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in (await conn.execute(query)).mappings():
        found[row["account_id"]].append(dict(row))
    return found


async def pending_plans(conn: AsyncConnection, ids: list[str]) -> list[Plan]:
    plans = tables.resync_plans.c
    query = select(tables.resync_plans).where(plans.status == PENDING, plans.account_id.in_(ids))
    rows = await conn.execute(query.order_by(plans.created_at))
    return [
        Plan(**{**row, "deprovision_ids": list(row["deprovision_ids"])}) for row in rows.mappings()
    ]
