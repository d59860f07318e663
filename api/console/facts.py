"""What the dashboard shows: one page of accounts with their facts, what needs a person on any
page, and the deployment's queue and dead letters (the SQL is in `api.console.queries`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from api.console import queries
from api.console.chart import Chart, chart, minutes_until
from api.console.queries import Listed
from api.state import ApiState
from workers.accounts.store import AccountState
from workers.resync.store import Plan
from workers.ringcentral.budget import Budget, GroupBudget, snapshots
from workers.status import dead_letter_report, queue_report
from workers.store.engine import reading

PAGE_SIZE: Final = 10
CHART_MINUTES: Final = 180


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
    # Every account (on any page) a person should look at, with why.
    attention: list[tuple[Listed, list[str]]] = field(default_factory=list)


def search(rows: list[Listed], query: str, number: int) -> tuple[list[Listed], int, int, int]:
    """The `number`th page (from 1, kept within the pages there are) of the accounts whose id or
    name contains `query`: that page's accounts, its number, the pages, the accounts found."""
    needle = query.strip().casefold()
    found = [r for r in rows if needle in r.account_id or needle in r.name.casefold()]
    pages = max(1, -(-len(found) // PAGE_SIZE))
    number = min(max(number, 1), pages)
    return found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE], number, pages, len(found)


async def dashboard_facts(
    state: ApiState, query: str, number: int, now: datetime
) -> tuple[Page, dict[str, Any]]:
    """One page of accounts with their facts, and the deployment's (queue, dead letters).

    The SQL reads go one after another on one connection, without a transaction on PostgreSQL
    (`workers.store.engine.reading`): measured, spreading them over several pooled connections
    at once cost more CPU and waited longer. The Redis reads (budgets, queue) go meanwhile.
    """
    default = await state.default_account()

    async def from_sql() -> tuple[Page, dict[str, Any]]:
        async with reading(state.engine) as conn:
            seen = state.overview.get() or state.overview.keep(
                await queries.overview(conn, default, state.settings.rc_server_url, now)
            )
            shown, shown_number, pages, total = search(seen.accounts, query, number)
            facts = {row.account_id: AccountFacts(row) for row in shown}
            budgets = asyncio.create_task(_budgets(state, shown))
            look = attention(seen.accounts, seen.subscriptions, seen.waiting)
            if facts:
                await _read(state, conn, facts, now)
            dead = await dead_letter_report(conn)
        for one, found in zip(facts.values(), await budgets, strict=True):
            one.budgets = found
        return Page(list(facts.values()), shown_number, pages, total, query, look), dead

    (page, dead), queue = await asyncio.gather(
        from_sql(), queue_report(state.redis, state.settings)
    )
    return page, {"queue": queue, "dead_letters": dead}


async def _read(
    state: ApiState, conn: AsyncConnection, facts: dict[str, AccountFacts], now: datetime
) -> None:
    ids = list(facts)
    subs = await queries.subscriptions(conn, ids, now)
    for account_id, user_state, count in await queries.users_by_state(conn, ids):
        facts[account_id].users[user_state] = count
    events = await queries.last_events(conn, [one.account for one in facts.values()])
    lags = await queries.lags(conn, ids, now)
    for plan in await queries.pending_plans(conn, ids):
        facts[plan.account_id].plans.append(plan)
    moves = await queries.transitions(conn, ids, now)
    for action in await queries.proposed_actions(conn, ids):
        facts[action["account_id"]].actions.append(action)
    notified, changed = await state.minutes.read(conn, ids, now, CHART_MINUTES)
    keys = minutes_until(now, CHART_MINUTES)
    for account_id, one in facts.items():
        one.subscription = subs.get(account_id)
        one.last_event_at = events.get(account_id)
        one.lag_seconds = lags.get(account_id)
        one.transitions = moves.get(account_id, [])
        one.chart = chart(notified[account_id], changed[account_id], keys)


def attention(
    listed: list[Listed],
    subscriptions: dict[str, tuple[str, bool]],
    waiting: dict[str, dict[str, int]],
) -> list[tuple[Listed, list[str]]]:
    """The accounts a person should look at, with why, worst first: failing credentials, then
    subscriptions missing, not `Active` or expired, then decisions waiting (any page: paging
    hides nothing). `subscriptions`: each account's newest one's status word and expiry."""
    found: list[tuple[int, Listed, list[str]]] = []
    for account in listed:
        reasons, rank = [], 2
        if account.state != AccountState.ACTIVE.value:
            reasons.append(
                f"{account.state}: {account.reason}" if account.reason else account.state
            )
            rank = 0
        problem = _subscription_problem(*subscriptions.get(account.account_id, (None, False)))
        if problem is not None:
            reasons.append(problem)
            rank = min(rank, 1)
        for what, count in sorted(waiting.get(account.account_id, {}).items()):
            reasons.append(f"{what} waiting: {count}")
        if reasons:
            found.append((rank, account, reasons))
    found.sort(key=lambda item: item[0])
    return [(account, reasons) for _, account, reasons in found]


def _subscription_problem(status: str | None, expired: bool) -> str | None:
    if status is None:
        return "no subscription"
    if status != "Active":
        return f"subscription {status}"
    return "subscription expired" if expired else None


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
