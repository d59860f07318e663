"""The ingest job on real parts: raw events kept once, the users they name read or queued."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy import event as sa_event

from events.queue import RENEW, Queue
from tests.fixtures.pipeline import MakePipeline, Pipeline
from workers.context import deps, shutdown, startup
from workers.ingest import INLINE_BACKLOG, ingest
from workers.reconcile import reconcile_batch

Ctx = dict[str, Any]


@pytest.fixture
async def quiet(make_pipeline: MakePipeline, sqlite_url: str) -> Pipeline:
    return await make_pipeline(database_url=sqlite_url, workers=0)


@pytest.fixture
async def ctx(quiet: Pipeline) -> AsyncIterator[Ctx]:
    pool: ArqRedis = await create_pool(RedisSettings.from_dsn(quiet.settings.redis_url))
    context: Ctx = {"settings": quiet.settings, "redis": pool, "job_try": 1}
    await startup(context)
    yield context
    await shutdown(context)
    await pool.aclose()


def raw(event: str, body: dict[str, Any], uid: str | None = None) -> bytes:
    return orjson.dumps(
        {"uuid": uid or str(uuid.uuid4()), "event": event, "body": body,
         "timestamp": "2026-11-23T10:00:00.000Z", "subscriptionId": "s-1"}
    )  # fmt: skip


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_directory_events_only_name_users_to_read(quiet: Pipeline, ctx: Ctx) -> None:
    ext = quiet.sandbox.world.create_user(first_name="Dir", last_name="Ectory")
    account = quiet.sandbox.account_id
    contact = {"id": ext, "eventType": "Update", "type": "User", "status": "Disabled"}
    body = raw(f"/restapi/v1.0/account/{account}/directory/entries", {"contacts": [contact]})
    assert await ingest(ctx, body, now_ms()) == "scheduled"
    row = (await quiet.mirror())[ext]
    assert (row.state.value, row.status) == ("active", "Enabled")  # RingCentral's answer
    assert quiet.reads() == 1


async def test_a_notification_is_ingested_once(quiet: Pipeline, ctx: Ctx) -> None:
    body = raw("/restapi/v1.0/account/~/extension", {"extensionId": "1", "eventType": "Update"})
    assert await ingest(ctx, body, now_ms()) == "scheduled"
    assert await ingest(ctx, body, now_ms()) == "duplicate"
    assert await deps(ctx).store.count("events") == 1


async def test_unknown_events_are_stored_and_ignored(quiet: Pipeline, ctx: Ctx) -> None:
    body = raw("/restapi/v1.0/account/~/extension/1/grant", {"extensionId": "1"})
    assert await ingest(ctx, body, now_ms()) == "ignored"
    assert await deps(ctx).store.count("events") == 1
    assert await deps(ctx).coalescer.dirty() == []


async def test_the_renewal_reminder_queues_a_renewal(quiet: Pipeline, ctx: Ctx) -> None:
    body = raw("/restapi/v1.0/subscription/~?threshold=172800&interval=900", {"id": "s-1"})
    assert await ingest(ctx, body, now_ms()) == "renewal"
    pool: ArqRedis = ctx["redis"]
    job_id = quiet.settings.key("renew", "reminder")
    assert await pool.zscore(quiet.settings.queue_name, job_id) is not None
    job = await pool.get(f"arq:job:{job_id}")
    assert job is not None
    assert RENEW.encode() in job


async def test_an_ingest_cut_short_is_finished_by_its_retry(quiet: Pipeline, ctx: Ctx) -> None:
    """Stored but never scheduled (a crash in between): the retry schedules it after all."""
    uid = str(uuid.uuid4())
    body = raw("/restapi/v1.0/account/~/extension", {"extensionId": "42"}, uid)
    store = deps(ctx).store
    assert await store.record_event(uuid=uid, body=body.decode(), outcome="received")
    assert await ingest(ctx, body, now_ms()) == "scheduled"
    assert quiet.reads() == 1  # reconciled (at once, inside the ingest)
    assert await store.event_outcome(uid) == "scheduled"
    assert await ingest(ctx, body, now_ms()) == "duplicate"
    assert quiet.reads() == 1


def queued(quiet: Pipeline, ctx: Ctx, extension_id: str, generation: int) -> Any:
    pool: ArqRedis = ctx["redis"]
    job_id = quiet.settings.key("reconcile", extension_id, str(generation))
    return pool.zscore(quiet.settings.queue_name, job_id)


async def test_a_lone_change_is_reconciled_inside_the_ingest(quiet: Pipeline, ctx: Ctx) -> None:
    ext = quiet.sandbox.world.create_user(first_name="At", last_name="Once")
    update = {"extensionId": ext, "eventType": "Update"}
    assert await ingest(ctx, raw("/restapi/v1.0/account/~/extension", update), now_ms()) == (
        "scheduled"
    )
    assert (await quiet.mirror())[ext].last_name == "Once"  # no worker runs: the ingest did it
    assert quiet.reads() == 1
    assert await queued(quiet, ctx, ext, 1) is None
    assert await deps(ctx).coalescer.dirty() == []

    # Read just now: a second change within the coalescing window waits for its own job.
    quiet.sandbox.world.update_user(ext, last_name="Later")
    assert await ingest(ctx, raw("/restapi/v1.0/account/~/extension", update), now_ms()) == (
        "scheduled"
    )
    assert quiet.reads() == 1
    assert await queued(quiet, ctx, ext, 2) is not None
    assert await deps(ctx).coalescer.dirty() == [ext]


async def test_a_change_during_a_listing_waits_for_its_job(quiet: Pipeline, ctx: Ctx) -> None:
    ext = quiet.sandbox.world.create_user(first_name="Wait", last_name="Turn")
    await deps(ctx).coalescer.set_batch_active(True)
    update = {"extensionId": ext, "eventType": "Update"}
    assert await ingest(ctx, raw("/restapi/v1.0/account/~/extension", update), now_ms()) == (
        "scheduled"
    )
    assert quiet.reads() == 0
    assert await queued(quiet, ctx, ext, 1) is not None
    assert ext not in await quiet.mirror()


async def test_under_a_backlog_changes_are_queued_so_a_listing_can_cover_them(
    quiet: Pipeline, ctx: Ctx
) -> None:
    ext = quiet.sandbox.world.create_user(first_name="Busy", last_name="Day")
    d = deps(ctx)
    for _ in range(INLINE_BACKLOG):
        await d.queue.enqueue("not-run-here")
    update = {"extensionId": ext, "eventType": "Update"}
    assert await ingest(ctx, raw("/restapi/v1.0/account/~/extension", update), now_ms()) == (
        "scheduled"
    )
    assert quiet.reads() == 0
    assert await queued(quiet, ctx, ext, 1) is not None
    assert await d.coalescer.dirty() == [ext]


async def test_other_accounts_backlog_does_not_hold_a_lone_change_back(
    quiet: Pipeline, ctx: Ctx
) -> None:
    """A hundred accounts changing a user each are no burst: this account's change is still
    reconciled at once, not queued behind them as a second job."""
    ext = quiet.sandbox.world.create_user(first_name="Many", last_name="Accounts")
    d = deps(ctx)
    others = [Queue(d.redis, d.queue.name, account=str(9000 + n)) for n in range(INLINE_BACKLOG)]
    for other in others:
        await other.enqueue("not-run-here")
    assert await d.queue.backlog() >= INLINE_BACKLOG
    update = {"extensionId": ext, "eventType": "Update"}
    assert await ingest(ctx, raw("/restapi/v1.0/account/~/extension", update), now_ms()) == (
        "scheduled"
    )
    assert (await quiet.mirror())[ext].last_name == "Accounts"
    assert quiet.reads() == 1
    assert await queued(quiet, ctx, ext, 1) is None


async def test_a_bulk_change_is_one_listing_job_and_what_it_misses_gets_its_own(
    quiet: Pipeline, ctx: Ctx
) -> None:
    """Single jobs for 60 users would crowd the workers for nothing: one listing covers them.
    A user the listing cannot see (deleted meanwhile) still gets a read of its own after it."""
    world = quiet.sandbox.world
    ids = world.seed(60)
    changes = [{"extensionId": ext, "eventType": "Update"} for ext in ids]
    body = raw("/restapi/v1.0/account/~/extension", {"extensions": changes})
    assert await ingest(ctx, body, now_ms()) == "scheduled"
    pool: ArqRedis = ctx["redis"]
    batch = quiet.settings.key("batch", "pending")
    assert await pool.zscore(quiet.settings.queue_name, batch) is not None
    assert [ext for ext in ids if await queued(quiet, ctx, ext, 1) is not None] == []
    assert quiet.reads() == 0

    gone = ids[-1]
    world.delete(gone)
    assert await reconcile_batch(ctx, "bulk") == "59 extensions"
    assert len(await quiet.mirror()) == 59
    assert [ext for ext in ids if await queued(quiet, ctx, ext, 1) is not None] == [gone]


async def test_a_listing_given_up_leaves_each_user_its_own_read(quiet: Pipeline, ctx: Ctx) -> None:
    world = quiet.sandbox.world
    ids = world.seed(60)
    changes = [{"extensionId": ext, "eventType": "Update"} for ext in ids]
    body = raw("/restapi/v1.0/account/~/extension", {"extensions": changes})
    assert await ingest(ctx, body, now_ms()) == "scheduled"
    world.set_faults(refuse={"GET /restapi/v1.0/account/*/extension": 400})  # permanent
    assert await reconcile_batch(ctx, "bulk") == "dead-lettered"
    assert [ext for ext in ids if await queued(quiet, ctx, ext, 1) is None] == []


def writes_to_events(statements: list[str]) -> int:
    return sum(
        1
        for s in statements
        if s.lstrip().upper().startswith(("INSERT INTO EVENTS", "UPDATE EVENTS"))
    )


@pytest.fixture
def statements(ctx: Ctx) -> list[str]:
    """Every statement the worker's engine sends from now on (BEGIN included)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    for engine in deps(ctx).store.statements.engines():
        sa_event.listen(engine, "before_cursor_execute", record)
    return sent


