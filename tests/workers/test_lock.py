"""The deployment-wide Redis lock: one holder, kept alive while held, never freed by a stranger."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from workers.lock import LockTimeout, RedisLock


async def test_one_holder_at_a_time(redis: aioredis.Redis, namespace: str) -> None:
    key = f"{namespace}:lock"
    inside = 0
    most = 0

    async def hold() -> None:
        nonlocal inside, most
        async with RedisLock(redis, key, wait=10):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(5)))
    assert most == 1
    assert not await redis.exists(key)


async def test_the_holder_keeps_it_past_its_ttl(redis: aioredis.Redis, namespace: str) -> None:
    key = f"{namespace}:lock"
    ttl = 1.5  # renewed every 0.5 s: a busy machine may pause the keeper a second and keep it
    loop = asyncio.get_running_loop()
    async with RedisLock(redis, key, ttl=ttl):
        # Outlive the TTL: the keeper must have extended it.
        deadline = loop.time() + ttl + 0.5
        while loop.time() < deadline:
            assert await redis.exists(key)
            await asyncio.sleep(0.05)
        with pytest.raises(LockTimeout):
            async with RedisLock(redis, key, wait=0.1):
                pass


async def test_an_unkept_lock_expires_while_held(redis: aioredis.Redis, namespace: str) -> None:
    key = f"{namespace}:lock"
    lock = RedisLock(redis, key, ttl=0.2, wait=0, keep=False)
    assert await lock.acquire()
    assert not await RedisLock(redis, key, wait=0).acquire()  # tried once, not waited for
    deadline = asyncio.get_running_loop().time() + 5
    while await redis.exists(key):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    successor = RedisLock(redis, key, wait=0, keep=False)
    assert await successor.acquire()
    await lock.release()  # the first holder's release leaves the successor's lock be
    assert await redis.exists(key)
    await successor.release()
    assert not await redis.exists(key)


async def test_a_holder_whose_lock_expired_never_frees_the_successors(
    redis: aioredis.Redis, namespace: str
) -> None:
    key = f"{namespace}:lock"
    first = RedisLock(redis, key, ttl=30)
    await first.__aenter__()
    await redis.delete(key)  # as if it had expired
    async with RedisLock(redis, key, wait=1):
        await first.__aexit__(None, None, None)
        assert await redis.exists(key)
