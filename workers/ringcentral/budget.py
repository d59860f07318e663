"""The rate-limit budget every ringsync process shares, one sliding window per group, in Redis.

RingCentral counts requests per app and user, not per process, so the log of sent requests lives
in Redis and "is there room? then take it" is one Lua script (atomic across processes). Time is
Redis's own clock (`TIME` inside the scripts), so processes with skewed clocks still agree.

`take` also returns that clock's reading at the moment it granted the request, just before the
request is sent: the client stamps every value it reads with it (`read_at`), and the store's
stale-write guard compares those stamps. One clock every process shares, read at no extra round
trip, to the microsecond; a host's own clock (skewed, or stepped back) never decides which of
two reads is newer. RingCentral's `Date` header would also be shared, but it counts whole
seconds (two reads within one second would tie) and comes from many servers.

Each group keeps a log of send times (a sorted set) and a hash with its limit, its window and
a penalty end. Limits start at RingCentral's documented defaults and follow `X-Rate-Limit-*`
headers. A 429 sets a penalty during which the script refuses every take: RingCentral restarts
the penalty on any request sent during it, so nothing may go out until it is over.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from pydantic import BaseModel

from events.settings import Settings
from workers.ringcentral.errors import RateLimited

log = logging.getLogger(__name__)

# (requests, window seconds) per group: documented defaults until RingCentral's headers say more.
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "light": (50, 60.0),
    "medium": (40, 60.0),
    "heavy": (10, 60.0),
    "auth": (5, 60.0),
}
# A group we have never heard of gets the strictest ordinary limit until its headers arrive.
UNKNOWN_GROUP_LIMIT = (10, 60.0)
# Penalty when a 429 carries no Retry-After (RingCentral asks for at least 30 s).
DEFAULT_PENALTY = 30.0
# How long a process trusts that a group's limit and window it wrote to Redis are still there:
# headers that repeat them, and count no request ours missed, are then not written again.
KNOWN_FOR = 60.0

# KEYS: state hash, log zset. ARGV: default limit, default window ms, margin ms, member, take?
# Returns {taken (0/1), wait ms, remaining, limit, window ms, penalty ms left, now s, now us}.
_TAKE = """
local t = redis.call('TIME')
local s, us = tonumber(t[1]), tonumber(t[2])
local now = s * 1000 + math.floor(us / 1000)
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or ARGV[1])
local base = tonumber(redis.call('HGET', KEYS[1], 'window_ms') or ARGV[2])
local window = base + tonumber(ARGV[3])
local penalty = tonumber(redis.call('HGET', KEYS[1], 'penalty_until') or 0)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[2])
if penalty > now then
  return {0, penalty - now, 0, limit, base, penalty - now, s, us}
end
if used < limit then
  if ARGV[5] == '1' then
    redis.call('ZADD', KEYS[2], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[2], window)
    used = used + 1
  end
  return {1, 0, limit - used, limit, base, 0, s, us}
