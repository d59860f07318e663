"""What a worker sets up at start-up: it warns when Redis may evict the queue it relies on."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from events.settings import Settings
from tests.fixtures.services import PrivateRedis
from workers.main import build_worker


@pytest.mark.parametrize(("policy", "warned"), [("allkeys-lru", True), ("noeviction", False)])
async def test_a_worker_warns_when_redis_may_evict_its_queue(
    private_redis: PrivateRedis,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    policy: str,
    warned: bool,
) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    await client.config_set("maxmemory-policy", policy)
    await client.aclose()
    settings = make_settings(redis_url=private_redis.url)
    worker = build_worker(settings, burst=True, handle_signals=False)
    with caplog.at_level(logging.WARNING, logger="workers.context"):
        try:
            await worker.async_run()  # burst: starts, finds the queue empty, stops
        finally:
            await worker.close()
    assert (f"maxmemory-policy is {policy}" in caplog.text) is warned
