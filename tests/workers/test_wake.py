"""An idle worker sleeps between polls until `Queue` announces work, instead of polling Redis
every 10 ms: it still starts a job at once, a deferred one when it comes due, and polls as before
where it cannot listen."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import RedisSettings
from arq.worker import func

from events.queue import Queue, wake_channel
from tests.fixtures.pipeline import eventually
from tests.fixtures.services import PrivateRedis
from workers import claim, wake
from workers.claim import ClaimingWorker

QUEUE = "arq:queue"
# Long enough that a job started by the fallback poll is told apart from one started on a wake.
FALLBACK = 5.0


@pytest.fixture(autouse=True)
def long_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wake, "IDLE_POLL", FALLBACK)


@contextlib.asynccontextmanager
async def running(
    redis_url: str, ran: dict[str, float], *, max_jobs: int = 10
) -> AsyncIterator[ClaimingWorker]:
    """A worker (not burst) with a wake channel, polling every 10 ms as ringsync's."""

    async def job(ctx: dict[str, Any], name: str) -> None:
        ran[name] = time.time()

    worker = ClaimingWorker(
        functions=[func(job, name="job")],
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=QUEUE,
        poll_delay=0.01,
        max_jobs=max_jobs,
        handle_signals=False,
    )
    worker.wake_channel = wake_channel(QUEUE)
    task = asyncio.create_task(worker.main())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()


async def _polls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_zrangebyscore", {}).get("calls", 0))


async def _listening(client: aioredis.Redis) -> None:
    async def subscribed() -> bool:
        found = await client.pubsub_numsub(wake_channel(QUEUE))
        return bool(found and found[0][1] >= 1)

    await eventually(subscribed, within=10, what="the worker listening on its wake channel")


async def test_an_idle_worker_sleeps_yet_starts_a_job_at_once(private_redis: PrivateRedis) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    ran: dict[str, float] = {}
    async with running(private_redis.url, ran):
        await _listening(client)
        await client.config_resetstat()
        # Counting what an idle worker does over a while needs the while: 30 polls at 10 ms.
        await asyncio.sleep(0.3)
        assert await _polls(client) <= 2  # polling every 10 ms: ~30

        queued = time.time()
        await Queue(client, QUEUE).enqueue("job", "now", job_id="now")
        await eventually(lambda: asyncio.sleep(0, "now" in ran), within=FALLBACK * 2, what="run")
        assert ran["now"] - queued < FALLBACK / 2  # woken, not found by the fallback poll
    await client.aclose()


async def test_a_deferred_job_starts_when_due_not_at_the_next_fallback_poll(
    private_redis: PrivateRedis,
) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    ran: dict[str, float] = {}
    async with running(private_redis.url, ran):
        await _listening(client)
        queued = time.time()
        await Queue(client, QUEUE).enqueue("job", "later", job_id="later", defer_by=0.3)
        await eventually(lambda: asyncio.sleep(0, "later" in ran), within=FALLBACK * 2)
        assert 0.3 <= ran["later"] - queued < FALLBACK / 2
    await client.aclose()


async def test_a_redis_user_that_may_not_publish_still_queues_and_its_workers_poll(
    private_redis: PrivateRedis,
) -> None:
    admin = aioredis.Redis.from_url(private_redis.url)
    # Every key and command, no channel: PUBLISH and SUBSCRIBE are refused (NOPERM).
    await admin.execute_command("ACL", "SETUSER", "ringsync", "on", ">pw", "~*", "+@all")
    url = f"redis://ringsync:pw@127.0.0.1:{private_redis.port}/0"
    limited = aioredis.Redis.from_url(url)
    ran: dict[str, float] = {}
    async with running(url, ran) as worker:
        assert await Queue(limited, QUEUE).enqueue("job", "refused", job_id="refused")
        await eventually(lambda: asyncio.sleep(0, "refused" in ran), within=FALLBACK / 2)
        assert worker._waker is not None
        assert not worker._waker.listening
    await limited.aclose()
    await admin.aclose()


async def test_a_job_another_worker_runs_keeps_no_idle_worker_polling(
    private_redis: PrivateRedis,
) -> None:
    """A due job held by another worker (a 30-minute listing, say) stays in arq's queue: once
    asked about, it does not keep an idle worker polling every 10 ms."""
    client = aioredis.Redis.from_url(private_redis.url)
    ran: dict[str, float] = {}
    async with running(private_redis.url, ran):
        await _listening(client)
        await client.set("arq:in-progress:held", b"1", px=60_000)
        await Queue(client, QUEUE).enqueue("job", "held", job_id="held")

        async def asked() -> bool:
            stats = await client.info("commandstats")
            return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) >= 2  # queue, claim

        await eventually(asked, within=5, what="the worker asking about the held job")
        await client.config_resetstat()
        await asyncio.sleep(0.3)  # as above: counting polls needs the while
        assert await _polls(client) <= 2
        assert "held" not in ran
    await client.aclose()


async def test_jobs_another_worker_runs_do_not_hide_waiting_ones_from_a_free_worker(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running jobs stay at the head of arq's queue. A worker with 3 free slots asks about the
    first 3 due jobs, finds them held by another worker, and must not go to sleep: a job
    waiting behind them is due too."""
    monkeypatch.setattr(claim, "RUNNING_ELSEWHERE", 0.05)
    client = aioredis.Redis.from_url(private_redis.url)
    ran: dict[str, float] = {}
    async with running(private_redis.url, ran, max_jobs=3):
        await _listening(client)
        queue = Queue(client, QUEUE)
        for n in range(3):  # another worker's, by the time they are queued
            await client.set(f"arq:in-progress:held{n}", b"1", px=60_000)
            await queue.enqueue("job", f"held{n}", job_id=f"held{n}")

        async def all_due() -> bool:
            return int(await client.zcount(QUEUE, "-inf", int(time.time() * 1000))) == 3

        await eventually(all_due, within=5, what="the held jobs due")
        # The scenario: this worker's memory of them as held elsewhere has run out.
        await asyncio.sleep(0.1)
        started = time.time()
        await queue.enqueue("job", "waiting", job_id="waiting")
        await eventually(lambda: asyncio.sleep(0, "waiting" in ran), within=FALLBACK * 2)
        assert ran["waiting"] - started < FALLBACK / 2
        assert not any(name.startswith("held") for name in ran)
    await client.aclose()
