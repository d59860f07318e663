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

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.console.chart import Chart, chart
from api.state import ApiState
from workers.accounts.store import Account, AccountState, AccountStore
from workers.resync.store import Plan, pending_plans
from workers.ringcentral.budget import Budget, GroupBudget
from workers.status import queue_report
from workers.store import tables

PAGE_SIZE: Final = 20
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


async def listed_accounts(state: ApiState) -> list[Listed]:
    """Every account not removed, the default one first; the default account is listed even
    before a worker registered it (its users are mirrored under its id)."""
    rows = [
        _listed(account)
        for account in await AccountStore(state.store).list()
        if account.state != AccountState.REMOVED
    ]
    default = await state.default_account()
    if default is not None and all(row.account_id != default for row in rows):
        rows.append(Listed(default, "default", "active", None, True, state.settings.rc_server_url))
    rows.sort(key=lambda row: (not row.is_default, _numeric(row.account_id)))
    return rows


def search(rows: list[Listed], query: str, number: int) -> tuple[list[Listed], int, int]:
    """The `number`th page (from 1) of the accounts whose id or name contains `query`."""
    needle = query.strip().casefold()
    found = [r for r in rows if needle in r.account_id or needle in r.name.casefold()]
    pages = max(1, -(-len(found) // PAGE_SIZE))
    number = min(max(number, 1), pages)
    return found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE], pages, len(found)


async def page_facts(state: ApiState, query: str, number: int, now: datetime) -> Page:
    shown, pages, total = search(await listed_accounts(state), query, number)
    facts = {row.account_id: AccountFacts(row) for row in shown}
    if facts:
        ids = list(facts)
        engine = state.engine
        for account_id, user_state, count in await _users(engine, ids):
            facts[account_id].users[user_state] = count
        for account_id, sub in (await _subscriptions(engine, ids, now)).items():
            facts[account_id].subscription = sub
        for account_id, at in (await _last_events(engine, facts)).items():
            facts[account_id].last_event_at = at
        for account_id, lag in (await _lags(engine, ids)).items():
            facts[account_id].lag_seconds = lag
        for plan in await pending_plans(state.store):
            if plan.account_id in facts:
                facts[plan.account_id].plans.append(plan)
        for account_id, rows in (await _transitions(engine, ids)).items():
            facts[account_id].transitions = rows
        notified, changed = await _per_minute(engine, ids, now)
        for account_id, one in facts.items():
            one.chart = chart(notified[account_id], changed[account_id], now, CHART_MINUTES)
        budgets = await asyncio.gather(*(_budgets(state, one.account) for one in facts.values()))
        for one, found in zip(facts.values(), budgets, strict=True):
            one.budgets = found
    return Page(list(facts.values()), min(max(number, 1), pages), pages, total, query)


async def deployment_facts(state: ApiState) -> dict[str, Any]:
    """The queue and the dead letters, which every account shares."""
    letters = tables.dead_letters
    query = select(letters.c.job, func.count()).where(letters.c.replayed_at.is_(None))
    async with state.engine.connect() as conn:
        rows = (await conn.execute(query.group_by(letters.c.job))).all()
    by_job = {str(job): int(count) for job, count in rows}
    return {
        "queue": await queue_report(state.redis, state.settings),
        "dead_letters": {"count": sum(by_job.values()), "by_job": by_job},
    }


def _listed(account: Account) -> Listed:
    return Listed(
        account.account_id,
        account.name,
        account.state.value,
        account.reason,
        account.is_default,
        account.server_url,
    )


def _numeric(account_id: str) -> tuple[int, str]:
    return (int(account_id), "") if account_id.isdigit() else (0, account_id)


async def _users(engine: AsyncEngine, ids: list[str]) -> list[tuple[str, str, int]]:
    users = tables.users.c
    query = (
        select(users.account_id, users.state, func.count())
        .where(users.account_id.in_(ids))
        .group_by(users.account_id, users.state)
    )
    async with engine.connect() as conn:
        return [(str(a), str(s), int(n)) for a, s, n in (await conn.execute(query)).all()]


async def _subscriptions(
    engine: AsyncEngine, ids: list[str], now: datetime
) -> dict[str, dict[str, Any]]:
    """Each account's newest subscription: RingCentral's status word and its remaining life."""
    subs = tables.subscriptions.c
    query = select(subs.account_id, subs.id, subs.status, subs.expiration_time, subs.deleted_at)
    query = query.where(subs.account_id.in_(ids)).order_by(subs.created_at.desc(), subs.id)
    newest: dict[str, dict[str, Any]] = {}
    async with engine.connect() as conn:
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


async def _last_events(engine: AsyncEngine, facts: dict[str, AccountFacts]) -> dict[str, datetime]:
    # The default account keeps its facts under the scope "" (as before accounts existed).
    scopes = {("" if one.account.is_default else a): a for a, one in facts.items()}
    rows = tables.state.c
    query = select(rows.account_id, rows.value).where(
        rows.key == "last_event_at", rows.account_id.in_(list(scopes))
    )
    async with engine.connect() as conn:
        found = (await conn.execute(query)).all()
    return {scopes[scope]: datetime.fromisoformat(value) for scope, value in found}


async def _lags(engine: AsyncEngine, ids: list[str]) -> dict[str, float]:
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
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {
        str(account): max((changed - received).total_seconds(), 0.0)
        for account, changed, received in rows
    }


async def _transitions(engine: AsyncEngine, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
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
    async with engine.connect() as conn:
        for row in (await conn.execute(query)).mappings():
            found[row["account_id"]].append(dict(row))
    return found


def _minute(column: Any, dialect: str) -> ColumnElement[Any]:
    """`column` cut to the minute, as text `YYYY-MM-DD HH:MM` (UTC) on both databases."""
    if dialect == "sqlite":
        # Stored as naive UTC text in one fixed format (see UtcDateTime).
        return func.substr(column, 1, 16)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")


async def _per_minute(
    engine: AsyncEngine, ids: list[str], now: datetime
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Notifications received and mirror changes made per minute, per account."""
    since = now - timedelta(minutes=CHART_MINUTES)
    dialect = engine.dialect.name
    result: list[dict[str, dict[str, int]]] = []
    for table, column in (
        (tables.events, tables.events.c.received_at),
        (tables.user_changes, tables.user_changes.c.changed_at),
    ):
        minute = _minute(column, dialect).label("minute")
        query = (
            select(table.c.account_id, minute, func.count())
            .where(column >= since, table.c.account_id.in_(ids))
            .group_by(table.c.account_id, minute)
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        async with engine.connect() as conn:
            for account_id, at, count in (await conn.execute(query)).all():
                counts[str(account_id)][str(at)] = int(count)
        result.append(counts)
    return result[0], result[1]


async def _budgets(state: ApiState, account: Listed) -> list[GroupBudget]:
    """The account's rate-limit budgets (each account has its own, under its own Redis keys)."""
    settings = state.settings
    if not account.is_default:
        settings = settings.for_account(account.account_id, server_url=account.server_url, jwt="")
    return list((await Budget(settings, state.redis).snapshot()).values())


def utcnow() -> datetime:
    return datetime.now(UTC)
