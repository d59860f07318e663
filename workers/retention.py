"""Retention: what the identity store forgets, once a day.

Older than RINGSYNC_RETENTION_DAYS: raw notifications (`events`), outbox rows whose every
delivery is finished (delivered, or skipped by an operator) with those delivery rows, dead
letters already replayed (or closed), and resync plans already decided (approved or
superseded). What is kept whatever its age: users and their history (`user_changes`), outbox
rows with any delivery unfinished (pending, in backoff, dead, unsubscribed: they can still be
sent or replayed), dead letters not replayed, held plans.

An outbox row that never had a delivery (nobody was listening when it was written) goes too,
but only once it is also older than RINGSYNC_DELIVERY_MAX_AGE: until then an endpoint added
meanwhile is still offered it (see workers.delivery.store `materialize`).

Rows go in batches, each its own short transaction: SQLite admits one writer at a time, and the
pipeline must not wait behind a long delete. (arq's own job records expire by themselves.)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from workers.context import deps
from workers.resync.store import PENDING
from workers.store import tables
from workers.store.engine import write_transaction

log = logging.getLogger(__name__)

# When the daily prune runs (UTC): away from the default resync (03:00).
PRUNE_AT: Final = time(2, 30)
BATCH: Final = 1000
# Delivery statuses that will never change again (see workers.delivery.store).
FINISHED: Final = ("delivered", "skipped")

_d = tables.deliveries
_o = tables.outbox


@dataclass(frozen=True)
class Pruned:
    """Rows deleted, per table (an outbox row's delivery rows go with it)."""

    events: int
    outbox: int
    dead_letters: int
    resync_plans: int
    actions: int


Remove = Callable[[AsyncConnection, list[Any]], Awaitable[object]]


async def prune(
    engine: AsyncEngine, *, before: datetime, unannounced_before: datetime | None = None
) -> Pruned:
    """Delete what retention lets go of, older than `before`; outbox rows that never had a
    delivery must be older than `unannounced_before` too (default: `before`)."""
    events, letters, plans = tables.events, tables.dead_letters, tables.resync_plans
    actions = tables.actions
    finished_actions = ("done", "failed", "rejected", "cancelled")
    unannounced = min(before, unannounced_before or before)
    all_finished = ~exists().where(_d.c.outbox_id == _o.c.id, _d.c.status.not_in(FINISHED))
    announced = exists().where(_d.c.outbox_id == _o.c.id)

    async def outbox_rows(conn: AsyncConnection, ids: list[Any]) -> None:
        await conn.execute(_d.delete().where(_d.c.outbox_id.in_(ids)))
        await conn.execute(_o.delete().where(_o.c.id.in_(ids)))

    return Pruned(
        events=await _in_batches(
            engine,
            select(events.c.id).where(events.c.received_at < before),
            lambda conn, ids: conn.execute(events.delete().where(events.c.id.in_(ids))),
        ),
        outbox=await _in_batches(
            engine,
            select(_o.c.id).where(
                _o.c.created_at < before,
                all_finished,
                announced | (_o.c.created_at < unannounced),
            ),
            outbox_rows,
        ),
        dead_letters=await _in_batches(
            engine,
            select(letters.c.id).where(letters.c.replayed_at < before),
            lambda conn, ids: conn.execute(letters.delete().where(letters.c.id.in_(ids))),
        ),
        resync_plans=await _in_batches(
            engine,
            select(plans.c.id).where(plans.c.status != PENDING, plans.c.created_at < before),
            lambda conn, ids: conn.execute(plans.delete().where(plans.c.id.in_(ids))),
        ),
        actions=await _in_batches(
            engine,
            select(actions.c.id).where(
                actions.c.state.in_(finished_actions), actions.c.finished_at < before
            ),
            lambda conn, ids: conn.execute(actions.delete().where(actions.c.id.in_(ids))),
        ),
    )


async def _in_batches(engine: AsyncEngine, ids: Select[Any], remove: Remove) -> int:
    """Remove the rows `ids` selects, BATCH at a time, each batch its own transaction.

    Each batch is chosen inside its write transaction, so nothing can change it in between
    (a delivery reopened by a replay, say).
    """
    removed = 0
    while True:
        async with write_transaction(engine) as conn:
            batch = list((await conn.execute(ids.limit(BATCH))).scalars())
            if batch:
                await remove(conn, batch)
        removed += len(batch)
        if len(batch) < BATCH:
            return removed


async def prune_old_records(ctx: dict[str, Any]) -> str:
    """The worker's daily retention cron."""
    d = deps(ctx)
    now = datetime.now(UTC)
    pruned = await prune(
        d.store.engine,
        before=now - timedelta(days=d.settings.retention_days),
        unannounced_before=now - timedelta(seconds=d.settings.delivery_max_age),
    )
    log.info("old records pruned", extra=dataclasses.asdict(pruned))
    return "pruned"
