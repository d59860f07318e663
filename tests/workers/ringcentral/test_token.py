"""The shared token against the real Redis: one login for many clients, refresh ahead, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from events.settings import Settings
from workers.ringcentral.errors import AuthError
from workers.ringcentral.resources import IssuedToken
from workers.ringcentral.token import SharedToken


class Login:
    """A login that counts its calls and hands out numbered tokens."""

    def __init__(self, *, expires_in: int = 3600, delay: float = 0.0) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.delay = delay
        self.error: Exception | None = None

    async def __call__(self) -> IssuedToken:
        self.calls += 1
        await asyncio.sleep(self.delay)  # a slow token endpoint widens the race being tested
        if self.error is not None:
            raise self.error
        token = SecretStr(f"token-{self.calls}")
        return IssuedToken(access_token=token, expires_in=self.expires_in)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def redis_pool(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """Separate connections, as separate processes would have."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(4)]
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def test_many_clients_share_one_login(
    settings: Settings, redis: aioredis.Redis, redis_pool: list[aioredis.Redis]
) -> None:
    login = Login(delay=0.2)
    tokens = [SharedToken(settings, client, login) for client in redis_pool]
    got = await asyncio.gather(*(token.get() for token in tokens * 3))
    assert login.calls == 1
    assert set(got) == {"token-1"}
    assert await redis.ttl(settings.key("rc", "token")) > 3500


async def test_refreshed_ahead_of_expiry_by_one_client(
    settings: Settings, redis_pool: list[aioredis.Redis]
) -> None:
    login, clock = Login(expires_in=3600), Clock()
    tokens = [SharedToken(settings, client, login, clock=clock) for client in redis_pool]
    assert await tokens[0].get() == "token-1"
    clock.offset = 3200.0  # 400 s left: still outside the 300 s margin
    assert {await token.get() for token in tokens} == {"token-1"}
    clock.offset = 3350.0  # 250 s left: one refreshes; the others may use the old one meanwhile
    assert "token-2" in set(await asyncio.gather(*(token.get() for token in tokens)))
    assert {await token.get() for token in tokens} == {"token-2"}
    assert login.calls == 2


async def test_invalidate_forgets_only_the_refused_token(
    settings: Settings, redis_pool: list[aioredis.Redis]
) -> None:
    login = Login()
    first, second = (SharedToken(settings, client, login) for client in redis_pool[:2])
    assert await first.get() == "token-1"
    await first.invalidate("token-1")
    assert await second.get() == "token-2"
    await first.invalidate("token-1")  # a late report about the old token changes nothing
    assert await first.get() == "token-2"
    assert login.calls == 2


async def test_a_process_reuses_the_token_it_read_until_it_is_refused(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """One Redis read a request was a round trip for the same answer: the token read is kept
    a while, and forgotten as soon as RingCentral refuses it."""
    token = SharedToken(settings, redis, Login())
    assert await token.get() == "token-1"
    key = settings.key("rc", "token")
    await redis.hset(key, "access_token", "token-other")  # type: ignore[misc]
    assert await token.get() == "token-1"  # not read again
    await token.invalidate("token-1")
    assert await token.get() == "token-other"
    unkept = SharedToken(settings, redis, Login(), local_for=0)
    await redis.hset(key, "access_token", "token-newest")  # type: ignore[misc]
    assert await unkept.get() == "token-newest"
    assert await token.get() == "token-other"
    # A read that raced a refusal (Redis still held the refused token) is served, not kept.
    await token.invalidate("token-other")
    await redis.hset(key, "access_token", "token-other")  # type: ignore[misc]
    assert await token.get() == "token-other"
    await redis.hset(key, "access_token", "token-latest")  # type: ignore[misc]
    assert await token.get() == "token-latest"


async def test_bad_credentials_fail_every_waiter_once(
    settings: Settings, redis_pool: list[aioredis.Redis]
) -> None:
    login = Login(delay=0.2)
    login.error = AuthError("RingCentral refused the JWT", status=400, error_code="OAU-251")
    tokens = [SharedToken(settings, client, login) for client in redis_pool]
    started = time.monotonic()
    results = await asyncio.gather(*(token.get() for token in tokens), return_exceptions=True)
    assert all(isinstance(result, AuthError) for result in results)
    assert login.calls == 1
    assert time.monotonic() - started < 5


async def test_repr_never_shows_the_token(settings: Settings, redis: aioredis.Redis) -> None:
    token = SharedToken(settings, redis, Login())
    value = await token.get()
    assert value not in repr(token)
    assert value not in repr(IssuedToken(access_token=SecretStr(value), expires_in=1))
