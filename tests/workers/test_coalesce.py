"""Per-extension generations on a real Redis: covered, newer, deferred, locked."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from events.settings import Settings
from workers.coalesce import Coalescer


@pytest.fixture
def coalescer(redis: aioredis.Redis, make_settings: Callable[..., Settings]) -> Coalescer:
    return Coalescer(redis, make_settings(), window=0.5)


async def test_a_read_covers_every_change_recorded_before_it(coalescer: Coalescer) -> None:
    first, second = await coalescer.mark(["7", "7"])
    assert (first.generation, second.generation) == (1, 2)
    assert first.defer_by == 0  # never read: no wait
    claim = await coalescer.claim("7", 1)
    assert (claim.outcome, claim.reading) == ("read", 2)
    assert await coalescer.finish("7", claim.reading, claim.token)
    assert (await coalescer.claim("7", 1)).outcome == "covered"
    assert (await coalescer.claim("7", 2)).outcome == "covered"
    assert await coalescer.dirty() == []
    assert (await coalescer.claim("7", 0)).outcome == "read"  # 0: read whatever is recorded


async def test_a_change_during_a_read_is_not_covered_by_it(coalescer: Coalescer) -> None:
    await coalescer.mark(["7"])
    claim = await coalescer.claim("7", 1)
    (late,) = await coalescer.mark(["7"])  # arrives while the read is in flight
    assert not await coalescer.finish("7", claim.reading, claim.token)
    assert await coalescer.dirty() == ["7"]
    assert (await coalescer.claim("7", late.generation)).outcome == "read"  # it reads again
    assert late.defer_by > 0  # read just now: wait for the coalescing window


async def test_finish_many_and_stale_finishes(coalescer: Coalescer) -> None:
    await coalescer.mark(["1", "2", "2"])
    await coalescer.finish_many({"1": 1, "2": 2})
    assert await coalescer.dirty() == []
    await coalescer.finish("2", 1)  # an older read finishing late never lowers `done`
    assert (await coalescer.claim("2", 2)).outcome == "covered"


async def test_the_lock_is_exclusive_and_released_by_its_holder(coalescer: Coalescer) -> None:
    await coalescer.mark(["9"])
    first = await coalescer.claim("9", 1)
    assert first.outcome == "read"
    assert first.token
    assert (await coalescer.claim("9", 1)).outcome == "locked"
    await coalescer.unlock("9", "not-the-token")
    await coalescer.finish("9", 0, "not-the-token")
    assert (await coalescer.claim("9", 1)).outcome == "locked"
    await coalescer.unlock("9", first.token)  # a failed read gives the lock back
    second = await coalescer.claim("9", 1)
    assert second.outcome == "read"
    await coalescer.finish("9", second.reading, second.token)  # ... and so does a finished one
    (newer,) = await coalescer.mark(["9"])
    assert (await coalescer.claim("9", newer.generation)).outcome == "read"


async def test_batch_marker(coalescer: Coalescer) -> None:
    assert not await coalescer.batch_active()
    await coalescer.set_batch_active(True)
    assert await coalescer.batch_active()
    await coalescer.mark(["5"])
    assert (await coalescer.claim("5", 1)).outcome == "batch"  # a listing will likely cover it
    await coalescer.set_batch_active(False)
    assert not await coalescer.batch_active()
    assert (await coalescer.claim("5", 1)).outcome == "read"
