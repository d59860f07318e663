"""What one dashboard page costs the database: its statements do not grow with the accounts on
the page nor with the accounts in the deployment (every read covers the page, or every account,
at once), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import open_state
from api.console.facts import PAGE_SIZE, dashboard_facts
from api.console.minutes import MinuteCounts
from api.state import ApiState
from events.settings import Settings
from tests.api.mirror import api_settings, people, seed
from workers.accounts.store import AccountStore
from workers.resync.store import record_plan
from workers.store.identity import Store

# A page read afresh (the overview of every account and the chart's complete minutes too):
# the overview 4, the page's facts 7 and its chart 2 (complete minutes, the current one), the
# dead letters 1, and SQLite's BEGIN. A read added to the page may raise it; one per account
# never (the assertions below), and the budget keeps round trips from creeping back one by one.
STATEMENTS: Final = 15


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def statements_of_a_page(state: ApiState, query: str = "") -> tuple[int, int]:
    """The statements one dashboard page runs with nothing kept from an earlier page, and the
    accounts it shows."""
    # Kept for a process's life, read once: not a page's cost.
    await state.default_account()
    state.overview.forget()
    state.minutes = MinuteCounts()
    with counting(state.engine) as statements:
        page, _ = await dashboard_facts(state, query, 1, datetime.now(UTC))
    return len(statements), len(page.accounts)


async def add_accounts(store: Store, first: int, count: int) -> None:
    """`count` accounts, each with a few users and a held resync plan."""
    book = AccountStore(store)
    for n in range(first, first + count):
        account_id = str(700_000 + n)
        assert await book.add(account_id, f"Branch {n:02d}", "https://rc.example", "sealed")
        persons = people(3)
        await seed(store, account_id, persons)
        await record_plan(store, f"plan-{account_id}", account_id, [persons[0].extension_id], 0.3)


async def test_a_pages_statements_do_not_grow_with_its_accounts(
    make_settings: Callable[..., Settings], database_url: str, store: Store
) -> None:
    settings = api_settings(make_settings(database_url=database_url))
    await add_accounts(store, 0, PAGE_SIZE)
    async with open_state(settings) as state:
        one = await statements_of_a_page(state, query="branch 03")
        full = await statements_of_a_page(state)
        await add_accounts(store, PAGE_SIZE, 3 * PAGE_SIZE)
        many = await statements_of_a_page(state)
    # One account shown, ten shown, ten shown of forty: the same statements.
    assert (one[1], full[1], many[1]) == (1, PAGE_SIZE, PAGE_SIZE)
    assert one[0] == full[0] == many[0]
    assert full[0] <= STATEMENTS
