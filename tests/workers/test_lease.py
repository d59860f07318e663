"""A killed worker's jobs are taken over after `job_timeout + 10 s`, not after the longest
timeout of all; long jobs keep their lease alive while they run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from events.settings import Settings
from workers.lease import renewed
from workers.main import build_worker


async def test_every_job_is_leased_for_the_short_timeout(
    make_settings: Callable[..., Settings],
) -> None:
    worker = build_worker(make_settings(job_timeout=3), handle_signals=False)
    try:
        assert worker.in_progress_timeout_s == 13
    finally:
        await worker.close()


async def test_a_long_job_renews_its_lease_while_it_runs(
    redis: aioredis.Redis, namespace: str
) -> None:
    key = f"arq:in-progress:{namespace}:long"
    await redis.set(key, b"1", px=300)
    seen: list[bool] = []

    async def long_job(ctx: dict[str, Any]) -> str:
        for _ in range(5):
            await asyncio.sleep(0.15)
            seen.append(bool(await redis.exists(key)))
        return "done"

    job = renewed(long_job, 0.3)
    assert await job({"redis": redis, "job_id": f"{namespace}:long"}) == "done"
    assert all(seen)  # 0.75 s in, a 0.3 s lease is still held

    async def expired() -> bool:
        return not await redis.exists(key)

    deadline = asyncio.get_running_loop().time() + 2
    while not await expired():  # no renewals once the job ended
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
