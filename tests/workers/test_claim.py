"""Two workers claiming the same polled jobs: each job runs once; a poll's jobs are claimed in
one script call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.utils import timestamp_ms
from arq.worker import func

from events.queue import Queue
from tests.fixtures.pipeline import eventually
from tests.fixtures.services import PrivateRedis
from workers import claim
from workers.claim import ClaimingWorker

JOBS = 200


def _worker(port: int, job: Any, pool: ArqRedis | None = None) -> ClaimingWorker:
    return ClaimingWorker(
        functions=[func(job, name="job")],
        redis_settings=RedisSettings(port=port),
        redis_pool=pool,
        burst=True,
        poll_delay=0.001,
        max_jobs=20,
        handle_signals=False,
    )


async def test_two_workers_run_every_job_once_claiming_a_poll_at_a_time(
    private_redis: PrivateRedis,
) -> None:
    ran: list[int] = []

    async def job(ctx: dict[str, Any], n: int) -> None:
        ran.append(n)
        await asyncio.sleep(0)  # both workers' polls interleave while jobs run

    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "arq:queue")
    await asyncio.gather(*(queue.enqueue("job", n, job_id=f"j{n}") for n in range(JOBS)))
    await client.config_resetstat()
    workers = [_worker(private_redis.port, job) for _ in range(2)]
    await asyncio.gather(*(w.main() for w in workers))
    await asyncio.gather(*(w.close() for w in workers))

    assert sorted(ran) == list(range(JOBS))  # none twice, none lost
    assert sum(w.jobs_complete for w in workers) == JOBS
    stats = await client.info("commandstats")
    assert "cmdstat_watch" not in stats  # arq's own claim WATCHes each job it polled
    assert stats["cmdstat_evalsha"]["calls"] > 0  # every start went through the script
    await client.aclose()


async def _all_due(client: aioredis.Redis, jobs: int) -> None:
    """One account's jobs are due a millisecond apart: wait until all of them are."""

    async def due() -> bool:
        return int(await client.zcount("arq:queue", "-inf", timestamp_ms())) == jobs

    await eventually(due, within=5, what="every job due")


async def test_a_full_worker_starts_what_fits_and_returns(private_redis: PrivateRedis) -> None:
    release = asyncio.Event()

    async def job(ctx: dict[str, Any], n: int) -> None:
        await release.wait()

    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "arq:queue")
    await asyncio.gather(*(queue.enqueue("job", n, job_id=f"j{n}") for n in range(25)))
    await _all_due(client, 25)
    pool = await create_pool(RedisSettings(port=private_redis.port))
    worker = _worker(private_redis.port, job, pool)
    await worker.start_jobs([f"j{n}".encode() for n in range(18)])
    # Two slots left of 20: two start, and the poll ends without waiting for a third.
    await asyncio.wait_for(worker.start_jobs([f"j{n}".encode() for n in range(18, 25)]), 5)
    assert sorted(worker.tasks) == sorted(f"j{n}" for n in range(20))
    release.set()
    await asyncio.gather(*worker.tasks.values())
    await worker.close()
    await client.aclose()


async def test_a_poll_is_one_call(private_redis: PrivateRedis) -> None:
    ran: list[int] = []

    async def job(ctx: dict[str, Any], n: int) -> None:
        ran.append(n)

    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "arq:queue")
    await asyncio.gather(*(queue.enqueue("job", n, job_id=f"j{n}") for n in range(25)))
    pool = await create_pool(RedisSettings(port=private_redis.port))
    worker = _worker(private_redis.port, job, pool)
    await worker.start_jobs([b"none"])  # loads the script; claims nothing
    assert not worker.tasks
    await _all_due(client, 25)
    await client.config_resetstat()
    await worker.start_jobs([f"j{n}".encode() for n in range(25)])
    calls = (await client.info("commandstats"))["cmdstat_evalsha"]["calls"]
    assert calls == 1
    assert len(worker.tasks) == 20  # max_jobs: the other five wait for a later poll
    await asyncio.gather(*worker.tasks.values())
    assert sorted(ran) == list(range(20))
    await worker.close()
    await client.aclose()


