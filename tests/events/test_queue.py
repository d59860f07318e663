"""The group-commit queue writes jobs that a stock arq worker runs, and loses none."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import RedisSettings
from arq.worker import Worker, func

from events.queue import TURN_MS, Queue
from tests.fixtures.services import PrivateRedis


async def test_concurrent_enqueues_share_round_trips(private_redis: PrivateRedis) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "q")
    results = await asyncio.gather(
        *(queue.enqueue("job", i, job_id=f"id-{i % 300}") for i in range(400))
    )
    assert results.count(True) == 300  # the 100 repeated ids were refused, not lost
    assert await client.zcard("q") == 300
    stats = await client.info("commandstats")
    # 400 enqueues issued together travel in a handful of scripts, not 400 round trips.
    assert stats["cmdstat_evalsha"]["calls"] < 20
    await client.aclose()


async def test_a_lone_enqueue_is_written_at_once(redis: aioredis.Redis, namespace: str) -> None:
    queue = Queue(redis, f"{namespace}:q")
    assert await asyncio.wait_for(queue.enqueue("job", job_id=f"{namespace}-1"), 0.5)
    assert await redis.zcard(f"{namespace}:q") == 1
    await redis.delete(f"arq:job:{namespace}-1")


async def test_defer_by_sets_the_score(redis: aioredis.Redis, namespace: str) -> None:
    queue = Queue(redis, f"{namespace}:q")
    await queue.enqueue("job", job_id=f"{namespace}-now")
    await queue.enqueue("job", job_id=f"{namespace}-later", defer_by=30)
    now = await redis.zscore(f"{namespace}:q", f"{namespace}-now")
    later = await redis.zscore(f"{namespace}:q", f"{namespace}-later")
    assert now is not None
    assert later is not None
    assert 29_000 <= later - now <= 31_000
    await redis.delete(f"arq:job:{namespace}-now", f"arq:job:{namespace}-later")


async def test_accounts_take_turns(redis: aioredis.Redis, namespace: str) -> None:
    name = f"{namespace}:q"
    busy, lone = Queue(redis, name, account="2001"), Queue(redis, name, account="2002")
    ids = [f"{namespace}-busy-{i}" for i in range(2000)]
    await asyncio.gather(*(busy.enqueue("job", job_id=job_id) for job_id in ids))
    await busy.enqueue("job", job_id=f"{namespace}-busy-later", defer_by=30)
    await lone.enqueue("job", job_id=f"{namespace}-lone")
    try:
        # The lone account's job goes ahead of the busy account's 2,000, not behind them.
        assert await redis.zrank(name, f"{namespace}-lone") in (0, 1)
        scores = sorted(score for _, score in await redis.zrange(name, 0, -1, withscores=True))
        busy_scores = scores[:1] + scores[2:-1]
        # The busy account's jobs are due one per TURN_MS, not all at once...
        assert busy_scores[-1] - busy_scores[0] >= (len(ids) - 1) * TURN_MS
        # ...and its deferred job keeps its own time.
        later = await redis.zscore(name, f"{namespace}-busy-later")
        assert later is not None
        assert later - busy_scores[0] >= 29_000
    finally:
        await redis.delete(*(f"arq:job:{job_id}" for job_id in ids))
        await redis.delete(f"arq:job:{namespace}-busy-later", f"arq:job:{namespace}-lone")
        await redis.delete(busy.turn_key("2001"), lone.turn_key("2002"))


async def test_an_accounts_backlog_counts_its_own_waiting_jobs_only(
    redis: aioredis.Redis, namespace: str
) -> None:
    name = f"{namespace}:q"
    busy, lone, idle = (Queue(redis, name, account=a) for a in ("2001", "2002", "2003"))
    ids = [f"{namespace}-busy-{i}" for i in range(60)]
    try:
        await asyncio.gather(*(busy.enqueue("job", job_id=job_id) for job_id in ids))
        await lone.enqueue("job", job_id=f"{namespace}-lone")
        assert await busy.account_backlog() >= len(ids) - 1
        assert await lone.account_backlog() <= 1
        assert await idle.account_backlog() == 0
        # The whole queue is long all the same: that is not the lone account's burst.
        assert await lone.backlog() == len(ids) + 1
    finally:
        await redis.delete(*(f"arq:job:{job_id}" for job_id in ids))
        await redis.delete(f"arq:job:{namespace}-lone")
        await redis.delete(*(q.turn_key(a) for q, a in ((busy, "2001"), (lone, "2002"))))


async def test_errors_reach_every_waiting_caller() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    queue = Queue(client, "q")
    outcomes = await asyncio.gather(
        *(queue.enqueue("job") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, Exception) for o in outcomes)
    await client.aclose()


async def test_a_real_arq_worker_runs_what_was_queued(private_redis: PrivateRedis) -> None:
    seen: list[tuple[Any, ...]] = []

    async def ingest(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        seen.append((*args, kwargs))

    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "arq:queue")
    await asyncio.gather(*(queue.enqueue("ingest", b"body", i, flag=i % 2) for i in range(50)))
    worker = Worker(
        functions=[func(ingest, name="ingest")],
        redis_settings=RedisSettings(port=private_redis.port),
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
    )
    await worker.main()
    await worker.close()
    assert sorted(s[1] for s in seen) == list(range(50))
    assert all(s[0] == b"body" and s[2] == {"flag": s[1] % 2} for s in seen)
    await client.aclose()


@pytest.mark.parametrize("count", [1, 2000])
async def test_large_and_small_batches_complete(private_redis: PrivateRedis, count: int) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "q", max_batch=256)
    assert all(await asyncio.gather(*(queue.enqueue("job", b"x" * 600) for _ in range(count))))
    assert await client.zcard("q") == count
    await client.aclose()


async def test_bursts_of_writes_share_one_connection(private_redis: PrivateRedis) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    probe = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "q")
    for burst in range(20):
        await asyncio.gather(*(queue.enqueue("job", burst, i) for i in range(50)))
    # The flusher gives its connection back when idle: one for the writes (and at most one
    # for loading the script), not one a burst.
    assert len(await probe.client_list()) <= 3
    assert await client.zcard("q") == 1000
    await client.aclose()
    await probe.aclose()


async def test_a_write_cut_by_its_deadline_leaves_no_reply_for_the_next(
    private_redis: PrivateRedis,
) -> None:
    """The group commit keeps its connection between batches; a batch whose deadline passed
    while Redis was paused must not leave its late reply to be read as the next batch's."""
    assert private_redis.process is not None
    client = aioredis.Redis.from_url(private_redis.url)
    queue = Queue(client, "q", timeout=0.3)
    try:
        assert await queue.enqueue("job", job_id="first") is True
        private_redis.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(TimeoutError):
                await queue.enqueue("job", job_id="cut")
        finally:
            private_redis.process.send_signal(signal.SIGCONT)
        # Redis may still run the cut write; whatever it answered belongs to that write.
        assert await queue.enqueue("job", job_id="first") is False  # a duplicate, told so
        assert await queue.enqueue("job", job_id="second") is True
        assert await queue.enqueue("job", job_id="second") is False
    finally:
        await queue.close()
        await client.aclose()
