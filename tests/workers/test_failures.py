"""Transient failures retry with backoff, permanent ones are dead-lettered with their reason."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.worker import Retry

from events.queue import JOB_KEY_PREFIX, Queue
from events.settings import Settings
from tests.fixtures.pipeline import eventually
from tests.fixtures.services import free_port
from workers.context import Deps
from workers.failures import BACKOFF, MAX_TRANSIENT_TRIES, backoff, bounded, guarded
from workers.ringcentral.errors import ApiError, RateLimited, ServerUnavailable
from workers.store.engine import create_engine
from workers.store.identity import Store

DAY = 86_400


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    store = await Store.open(sqlite_url)
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def away(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store out of reach until the end: a SQLite file whose directory was moved away, or a
    PostgreSQL address where nothing listens (connections refused)."""
    if request.param == "postgres":
        store = Store(create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x"))
        yield store
        await store.close()
        return
    before = set(threading.enumerate())
    home = tmp_path / "db"
    home.mkdir()
    store = await Store.open(f"sqlite+aiosqlite:///{home / 'ringsync.db'}")
    await store.engine.dispose()  # no connection left open to the file
    home.rename(tmp_path / "elsewhere")
    yield store
    (tmp_path / "elsewhere").rename(home)
    await store.close()

    async def stopped() -> bool:
        started = set(threading.enumerate()) - before
        return not any(t.name.endswith("(_connection_worker_thread)") for t in started)

    # A failed open leaves aiosqlite's thread to stop on its own; it needs this loop to do so.
    await eventually(stopped, within=5, what="aiosqlite's threads to stop")


def ctx_for(
    store: Store, settings: Settings, job_try: int, redis: aioredis.Redis | None = None
) -> dict[str, Any]:
    d = Deps.__new__(Deps)
    d.settings, d.store = settings, store
    if redis is not None:
        d.queue = Queue(redis, settings.queue_name)
    return {"deps": d, "settings": settings, "job_try": job_try, "job_id": settings.key("job")}


async def queued_for_an_hour(redis: aioredis.Redis, settings: Settings) -> str:
    """The job's data (of `ctx_for`) as arq keeps it, due to expire in an hour."""
    key = JOB_KEY_PREFIX + settings.key("job")
    await redis.set(key, b"job", ex=3600)
    return key


def failing(exc: Exception) -> Callable[[], Any]:
    async def work() -> str:
        raise exc

    return work


async def test_transient_failures_retry_with_growing_delays(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    delays = []
    for job_try in (1, 2, 3):
        ctx = ctx_for(store, make_settings(), job_try)
        with pytest.raises(Retry) as raised:
            await guarded(ctx, "reconcile", {}, failing(ServerUnavailable("503", status=503)))
        delays.append(raised.value.defer_score or 0)
    assert delays == sorted(delays)
    assert await store.list_dead_letters() == []


async def test_retry_after_is_honoured() -> None:
    assert backoff(1, RateLimited("light", 42.0)) >= 42.0
    assert backoff(1, RateLimited("light", 42.0), scale=0.01) >= 42.0


def test_the_schedule_scales() -> None:
    assert backoff(len(BACKOFF), scale=0.01) <= BACKOFF[-1] * 0.01 * 1.25
    assert backoff(len(BACKOFF)) >= BACKOFF[-1]


async def test_permanent_failures_are_dead_lettered(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    ctx = ctx_for(store, make_settings(), 1)
    error = ApiError("GET /x: HTTP 400 CMN-101 bad", status=400, error_code="CMN-101")
    outcome = await guarded(ctx, "reconcile", {"extension_id": "7"}, failing(error))
    assert outcome == "dead-lettered"
    (letter,) = await store.list_dead_letters()
    assert letter.job == "reconcile"
    assert letter.arguments == {"extension_id": "7"}
    assert "CMN-101" in letter.error


async def test_transient_failures_that_outlive_their_tries_are_dead_lettered(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    ctx = ctx_for(store, make_settings(), MAX_TRANSIENT_TRIES)
    outcome = await guarded(
        ctx, "ingest", {"uuid": "u"}, failing(ServerUnavailable("503", status=503))
    )
    assert outcome == "dead-lettered"
    assert len(await store.list_dead_letters()) == 1


async def test_a_database_outage_outlasting_every_try_keeps_the_job_queued(
    away: Store, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    """An hour and more without the database: no try is the last, and the job's data is kept."""
    settings = make_settings()
    key = await queued_for_an_hour(redis, settings)

    async def ingest() -> bool:
        return await away.record_event(uuid="u-1", body="{}")

    for job_try in (1, MAX_TRANSIENT_TRIES, MAX_TRANSIENT_TRIES + 50):
        ctx = ctx_for(away, settings, job_try, redis)
        with pytest.raises(Retry) as raised:
            await guarded(ctx, "ingest", {"uuid": "u-1"}, ingest)
        assert (raised.value.defer_score or 0) <= BACKOFF[-1] * 1250
    assert await redis.pttl(key) > DAY * 1000


async def test_a_dead_letter_that_cannot_be_written_keeps_its_job_queued(
    away: Store, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    ctx = ctx_for(away, make_settings(), 1, redis)
    error = ApiError("GET /x: HTTP 400 CMN-101 bad", status=400, error_code="CMN-101")
    with pytest.raises(Retry):
        await guarded(ctx, "reconcile", {"extension_id": "7"}, failing(error))


async def _slow(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


async def test_a_job_past_its_own_time_is_retried_instead_of_failed_by_arq(
    store: Store, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    """Cut by its own limit again and again (a store that never answers): still queued."""
    job = bounded(_slow, 0.05)
    assert await job({"job_try": 1}, 0.0) == "done"
    with pytest.raises(Retry):
        await job({"job_try": 1, "job_id": "j-1"}, 5.0)
    settings = make_settings()
    key = await queued_for_an_hour(redis, settings)
    with pytest.raises(Retry):
        await job(ctx_for(store, settings, MAX_TRANSIENT_TRIES, redis), 5.0)
    assert await redis.pttl(key) > DAY * 1000


async def test_a_ringcentral_failure_escaping_a_job_out_of_tries_is_raised() -> None:
    async def down(ctx: dict[str, Any]) -> None:
        raise ServerUnavailable("GET /x: HTTP 503", status=503)

    with pytest.raises(Retry):
        await bounded(down, 5)({"job_try": 1})
    with pytest.raises(ServerUnavailable):  # out of tries: arq records the failure
        await bounded(down, 5)({"job_try": MAX_TRANSIENT_TRIES})


async def test_a_transient_failure_escaping_a_job_is_retried_a_permanent_one_raised() -> None:
    async def refused(ctx: dict[str, Any]) -> None:
        raise ConnectionRefusedError("database away")

    async def bug(ctx: dict[str, Any]) -> None:
        raise KeyError("a bug")

    with pytest.raises(Retry):
        await bounded(refused, 5)({"job_try": 1})
    with pytest.raises(KeyError):
        await bounded(bug, 5)({"job_try": 1})


async def test_failures_handed_over_from_earlier_jobs_count(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    ctx = ctx_for(store, make_settings(), 1)
    error = ServerUnavailable("503", status=503)
    with pytest.raises(Retry):
        await guarded(ctx, "reconcile", {}, failing(error), failed=MAX_TRANSIENT_TRIES - 2)
    outcome = await guarded(ctx, "reconcile", {}, failing(error), failed=MAX_TRANSIENT_TRIES - 1)
    assert outcome == "dead-lettered"
    (letter,) = await store.list_dead_letters()
    assert letter.attempts == MAX_TRANSIENT_TRIES
