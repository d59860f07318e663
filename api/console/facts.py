"""What the dashboard shows, read for one page of accounts at a time.

Every fact is read for the whole page in one grouped query (`account_id IN (...)`), never one
query per account, so a page costs the same with one account or hundreds.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.console.chart import Chart, chart, minutes_until
from api.state import ApiState
from workers.accounts.store import AccountState
from workers.actions.decide import ActionState
from workers.resync.store import PENDING, Plan
from workers.ringcentral.budget import Budget, GroupBudget, snapshots
from workers.status import queue_report
from workers.store import tables

PAGE_SIZE: Final = 10
TRANSITIONS: Final = 6
CHART_MINUTES: Final = 180


@dataclass(frozen=True, slots=True)
class Listed:
    """An account as the accounts table (or, for the default account, the mirror) knows it."""

    account_id: str
    name: str
    state: str
    reason: str | None
    is_default: bool
    server_url: str


@dataclass
class AccountFacts:
    account: Listed
    users: dict[str, int] = field(default_factory=dict)
    subscription: dict[str, Any] | None = None
    last_event_at: datetime | None = None
    lag_seconds: float | None = None
    plans: list[Plan] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    budgets: list[GroupBudget] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    chart: Chart | None = None

    @property
    def user_count(self) -> int:
        return sum(self.users.values())


@dataclass(frozen=True, slots=True)
class Page:
    accounts: list[AccountFacts]
    number: int
    pages: int
    total: int
    query: str


async def _accounts(conn: AsyncConnection, default: str | None, server_url: str) -> list[Listed]:
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


def search(rows: list[Listed], query: str, number: int) -> tuple[list[Listed], int, int]:
    """The `number`th page (from 1) of the accounts whose id or name contains `query`."""
    needle = query.strip().casefold()
    found = [r for r in rows if needle in r.account_id or needle in r.name.casefold()]
    pages = max(1, -(-len(found) // PAGE_SIZE))
    number = min(max(number, 1), pages)
    return found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE], pages, len(found)


async def dashboard_facts(
    state: ApiState, query: str, number: int, now: datetime
) -> tuple[Page, dict[str, Any]]:
    """One page of accounts with their facts, and the deployment's (queue, dead letters).

    The SQL reads share one connection (one snapshot, one connection set-up); the Redis reads
    (budgets, queue) go meanwhile.
    """
    default = await state.default_account()

    async def from_sql() -> tuple[Page, dict[str, Any]]:
        async with state.engine.connect() as conn:
            listed = await _accounts(conn, default, state.settings.rc_server_url)
            shown, pages, total = search(listed, query, number)
            facts = {row.account_id: AccountFacts(row) for row in shown}
            budgets = asyncio.create_task(_budgets(state, shown))
            if facts:
                await _read(state, conn, facts, now)
            dead = await _dead_letters(conn)
        for one, found in zip(facts.values(), await budgets, strict=True):
            one.budgets = found
        page = Page(list(facts.values()), min(max(number, 1), pages), pages, total, query)
        return page, dead

    (page, dead), queue = await asyncio.gather(
        from_sql(), queue_report(state.redis, state.settings)
    )
    return page, {"queue": queue, "dead_letters": dead}


async def _read(
    state: ApiState, conn: AsyncConnection, facts: dict[str, AccountFacts], now: datetime
) -> None:
    ids = list(facts)
    for account_id, user_state, count in await _users(conn, ids):
        facts[account_id].users[user_state] = count
    subs = await _subscriptions(conn, ids, now)
    events = await _last_events(conn, facts)
    lags = await _lags(conn, ids)
    for plan in await _plans(conn, ids):
        facts[plan.account_id].plans.append(plan)
    moves = await _transitions(conn, ids)
    for action in await _proposed_actions(conn, ids):
        facts[action["account_id"]].actions.append(action)
    notified, changed = await state.minutes.read(conn, ids, now, CHART_MINUTES)
    keys = minutes_until(now, CHART_MINUTES)
    for account_id, one in facts.items():
        one.subscription = subs.get(account_id)
        one.last_event_at = events.get(account_id)
        one.lag_seconds = lags.get(account_id)
        one.transitions = moves.get(account_id, [])
        one.chart = chart(notified[account_id], changed[account_id], keys)


async def _proposed_actions(conn: AsyncConnection, ids: list[str]) -> list[dict[str, Any]]:
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


async def _dead_letters(conn: AsyncConnection) -> dict[str, Any]:
    """Dead letters not replayed yet, by job (the deployment's, whichever account they were)."""
    letters = tables.dead_letters
    query = select(letters.c.job, func.count()).where(letters.c.replayed_at.is_(None))
    rows = (await conn.execute(query.group_by(letters.c.job))).all()
    by_job = {str(job): int(count) for job, count in rows}
    return {"count": sum(by_job.values()), "by_job": by_job}


def _numeric(account_id: str) -> tuple[int, str]:
    return (int(account_id), "") if account_id.isdigit() else (0, account_id)


async def _users(conn: AsyncConnection, ids: list[str]) -> list[tuple[str, str, int]]:
    users = tables.users.c
    query = (
        select(users.account_id, users.state, func.count())
        .where(users.account_id.in_(ids))
        .group_by(users.account_id, users.state)
    )
    return [(str(a), str(s), int(n)) for a, s, n in (await conn.execute(query)).all()]


async def _subscriptions(
    conn: AsyncConnection, ids: list[str], now: datetime
) -> dict[str, dict[str, Any]]:
    """Each account's newest subscription: RingCentral's status word and its remaining life."""
    subs = tables.subscriptions.c
    query = select(subs.account_id, subs.id, subs.status, subs.expiration_time, subs.deleted_at)
    query = query.where(subs.account_id.in_(ids)).order_by(subs.created_at.desc(), subs.id)
    newest: dict[str, dict[str, Any]] = {}
    for row in (await conn.execute(query)).mappings():
        if row["account_id"] in newest:
            continue
        expires = row["expiration_time"]
        newest[row["account_id"]] = {
            "id": row["id"],
            "status": "Deleted" if row["deleted_at"] is not None else row["status"],
            "expires_at": expires,
            "remaining": None if expires is None else max(expires - now, timedelta()),
        }
    return newest


async def _last_events(
    conn: AsyncConnection, facts: dict[str, AccountFacts]
) -> dict[str, datetime]:
    # The default account keeps its facts under the scope "" (as before accounts existed).
    scopes = {("" if one.account.is_default else a): a for a, one in facts.items()}
    rows = tables.state.c
    query = select(rows.account_id, rows.value).where(
        rows.key == "last_event_at", rows.account_id.in_(list(scopes))
    )
    found = (await conn.execute(query)).all()
    return {scopes[scope]: datetime.fromisoformat(value) for scope, value in found}


async def _lags(conn: AsyncConnection, ids: list[str]) -> dict[str, float]:
    """Notification received → mirror changed, for each account's newest change a notification
    caused (its `cause` is the notification's uuid)."""
    changes, events = tables.user_changes.c, tables.events.c
    caused = and_(events.uuid == changes.cause, changes.account_id.in_(ids))
    newest = (
        select(func.max(changes.id))
        .select_from(tables.user_changes.join(tables.events, caused))
        .group_by(changes.account_id)
    )
    query = (
        select(changes.account_id, changes.changed_at, events.received_at)
        .select_from(tables.user_changes.join(tables.events, events.uuid == changes.cause))
        .where(changes.id.in_(newest.scalar_subquery()))
    )
    rows = (await conn.execute(query)).all()
    return {
        str(account): max((changed - received).total_seconds(), 0.0)
        for account, changed, received in rows
    }


async def _transitions(conn: AsyncConnection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The newest moves between states (who was suspended or deprovisioned, when, by what)."""
    changes, users = tables.user_changes.c, tables.users.c
    rank = func.row_number().over(partition_by=changes.account_id, order_by=changes.id.desc())
    moved = and_(
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
    joined = ranked.join(
        tables.users,
        and_(users.account_id == ranked.c.account_id, users.extension_id == ranked.c.extension_id),
        isouter=True,
    )
    query = (
        select(ranked, users.first_name, users.last_name, users.email)
        .select_from(joined)
        .where(ranked.c.rank <= TRANSITIONS)
        .order_by(ranked.c.account_id, ranked.c.rank)
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in (await conn.execute(query)).mappings():
        found[row["account_id"]].append(dict(row))
    return found


async def _plans(conn: AsyncConnection, ids: list[str]) -> list[Plan]:
    plans = tables.resync_plans.c
    query = select(tables.resync_plans).where(plans.status == PENDING, plans.account_id.in_(ids))
    rows = await conn.execute(query.order_by(plans.created_at))
    return [
        Plan(**{**row, "deprovision_ids": list(row["deprovision_ids"])}) for row in rows.mappings()
    ]


async def _budgets(state: ApiState, accounts: list[Listed]) -> list[list[GroupBudget]]:
    """Each account's rate-limit budgets (each has its own, under its own Redis keys)."""
    settings = state.settings
    budgets = [
        Budget(
            settings
            if account.is_default
            else settings.for_account(account.account_id, server_url=account.server_url, jwt=""),
            state.redis,
        )
        for account in accounts
    ]
    return [list(found.values()) for found in await snapshots(state.redis, budgets)]


def utcnow() -> datetime:
    return datetime.now(UTC)