end
local due = redis.call('ZRANGE', KEYS[2], 0, used - limit, 'WITHSCORES')
return {0, math.max(1, tonumber(due[#due]) + window - now), 0, limit, base, 0, s, us}
"""

# KEYS: state hash, log zset, known groups set. ARGV: limit, window ms, remaining (-1 = unknown),
# margin ms, member, group. Notes the group as known, takes the server's limit and window, and
# when the server has counted more requests than our log holds (another client of the same app,
# clock drift), pads the log so we believe the server.
_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('HSET', KEYS[1], 'limit', limit, 'window_ms', window)
local remaining = tonumber(ARGV[3])
if remaining < 0 then return 0 end
local span = window + tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - span)
local missing = (limit - remaining) - redis.call('ZCARD', KEYS[2])
for i = 1, missing do
  redis.call('ZADD', KEYS[2], now, ARGV[5] .. ':' .. i)
end
if missing > 0 then redis.call('PEXPIRE', KEYS[2], span) end
return math.max(missing, 0)
"""

# KEYS: state hash. ARGV: penalty ms. Extends, never shortens, the penalty; returns ms left.
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'penalty_until') or 0)
if until_ms > current then redis.call('HSET', KEYS[1], 'penalty_until', until_ms) end
return math.max(until_ms, current) - now
"""


class Grant(NamedTuple):
    """A request `take` let go: Redis's clock at that moment, and what the group had left."""

    sent_at: datetime
    remaining: int


class GroupBudget(BaseModel):
    """One group's state, as `ringsync status` shows it."""

    group: str
    limit: int
    window: float
    remaining: int
    available_in: float
    penalty_until: float | None


class Budget:
    """The shared per-group budget; `take` waits (up to a cap) instead of letting a 429 happen."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        *,
        margin: float = 1.0,
        defaults: Mapping[str, tuple[int, float]] = DEFAULT_LIMITS,
    ) -> None:
        # `margin` widens our window a little: our log stamps a request before it is sent, the
        # server after it arrives, so an equal window would free a slot slightly too early.
        self._settings = settings
        self._redis = redis
        self._margin_ms = int(margin * 1000)
        self._defaults = {name.lower(): value for name, value in defaults.items()}
        self._take = redis.register_script(_TAKE)
        self._observe = redis.register_script(_OBSERVE)
        self._penalize = redis.register_script(_PENALIZE)
        # group -> (limit, window ms, time.monotonic() when written): see KNOWN_FOR.
        self._known: dict[str, tuple[int, int, float]] = {}

    def _keys(self, group: str) -> list[str]:
        group = group.lower()
        return [
            self._settings.key("ratelimit", group),
            self._settings.key("ratelimit", group, "log"),
        ]

    def _args(self, group: str, *, take: bool) -> list[str | int]:
        limit, window = self._defaults.get(group.lower(), UNKNOWN_GROUP_LIMIT)
        return [limit, int(window * 1000), self._margin_ms, uuid.uuid4().hex, "1" if take else "0"]

    async def _run(self, group: str, *, take: bool) -> list[Any]:
        args = self._args(group, take=take)
        result: list[Any] = await self._take(keys=self._keys(group), args=args)
        return result

    async def try_take(self, group: str) -> float:
        """Take one request from `group` now and return 0, or return the seconds to wait."""
        wait, _ = await self._grant(group)
        return wait

    async def _grant(self, group: str) -> tuple[float, Grant]:
        """`try_take`, with Redis's clock at that moment and what is left."""
        taken, wait_ms, remaining, *_, seconds, micros = await self._run(group, take=True)
        now = datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=int(micros))
        return (0.0 if int(taken) else int(wait_ms) / 1000), Grant(now, int(remaining))

    async def take(self, group: str, *, max_wait: float) -> Grant:
        """Wait for room in `group` and take it; returns Redis's clock when it was granted (the
        shared send time, see the module docstring) and what the group has left. RateLimited
        when that would exceed `max_wait`."""
        deadline = time.monotonic() + max_wait
        while True:
            wait, grant = await self._grant(group)
            if wait == 0.0:
                return grant
            left = deadline - time.monotonic()
            if wait > left:
                raise RateLimited(group.lower(), wait)
            # Jitter spreads processes that were all told the same instant.
            await asyncio.sleep(wait + random.uniform(0.0, 0.05))

    async def available_at(self, group: str) -> float:
        """Epoch seconds at which a request in `group` could be sent (now if there is room)."""
        _, wait_ms, *_ = await self._run(group, take=False)
        return time.time() + int(wait_ms) / 1000

    async def room(self, group: str) -> tuple[int, float]:
        """Requests `group` can still send in the current window, and the seconds until the next
        one may go (0 when it may go now): one script call, no request taken."""
        _, wait_ms, remaining, *_ = await self._run(group, take=False)
        return int(remaining), int(wait_ms) / 1000

    async def remaining(self, group: str) -> int:
        """Requests `group` can still send in the current window (0 during a penalty)."""
        _, _, remaining, *_ = await self._run(group, take=False)
        return int(remaining)

    async def observe(
        self, group: str, headers: Mapping[str, str], *, counted: int | None = None
    ) -> None:
        """Correct `group` (or the group the headers name) from RingCentral's rate-limit headers.

        `counted` is what our log said the group had left when the request was taken (`Grant`):
        when the server leaves at least as much and repeats the limit and window this process
        last wrote (within KNOWN_FOR), there is nothing to correct and Redis is not asked.
        """
        named = headers.get("x-rate-limit-group")
        if named is not None and named.lower() != group.lower():
            counted = None  # our count was of another group
        group = (named or group).lower()
        limit = _number(headers.get("x-rate-limit-limit"))
        window = _number(headers.get("x-rate-limit-window"))
        if limit is None or window is None or limit <= 0 or window <= 0:
            return
        remaining = _number(headers.get("x-rate-limit-remaining"))
        known = self._known.get(group)
        now = time.monotonic()
        if (
            known is not None
            and known[:2] == (int(limit), int(window * 1000))
            and now - known[2] < KNOWN_FOR
            and (remaining is None or (counted is not None and remaining >= counted))
        ):
            return
        args: list[str | int] = [
            int(limit),
            int(window * 1000),
            -1 if remaining is None else max(int(remaining), 0),
            self._margin_ms,
            uuid.uuid4().hex,
            group,
        ]
        keys = [*self._keys(group), self._settings.key("ratelimit", "groups")]
        await self._observe(keys=keys, args=args)
        self._known[group] = (int(limit), int(window * 1000), now)

    async def penalize(self, group: str, seconds: float | None) -> float:
        """Record a 429: nothing goes out in `group` for `seconds`; returns epoch seconds of end."""
        seconds = DEFAULT_PENALTY if seconds is None else max(seconds, 0.0)
        left_ms = await self._penalize(keys=self._keys(group)[:1], args=[int(seconds * 1000)])
        log.warning("rate limit penalty", extra={"group": group.lower(), "seconds": seconds})
        return time.time() + int(left_ms) / 1000

    async def snapshot(self) -> dict[str, GroupBudget]:
        """Every known group's limit, what is left now and any penalty, for `ringsync status`."""
        return (await snapshots(self._redis, [self]))[0]


async def snapshots(
    redis: aioredis.Redis, budgets: Sequence[Budget]
) -> list[dict[str, GroupBudget]]:
    """`Budget.snapshot` of several budgets (say, one per account) in two round trips."""
    async with redis.pipeline(transaction=False) as pipe:
        for budget in budgets:
            pipe.smembers(budget._settings.key("ratelimit", "groups"))
        seen = await pipe.execute()
    groups = [
        sorted(set(budget._defaults) | {_text(name) for name in names})
        for budget, names in zip(budgets, seen, strict=True)
    ]
    async with redis.pipeline(transaction=False) as pipe:
        for budget, names in zip(budgets, groups, strict=True):
            for group in names:
                args = budget._args(group, take=False)
                await budget._take(keys=budget._keys(group), args=args, client=pipe)
        answers = iter(await pipe.execute())
    now = time.time()
    result: list[dict[str, GroupBudget]] = []
    for names in groups:
        one: dict[str, GroupBudget] = {}
        for group in names:
            _, wait_ms, remaining, limit, window_ms, penalty, *_ = next(answers)
            one[group] = GroupBudget(
                group=group,
                limit=int(limit),
                window=int(window_ms) / 1000,
                remaining=int(remaining),
                available_in=int(wait_ms) / 1000,
                penalty_until=now + int(penalty) / 1000 if int(penalty) > 0 else None,
            )
        result.append(one)
    return result


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