async def test_an_ingest_writes_its_event_row_once(
    quiet: Pipeline, ctx: Ctx, statements: list[str]
) -> None:
    """The row is stored with its outcome in one write, not as "received" and then updated."""
    ext = quiet.sandbox.world.create_user(first_name="One", last_name="Write")
    update = {"extensionId": ext, "eventType": "Update"}
    body = raw("/restapi/v1.0/account/~/extension", update)
    assert await ingest(ctx, body, now_ms()) == "scheduled"
    assert (await quiet.mirror())[ext].last_name == "Write"
    assert writes_to_events(statements) == 1
    assert await deps(ctx).store.event_outcome(orjson.loads(body)["uuid"]) == "scheduled"


async def test_an_ignored_notification_costs_one_write_transaction(
    ctx: Ctx, statements: list[str]
) -> None:
    first = raw("/restapi/v1.0/account/~/extension/1/grant", {"extensionId": "1"})
    assert await ingest(ctx, first, now_ms()) == "ignored"  # notes the arrival time too
    statements.clear()
    second = raw("/restapi/v1.0/account/~/extension/1/grant", {"extensionId": "1"})
    assert await ingest(ctx, second, now_ms()) == "ignored"
    assert [s for s in statements if s.startswith("BEGIN IMMEDIATE")] == ["BEGIN IMMEDIATE"]
    assert writes_to_events(statements) == 1
