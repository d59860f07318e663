"""Reconcile jobs on a real arq worker: waiting on others never spends the failure budget."""

from __future__ import annotations

from typing import Any

import httpx
import redis.asyncio as aioredis

from tests.fixtures.pipeline import MakePipeline, eventually
from workers.coalesce import Coalescer
from workers.failures import MAX_TRANSIENT_TRIES
from workers.metrics import on_job_start


async def test_a_long_wait_then_one_429_still_reconciles(
    make_pipeline: MakePipeline, sqlite_url: str, redis: aioredis.Redis
) -> None:
    """Another worker holds the user for more runs than a job has tries, then one 429."""
    # Light: 5 requests a second, a 1 s penalty; a job waits at most 2/3 s for budget, so a
    # penalty fails the read (RateLimited) instead of being slept through.
    limits = {"light": 5, "window": 1, "penalty": 1}
    p = await make_pipeline(
        database_url=sqlite_url, workers=0, rate_limits=limits, job_timeout=2, coalesce_window=0
    )
    world = p.sandbox.world
    coalescer = Coalescer(redis, p.settings)
    ext = world.create_user(first_name="Patient", last_name="User")
    held = await coalescer.claim(ext)  # "another worker is reading it"
    assert held.outcome == "read"
    await world.drain()

    runs = 0
    prefix = p.settings.key("reconcile", ext) + ":"

    async def counting(ctx: dict[str, Any]) -> None:
        nonlocal runs
        runs += str(ctx.get("job_id", "")).startswith(prefix)
        await on_job_start(ctx)

    p.start_worker(on_job_start=counting)

    async def waited_long() -> bool:
        return runs > MAX_TRANSIENT_TRIES + 1

    await eventually(waited_long, within=20, what="the reconcile to wait its turn many times")

    # Another client of the same app spends Light behind our back: the next read gets a 429.
    outsider = {"Authorization": f"Bearer {world.tokens.issue().access_token}"}
    async with httpx.AsyncClient(base_url=p.sandbox.url, headers=outsider) as raw:
        for _ in range(5):
            await raw.get("/restapi/v1.0/account/~")
    await coalescer.unlock(ext, held.token)

    await p.converged(within=15)
    refused = [
        call
        for call in world.calls
        if call["path"].endswith(f"/extension/{ext}") and call["status"] == 429
    ]
    assert refused, "the read was expected to meet a 429 first"
    assert await p.store.list_dead_letters() == []
