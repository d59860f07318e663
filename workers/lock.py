"""The one Redis lock (and the one keep-alive) of the deployment: one holder across processes.

A holder's token is checked on release (compare-and-delete in one script), so a holder whose
lock expired never frees a successor's. A kept lock is extended while held, so a slow holder
keeps it and a crashed one loses it after `ttl` seconds; an unkept one simply expires.

Who uses it, and how:

- `subscription/renewal` and `resync/run`: kept, waited for (`LockTimeout` after `wait`).
- `ringcentral/token` (who logs in) and `delivery/deliver` (one attempt per endpoint and user):
  tried once (`wait=0`), not kept, so a holder killed mid-login or mid-POST blocks others for
  the TTL only.
- `coalesce` takes its per-extension lock inside its claim script, because the claim also
  checks generations and the batch marker in the same round trip (one per read, on the hot
  path); it releases with `release` here, and its finish script with `RELEASE_LUA`.
- `lease` keeps arq's in-progress key alive with `kept_alive`, the same keeper a kept lock uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Final

from redis.asyncio import Redis

# Lua: `release(key, token)` deletes `key` only while it still holds `token`. Every script that
# frees a lock of ours starts with this.
RELEASE_LUA: Final = """
local function release(key, token)
  if redis.call('GET', key) == token then return redis.call('DEL', key) end
  return 0
end
"""
_RELEASE: Final = RELEASE_LUA + "return release(KEYS[1], ARGV[1])"


class LockTimeout(TimeoutError):
    """Another holder kept the lock longer than we were willing to wait."""


async def release(redis: Redis, key: str, token: str) -> None:
    """Free `key` if it still holds `token` (a lock that expired and was retaken is left be)."""
    await redis.eval(_RELEASE, 1, key, token)  # type: ignore[misc]


async def keep_alive(redis: Redis, key: str, ttl: float) -> None:
    """Extend `key`'s expiry to `ttl` every third of it, until cancelled."""
    while True:
        await asyncio.sleep(ttl / 3)
        # A failed extension is retried on the next turn; the holder itself is not disturbed.
        with contextlib.suppress(Exception):
            await redis.pexpire(key, int(ttl * 1000))


@contextlib.asynccontextmanager
async def kept_alive(redis: Redis, key: str, ttl: float) -> AsyncIterator[None]:
    """`key`'s expiry is extended (see `keep_alive`) while the body runs."""
    keeper = asyncio.create_task(keep_alive(redis, key, ttl))
    try:
        yield
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


class RedisLock:
    """`async with RedisLock(redis, key, wait=30):` — waits up to `wait` s, then LockTimeout.

    `wait=0` tries once; `acquire`/`release` are the same without the exception (acquire says
    whether the lock is ours). `keep=False` lets the lock expire after `ttl` even while held.
    `on_wait` is called once when the lock is found held (to tell a person why nothing moves).
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        *,
        ttl: float = 30.0,
        wait: float = 30.0,
        keep: bool = True,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self._redis = redis
        self._key = key
        self._ttl = ttl
        self._wait = wait
        self._keep = keep
        self._on_wait = on_wait
        self._token = uuid.uuid4().hex
        self._held = contextlib.AsyncExitStack()

    async def acquire(self) -> bool:
        """Take the lock, trying until `wait` s have passed; False when another kept it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        ttl_ms = int(self._ttl * 1000)
        # The holder may be another process: poll, with a short pause between tries.
        while not await self._redis.set(self._key, self._token, nx=True, px=ttl_ms):
            if loop.time() >= deadline:
                return False
            if self._on_wait is not None:
                self._on_wait()
                self._on_wait = None
            await asyncio.sleep(0.05)
        if self._keep:
            await self._held.enter_async_context(kept_alive(self._redis, self._key, self._ttl))
        return True

    async def release(self) -> None:
        """Stop keeping the lock and free it, unless it expired and another holder took it."""
        await self._held.aclose()
        await release(self._redis, self._key, self._token)

    async def __aenter__(self) -> RedisLock:
        if not await self.acquire():
            raise LockTimeout(f"{self._key} is held by another process")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()
