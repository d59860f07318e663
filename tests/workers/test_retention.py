"""Retention on SQLite and PostgreSQL: the daily cron prunes old raw notifications, finished
outbox rows (delivered or skipped), replayed dead letters and decided resync plans; users'
history, young rows and anything not yet delivered stay, whatever their age."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.sql.schema import Table

from events.settings import Settings
from scripts.connections import open_deps
from workers.retention import prune_old_records
from workers.store import tables
from workers.store.identity import Store

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=100)
YOUNG = NOW - timedelta(days=10)
# Older than the retention (30 days) but still offered to new endpoints (60 days).
RECENT_UNANNOUNCED = NOW - timedelta(days=40)


class Rows:
    """Rows of this test's account, written straight into the tables with chosen ages."""

    def __init__(self, store: Store, account_id: str) -> None:
        self.store = store
        self.account_id = account_id
        self.sequence = 0

    async def insert(self, table: Table, **values: Any) -> int:
        async with self.store.engine.begin() as conn:
            found = await conn.execute(table.insert().values(values).returning(table.c.id))
            return int(found.scalar_one())

    async def event(self, at: datetime) -> str:
        name = f"uuid-{uuid.uuid4().hex}"
        await self.store.record_event(
            uuid=name, body="{}", account_id=self.account_id, received_at=at
        )
        return name

    async def outbox(self, at: datetime, *statuses: str) -> int:
        """An outbox row created at `at`, with one delivery per status."""
        self.sequence += 1
        row = await self.insert(
            tables.outbox,
            event_id=f"evt-{uuid.uuid4().hex}",
            account_id=self.account_id,
            extension_id="101",
            type="user.updated",
            sequence=self.sequence,
            occurred_at=at,
            payload={},
            created_at=at,
        )
        for n, status in enumerate(statuses):
            await self.insert(
                tables.deliveries,
                outbox_id=row,
                endpoint=f"https://hook-{n}.example.com/",
                account_id=self.account_id,
                extension_id="101",
                sequence=self.sequence,
                status=status,
                next_attempt_at=at,
                created_at=at,
                updated_at=at,
            )
        return row

    async def dead_letter(self, at: datetime, replayed_at: datetime | None) -> int:
        return await self.insert(
            tables.dead_letters,
            account_id=self.account_id,
            job="reconcile",
            arguments={},
            error="x",
            attempts=1,
            created_at=at,
            replayed_at=replayed_at,
        )

    async def plan(self, at: datetime, status: str) -> str:
        name = f"plan-{uuid.uuid4().hex}"
        async with self.store.engine.begin() as conn:
            await conn.execute(
                tables.resync_plans.insert().values(
                    id=name,
                    account_id=self.account_id,
                    created_at=at,
                    deprovision_ids=[],
                    ratio=0.5,
                    status=status,
                )
            )
        return name

    async def action(self, at: datetime, state: str) -> str:
        name = f"action-{uuid.uuid4().hex}"
        async with self.store.engine.begin() as conn:
            await conn.execute(
                tables.actions.insert().values(
                    id=name, account_id=self.account_id, extension_id="101", kind="suspend",
                    state=state, reason="x", proposed_by="a", created_at=at, snapshot={},
                    finished_at=at if state in ("done", "failed", "rejected") else None,
                )
            )  # fmt: skip
        return name

    async def history(self, at: datetime) -> int:
        return await self.insert(
            tables.user_changes,
            account_id=self.account_id,
            extension_id="101",
            changed_at=at,
            old_state="active",
            new_state="suspended",
            diffs={},
        )

    async def ids(self, table: Table, column: str = "id") -> set[Any]:
        query = select(table.c[column]).where(table.c.account_id == self.account_id)
        async with self.store.engine.connect() as conn:
            return set((await conn.execute(query)).scalars())


async def test_the_daily_prune_keeps_history_young_rows_and_everything_undelivered(
    store: Store, account_id: str, make_settings: Callable[..., Settings], database_url: str
) -> None:
    rows = Rows(store, account_id)
    old_event, young_event = await rows.event(OLD), await rows.event(YOUNG)
    delivered = await rows.outbox(OLD, "delivered", "delivered")
    given_up = await rows.outbox(OLD, "delivered", "skipped")  # an operator skipped one
    unfinished = {
        await rows.outbox(OLD, "delivered", status)
        for status in ("pending", "failed", "dead", "unsubscribed")
    }
    young_delivered = await rows.outbox(YOUNG, "delivered")
    never_announced = await rows.outbox(OLD)
    announceable = await rows.outbox(RECENT_UNANNOUNCED)
    replayed = await rows.dead_letter(OLD, replayed_at=OLD)
    waiting = await rows.dead_letter(OLD, replayed_at=None)
    replayed_lately = await rows.dead_letter(OLD, replayed_at=YOUNG)
    decided = {await rows.plan(OLD, "approved"), await rows.plan(OLD, "superseded")}
    held, young_plan = await rows.plan(OLD, "pending"), await rows.plan(YOUNG, "approved")
    history = {await rows.history(OLD), await rows.history(YOUNG)}
    finished_actions = {await rows.action(OLD, "done"), await rows.action(OLD, "rejected")}
    kept_actions = {await rows.action(OLD, "approved"), await rows.action(YOUNG, "failed")}

    settings = make_settings(
        database_url=database_url, retention_days=30, delivery_max_age=60 * 86_400
    )
    async with open_deps(settings) as d:
        assert await prune_old_records({"deps": d}) == "pruned"

    assert await rows.ids(tables.events, "uuid") == {young_event}
    assert old_event not in await rows.ids(tables.events, "uuid")
    assert await rows.ids(tables.outbox) == {*unfinished, young_delivered, announceable}
    assert {delivered, given_up, never_announced}.isdisjoint(await rows.ids(tables.outbox))
    # Delivery rows went with their outbox row, and only those.
    async with store.engine.connect() as conn:
        owners = set((await conn.execute(select(tables.deliveries.c.outbox_id))).scalars())
    assert {delivered, given_up}.isdisjoint(owners)
    assert unfinished <= owners
    assert await rows.ids(tables.dead_letters) == {waiting, replayed_lately}
    assert replayed not in await rows.ids(tables.dead_letters)
    assert await rows.ids(tables.resync_plans) == {held, young_plan}
    assert decided.isdisjoint(await rows.ids(tables.resync_plans))
    assert await rows.ids(tables.user_changes) == history
    assert await rows.ids(tables.actions) == kept_actions
    assert finished_actions.isdisjoint(await rows.ids(tables.actions))

    # Nothing left to do: a second run (another day, another worker) changes nothing.
    async with open_deps(settings) as d:
        await prune_old_records({"deps": d})
    assert await rows.ids(tables.outbox) == {*unfinished, young_delivered, announceable}


async def test_the_prune_goes_on_past_one_batch(
    store: Store, account_id: str, make_settings: Callable[..., Settings], database_url: str
) -> None:
    from workers import retention

    rows = Rows(store, account_id)
    async with store.engine.begin() as conn:
        await conn.execute(
            tables.events.insert(),
            [
                {"uuid": f"{account_id}-{n}", "account_id": account_id, "received_at": OLD,
                 "body": "{}"}
                for n in range(retention.BATCH * 2 + 1)
            ],
        )  # fmt: skip
    settings = make_settings(database_url=database_url, retention_days=30)
    async with open_deps(settings) as d:
        await prune_old_records({"deps": d})
    assert await rows.ids(tables.events, "uuid") == set()
