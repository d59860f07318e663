"""One RingCentral access token for the whole deployment, kept in Redis.

The Auth group allows 5 logins a minute and a user only a handful of sessions, so processes never
log in on their own: they read the shared token, and when it is missing or close to expiry the one
process that wins a Redis lock (one try) logs in and stores the new token while the others keep
using the old one (still valid) or, when there is none, poll for the new one. A failed login is
recorded for a few seconds so waiters fail with the same clear error instead of trying in turn.

A process keeps the token it read for up to LOCAL_FOR seconds (while it is comfortably valid)
instead of asking Redis before every request: one round trip less a request. A token another
process replaced meanwhile still works until its own expiry; one RingCentral refused is
forgotten here by `invalidate`, which the client calls on that 401.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from events.settings import Settings
from workers.lock import RedisLock
from workers.ringcentral.errors import AuthError, RingCentralError, TransientError
from workers.ringcentral.resources import IssuedToken

log = logging.getLogger(__name__)

# How long a process reuses the token it last read from Redis.
LOCAL_FOR = 30.0

# Deletes the token only if it still holds the access token this caller saw.
_DELETE_IF = """
if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedToken:
    """Hands out the deployment's access token, logging in only when nobody else is."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        login: Callable[[], Awaitable[IssuedToken]],
        *,
        clock: Callable[[], float] = time.time,
        refresh_ahead: float = 300.0,
        lock_ttl: float = 60.0,
        wait: float = 30.0,
        local_for: float = LOCAL_FOR,
    ) -> None:
        self._redis = redis
        self._login = login
        self._clock = clock
        self._refresh_ahead = refresh_ahead
        self._lock_ttl = lock_ttl
        self._wait = wait
        self._local_for = local_for
        # (token, expires_at on `clock`, time.monotonic() when read): see LOCAL_FOR.
        self._local: tuple[str, float, float] | None = None
        self._refused = ""  # the last token RingCentral refused: never kept
        self._key = settings.key("rc", "token")
        self._lock = settings.key("rc", "token", "lock")
        self._failure = settings.key("rc", "token", "failure")
        self._delete_if = redis.register_script(_DELETE_IF)

    def __repr__(self) -> str:
        return f"SharedToken(key={self._key!r})"

    async def _read(self) -> tuple[str, float] | None:
        stored = await self._redis.hmget(self._key, ["access_token", "expires_at"])  # type: ignore[misc]
        token, expires_at = stored
        if token is None or expires_at is None:
            return None
        return token.decode(), float(expires_at)

    def _keep(self, token: str, expires_at: float) -> str:
        # A read that raced the token's refusal does not keep it (one more 401 a request).
        if token != self._refused:
            self._local = (token, expires_at, time.monotonic())
        return token

    async def get(self) -> str:
        """A valid access token, refreshed ahead of expiry by exactly one process."""
        local = self._local
        if (
            local is not None
            and time.monotonic() - local[2] < self._local_for
            and local[1] - self._clock() > self._refresh_ahead
        ):
            return local[0]
        deadline = time.monotonic() + self._wait
        pause = 0.02
        while True:
            current = await self._read()
            now = self._clock()
            if current is not None and current[1] - now > self._refresh_ahead:
                return self._keep(*current)
            valid = current is not None and current[1] > now
            failure = await self._redis.get(self._failure)
            lock = RedisLock(self._redis, self._lock, ttl=self._lock_ttl, wait=0, keep=False)
            if failure is None and await lock.acquire():
                try:
                    return await self._refresh()
                except RingCentralError as exc:
                    if current is None or not valid:
                        raise
                    # The old token still works: keep serving while the refresh is retried.
                    log.error("token refresh failed", extra={"error": str(exc)})
                    return current[0]
                finally:
                    await lock.release()
            if current is not None and valid:
                return current[0]  # another process is refreshing; this one is still good
            if failure is not None:
                raise AuthError(failure.decode(), status=401, error_code=None)
            if time.monotonic() > deadline:
                raise TransientError("timed out waiting for another process to log in")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def _refresh(self) -> str:
        # Someone may have stored a fresh token between our read and our lock.
        current = await self._read()
        if current is not None and current[1] - self._clock() > self._refresh_ahead:
            return self._keep(*current)
        try:
            issued = await self._login()
        except AuthError as exc:
            await self._redis.set(self._failure, str(exc), px=10_000)
            raise
        token = issued.access_token.get_secret_value()
        expires_at = self._clock() + issued.expires_in
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key)
            pipe.hset(self._key, mapping={"access_token": token, "expires_at": repr(expires_at)})
            pipe.pexpire(self._key, max(issued.expires_in, 1) * 1000)
            pipe.delete(self._failure)
            await pipe.execute()
        log.info("logged in to RingCentral", extra={"expires_in": issued.expires_in})
        return self._keep(token, expires_at)

    async def invalidate(self, token: str) -> None:
        """Forget `token` after RingCentral refused it, unless another process replaced it."""
        self._refused = token
        if self._local is not None and self._local[0] == token:
            self._local = None
        await self._delete_if(keys=[self._key], args=[token, "access_token"])
