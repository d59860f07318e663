"""A deployment-wide Redis lock: one holder across every worker and CLI process.

The holder's token is checked on release (compare-and-delete in one script), so a holder whose
lock expired never frees a successor's. While held, a keeper task extends the expiry, so a slow
holder keeps it and a crashed one loses it after `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from types import TracebackType

from redis.asyncio import Redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockTimeout(TimeoutError):
    """Another holder kept the lock longer than we were willing to wait."""


class RedisLock:
    """`async with RedisLock(redis, key, wait=30):` — waits up to `wait` s, then LockTimeout.

    `on_wait` is called once when the lock is found held (to tell a person why nothing moves).
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        *,
        ttl: float = 30.0,
        wait: float = 30.0,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self._redis = redis
        self._key = key
        self._ttl_ms = int(ttl * 1000)
        self._wait = wait
        self._on_wait = on_wait
        self._token = uuid.uuid4().hex
        self._keeper: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RedisLock:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        # The holder may be another process: poll, with a short pause between tries.
        while not await self._redis.set(self._key, self._token, nx=True, px=self._ttl_ms):
            if loop.time() >= deadline:
                raise LockTimeout(f"{self._key} is held by another process")
            if self._on_wait is not None:
                self._on_wait()
                self._on_wait = None
            await asyncio.sleep(0.05)
        self._keeper = asyncio.create_task(self._keep())
        return self

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            await self._redis.pexpire(self._key, self._ttl_ms)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            # A keeper that failed (Redis gone) must not hide how the guarded work ended.
            await asyncio.gather(self._keeper, return_exceptions=True)
        await self._redis.eval(_RELEASE, 1, self._key, self._token)  # type: ignore[misc]