async def test_a_deferred_or_running_job_is_not_claimed(private_redis: PrivateRedis) -> None:
    ran: list[str] = []

    async def job(ctx: dict[str, Any], name: str) -> None:
        ran.append(name)

    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "arq:queue")
    await queue.enqueue("job", "later", job_id="later", defer_by=3600)
    await queue.enqueue("job", "held", job_id="held")
    await queue.enqueue("job", "now", job_id="now")
    await client.set("arq:in-progress:held", b"1", px=60_000)  # another worker runs it
    pool = await create_pool(RedisSettings(port=private_redis.port))
    worker = _worker(private_redis.port, job, pool)
    await worker.start_jobs([b"later", b"held", b"now"])
    await asyncio.gather(*worker.tasks.values())
    await worker.close()
    assert ran == ["now"]
    assert await client.zscore("arq:queue", "later") is not None
    assert await client.zscore("arq:queue", "held") is not None
    await client.aclose()


async def test_redis_refusing_writes_leaves_the_job_queued_and_the_worker_polling(
    private_redis: PrivateRedis,
) -> None:
    ran: list[str] = []

    async def job(ctx: dict[str, Any], name: str) -> None:
        ran.append(name)

    client = aioredis.Redis.from_url(private_redis.url)
    await Queue(client, "arq:queue").enqueue("job", "now", job_id="now")
    pool = await create_pool(RedisSettings(port=private_redis.port))
    worker = _worker(private_redis.port, job, pool)
    await client.config_set("maxmemory-policy", "noeviction")
    await client.config_set("maxmemory", 1)  # every write is refused (OOM), as arq's own claim
    try:
        await worker.start_jobs([b"now"])  # not claimed, and no error ends the worker
        assert worker.job_counter == 0
        assert not worker.tasks
    finally:
        await client.config_set("maxmemory", 0)
    await worker.start_jobs([b"now"])
    await asyncio.gather(*worker.tasks.values())
    assert ran == ["now"]
    await worker.close()
    await client.aclose()


async def test_jobs_running_here_or_elsewhere_are_not_asked_about_every_poll(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arq keeps a running job queued until it ends: every 10 ms poll saw it again, and each
    such poll was a script call. A job this worker runs, or that the script just found another
    worker holding, is left out; a poll with nothing else in it makes no call."""
    monkeypatch.setattr(claim, "RUNNING_ELSEWHERE", 60.0)  # a slow machine's polls still count
    release = asyncio.Event()
    ran: list[str] = []

    async def job(ctx: dict[str, Any], name: str) -> None:
        ran.append(name)
        await release.wait()

    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "arq:queue")
    for name in ("held", "mine", "new"):
        await queue.enqueue("job", name, job_id=name)
    await client.set("arq:in-progress:held", b"1", px=60_000)  # another worker runs it
    await _all_due(client, 3)
    pool = await create_pool(RedisSettings(port=private_redis.port))
    worker = _worker(private_redis.port, job, pool)
    await worker.start_jobs([b"held", b"mine"])
    assert sorted(worker.tasks) == ["mine"]
    assert worker.job_counter == 1  # the slot polled for "held" was given back

    await client.config_resetstat()
    await worker.start_jobs([b"held", b"mine"])
    assert "cmdstat_evalsha" not in await client.info("commandstats")
    assert worker.job_counter == 1
    await worker.start_jobs([b"held", b"mine", b"new"])  # only the new one is asked about
    assert (await client.info("commandstats"))["cmdstat_evalsha"]["calls"] == 1
    assert sorted(worker.tasks) == ["mine", "new"]
    release.set()
    await asyncio.gather(*worker.tasks.values())
    assert sorted(ran) == ["mine", "new"]
    await worker.close()
    await client.aclose()
