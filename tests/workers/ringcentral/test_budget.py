"""The shared budget on the real Redis: atomic across clients, penalties, header corrections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from events.settings import Settings
from workers.ringcentral.budget import Budget, GroupBudget, snapshots
from workers.ringcentral.errors import RateLimited

SMALL = {"light": (3, 1.0), "medium": (5, 60.0), "heavy": (10, 60.0), "auth": (5, 60.0)}


@pytest.fixture
async def other_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A second connection, as a second process would have."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def test_takes_up_to_the_limit_then_says_how_long_to_wait(
    settings: Settings, redis: aioredis.Redis
) -> None:
    budget = Budget(settings, redis, defaults=SMALL, margin=0.0)
    assert [await budget.try_take("light") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await budget.try_take("light")
    assert 0.0 < wait <= 1.0
    assert await budget.remaining("light") == 0
    assert await budget.available_at("light") > time.time()
    assert await budget.remaining("medium") == 5
    remaining, wait = await budget.room("light")  # what is left, and how long until the next
    assert remaining == 0
    assert 0.0 < wait <= 1.0
    assert await budget.room("medium") == (5, 0.0)
    await budget.penalize("medium", 30)
    assert (await budget.room("medium"))[1] > 29  # a penalty leaves no room either


async def test_two_clients_share_one_budget_atomically(
    settings: Settings, redis: aioredis.Redis, other_redis: aioredis.Redis
) -> None:
    first = Budget(settings, redis, defaults=SMALL)
    second = Budget(settings, other_redis, defaults=SMALL)
    waits = await asyncio.gather(*(budget.try_take("medium") for budget in [first, second] * 10))
    assert sum(1 for wait in waits if wait == 0.0) == 5
    assert await first.remaining("MEDIUM") == 0  # group names are case-insensitive


async def test_take_waits_for_room_or_raises_beyond_the_cap(
    settings: Settings, redis: aioredis.Redis
) -> None:
    budget = Budget(settings, redis, defaults=SMALL, margin=0.0)
    for _ in range(3):
        await budget.take("light", max_wait=0)
    with pytest.raises(RateLimited) as caught:
        await budget.take("light", max_wait=0.05)
    assert caught.value.group == "light"
    started = time.monotonic()
    await budget.take("light", max_wait=5)
    assert 0.5 < time.monotonic() - started < 2.0


async def test_a_penalty_refuses_everything_until_it_ends(
    settings: Settings, redis: aioredis.Redis, other_redis: aioredis.Redis
) -> None:
    budget = Budget(settings, redis, defaults=SMALL)
    ends = await budget.penalize("Light", 0.6)
    assert ends == pytest.approx(time.time() + 0.6, abs=0.2)
    other = Budget(settings, other_redis, defaults=SMALL)
    assert await other.try_take("light") > 0.3
    assert await other.remaining("light") == 0
    assert (await other.snapshot())["light"].penalty_until is not None
    # A shorter penalty never shortens a longer one.
    await other.penalize("light", 0.01)
    assert await budget.try_take("light") > 0.3
    await budget.take("light", max_wait=2)
    assert (await budget.snapshot())["light"].penalty_until is None


async def test_default_penalty_is_thirty_seconds(settings: Settings, redis: aioredis.Redis) -> None:
    budget = Budget(settings, redis)
    await budget.penalize("heavy", None)
    assert await budget.try_take("heavy") == pytest.approx(30.0, abs=0.5)


async def test_headers_correct_limit_window_and_remaining(
    settings: Settings, redis: aioredis.Redis
) -> None:
    budget = Budget(settings, redis)
    headers = {
        "x-rate-limit-group": "Light",
        "x-rate-limit-limit": "7",
        "x-rate-limit-remaining": "2",
        "x-rate-limit-window": "30",
    }
    await budget.observe("medium", headers)  # the server's group name wins
    snapshot = await budget.snapshot()
    assert (snapshot["light"].limit, snapshot["light"].window) == (7, 30.0)
    assert snapshot["light"].remaining == 2  # five requests the server counted and we did not
    assert snapshot["medium"].limit == 40


async def test_headers_that_repeat_what_is_known_are_not_written_again(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """A request's headers mostly repeat what the process wrote a moment ago: a script call a
    request for nothing. What they say anew (fewer left than our log counted, a new limit)
    is still written."""
    budget = Budget(settings, redis)
    state = settings.key("ratelimit", "light")
    headers = {
        "x-rate-limit-limit": "7",
        "x-rate-limit-remaining": "5",
        "x-rate-limit-window": "30",
    }
    grant = await budget.take("light", max_wait=0)
    assert grant.remaining == 49  # by the documented default until the headers arrive: 50 - 1
    await budget.observe("light", headers, counted=grant.remaining)  # new limit: written
    assert (await budget.snapshot())["light"].limit == 7
    await redis.hset(state, "limit", "99")  # type: ignore[misc]  # a marker the next write would undo
    await budget.observe("light", headers, counted=5)  # the server counts no more than we did
    await budget.observe("light", {**headers, "x-rate-limit-remaining": "6"}, counted=5)
    assert await redis.hget(state, "limit") == b"99"  # type: ignore[misc]
    await budget.observe("light", headers, counted=None)  # nothing to compare with: written
    assert await redis.hget(state, "limit") == b"7"  # type: ignore[misc]
    await redis.hset(state, "limit", "99")  # type: ignore[misc]
    await budget.observe("light", {**headers, "x-rate-limit-remaining": "2"}, counted=5)
    snapshot = (await budget.snapshot())["light"]
    assert (snapshot.limit, snapshot.remaining) == (7, 2)  # another client's requests counted
    await redis.hset(state, "limit", "99")  # type: ignore[misc]
    await budget.observe("heavy", {**headers, "x-rate-limit-group": "Light"}, counted=100)
    assert await redis.hget(state, "limit") == b"7"  # type: ignore[misc]  # another group's count


async def test_unknown_groups_and_bad_headers_are_tolerated(
    settings: Settings, redis: aioredis.Redis
) -> None:
    budget = Budget(settings, redis)
    await budget.observe("light", {"x-rate-limit-group": "Special", "x-rate-limit-limit": "3"})
    await budget.observe("light", {"x-rate-limit-limit": "n/a", "x-rate-limit-window": "60"})
    headers = {
        "x-rate-limit-group": "Special",
        "x-rate-limit-limit": "3",
        "x-rate-limit-window": "60",
    }
    await budget.observe("light", headers)
    assert await budget.try_take("special") == 0.0
    snapshot = await budget.snapshot()
    assert snapshot["special"].limit == 3
    assert snapshot["special"].remaining == 2
    assert set(snapshot) >= {"light", "medium", "heavy", "auth", "special"}


async def test_snapshots_of_several_accounts_at_once_keep_them_apart(
    settings: Settings, redis: aioredis.Redis
) -> None:
    default = Budget(settings, redis, defaults=SMALL, margin=0.0)
    stored = settings.for_account("4242", server_url=settings.rc_server_url, jwt="")
    other = Budget(stored, redis, defaults=SMALL, margin=0.0)
    await default.try_take("light")
    await other.penalize("medium", 30)
    await other.observe("special", {"x-rate-limit-limit": "3", "x-rate-limit-window": "60"})

    both = await snapshots(redis, [default, other])

    # The same as each budget's own snapshot (times aside: each reading stamps its own).
    def steady(one: dict[str, GroupBudget]) -> dict[str, dict[str, object]]:
        return {g: b.model_dump(exclude={"penalty_until", "available_in"}) for g, b in one.items()}

    alone = [await default.snapshot(), await other.snapshot()]
    assert [steady(one) for one in both] == [steady(one) for one in alone]
    assert (both[0]["light"].remaining, both[1]["light"].remaining) == (2, 3)
    assert both[0]["medium"].penalty_until is None
    assert both[1]["medium"].penalty_until is not None
    assert "special" in both[1]
    assert "special" not in both[0]
