"""Coalescing reconciles per extension without ever losing an update.

arq's `_job_id` alone loses updates: an id is blocked while its job is queued, running and while
its result is kept, and enqueue then returns None silently. So every change gets a job of its
own, identified by a per-extension *generation*, and the jobs themselves coalesce:

- `mark` (at ingest): ``gen[ext] += 1``; the job for that generation is queued, deferred to
  ``last_read[ext] + window`` so a burst costs one read per window, a lone change none.
- A read records ``gen[ext]`` *before* it is sent (`claim`, which also takes the lock); once
  applied, ``done[ext]`` is raised to that value (`finish`, which also releases it). A job
  whose generation is ``<= done[ext]`` is covered by a read that started after its change was
  recorded, so it returns without reading.
- A change recorded while a read is in flight has a higher generation than that read's start,
  so its own job still reads afterwards: nothing is lost, whatever the timing.

A per-extension lock keeps two workers from reading the same user at once; the store's
stale-write guard makes even that harmless, the lock only saves requests. It is taken inside the
claim script (one round trip per read) and freed as every lock is (see `workers.lock`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from events.settings import Settings
from workers.lock import RELEASE_LUA, release

# Times are Redis's clock (ms), the one every process shares: a host whose clock is ahead would
# otherwise stamp `last_read` in the future and hold back every other worker's reads of that user.
_NOW_MS: Final = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
# KEYS: gen, last_read, dirty. ARGV: extension ids. Returns gen, last_read pairs, then the
# dirty count, then now ms.
_MARK: Final = (
    _NOW_MS
    + """
local out = {}
for i = 1, #ARGV do
  out[#out + 1] = redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  redis.call('SADD', KEYS[3], ARGV[i])
end
out[#out + 1] = redis.call('SCARD', KEYS[3])
out[#out + 1] = now_ms()
return out
"""
)
# KEYS: done, batch marker, lock, gen, last_read. ARGV: ext, generation (0: any), token, lock
# ttl ms. One round trip before a single read: covered already? a listing under way? someone
# else reading? Otherwise the lock is taken, and the generation the read covers returned.
_CLAIM: Final = (
    _NOW_MS
    + """
local wanted = tonumber(ARGV[2])
if wanted > 0 and tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') >= wanted then
  return {'covered', 0}
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'batch', 0} end
if not redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4]) then return {'locked', 0} end
redis.call('HSET', KEYS[5], ARGV[1], now_ms())
return {'read', tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')}
"""
)
# KEYS: gen, done, dirty, lock. ARGV: ext, generation read, lock token (or '').
# Raises done; clears dirty if nothing newer; releases the lock when it is still ours.
_FINISH: Final = (
    RELEASE_LUA
    + """
local done = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local read = tonumber(ARGV[2])
if read > done then redis.call('HSET', KEYS[2], ARGV[1], read) end
if ARGV[3] ~= '' then release(KEYS[4], ARGV[3]) end
local gen = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if gen <= read then redis.call('SREM', KEYS[3], ARGV[1]) return 1 end
return 0
"""
)
# `_FINISH` for many (ext, generation) pairs at once.
_FINISH_MANY: Final = """
for i = 1, #ARGV, 2 do
  local done = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  local read = tonumber(ARGV[i + 1])
  if read > done then redis.call('HSET', KEYS[2], ARGV[i], read) end
  local gen = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if gen <= read then redis.call('SREM', KEYS[3], ARGV[i]) end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Marked:
    extension_id: str
    generation: int
    defer_by: float


@dataclass(frozen=True, slots=True)
class Claim:
    """What `Coalescer.claim` found: `read` (the lock is ours: read, then `finish`), or why not
    (`covered`, `batch` under way, `locked` by another worker)."""

    outcome: str
    reading: int = 0
    token: str = ""


class Coalescer:
    """The Redis side of coalescing; see the module docstring."""

    def __init__(self, redis: Redis, settings: Settings, *, window: float = 0.5) -> None:
        self._redis = redis
        self._window_ms = int(window * 1000)
        self._gen = settings.key("gen")
        self._done = settings.key("done")
        self._last = settings.key("last_read")
        self._dirty = settings.key("dirty")
        self._batch = settings.key("batch", "active")
        self._lock_prefix = settings.key("lock", "ext")
        # EVALSHA: the script's text is sent once per connection, not with every call.
        self._mark = redis.register_script(_MARK)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._finish_many = redis.register_script(_FINISH_MANY)

    async def mark(self, extension_ids: list[str]) -> list[Marked]:
        """Record a change for each extension; returns the generation and deferral of its job."""
        return (await self.mark_counting(extension_ids))[0]

    async def mark_counting(self, extension_ids: list[str]) -> tuple[list[Marked], int]:
        """`mark`, and how many extensions are dirty now (the same round trip)."""
        if not extension_ids:
            return [], 0
        raw = await self._mark(keys=[self._gen, self._last, self._dirty], args=extension_ids)
        now_ms, dirty = int(raw[-1]), int(raw[-2])
        marks = []
        for index, ext in enumerate(extension_ids):
            generation, last = int(raw[2 * index]), int(raw[2 * index + 1])
            defer_ms = max(0, last + self._window_ms - now_ms) if last else 0
            marks.append(Marked(ext, generation, defer_ms / 1000))
        return marks, dirty

    async def claim(self, extension_id: str, generation: int = 0, ttl: float = 35.0) -> Claim:
        """Before a single read of `extension_id` for `generation` (0: whatever is recorded).

        On `read` this worker holds the extension's lock and `reading` is the generation the
        read will cover (recorded before it is sent); `finish` records it and releases the lock.
        """
        token = uuid.uuid4().hex
        keys = [self._done, self._batch, self._lock_key(extension_id), self._gen, self._last]
        outcome, reading = await self._claim(
            keys=keys, args=[extension_id, str(generation), token, str(int(ttl * 1000))]
        )
        found = outcome.decode()
        return Claim(found, int(reading), token if found == "read" else "")

    async def begin_many(self) -> dict[str, int]:
        """Every extension's generation, for a listing about to be sent (batch or resync)."""
        raw = await self._redis.hgetall(self._gen)  # type: ignore[misc]
        return {key.decode(): int(value) for key, value in raw.items()}

    async def finish(self, extension_id: str, generation: int, token: str = "") -> bool:
        """Record that a read covering `generation` was applied and release the lock `token`
        took; True when nothing newer was recorded meanwhile."""
        keys = [self._gen, self._done, self._dirty, self._lock_key(extension_id)]
        clean = await self._finish(keys=keys, args=[extension_id, str(generation), token])
        return bool(clean)

    async def finish_many(self, generations: dict[str, int]) -> None:
        """`finish` for every extension of a listed page, in one round trip."""
        if not generations:
            return
        argv = [str(part) for pair in generations.items() for part in pair]
        await self._finish_many(keys=[self._gen, self._done, self._dirty], args=argv)

    async def dirty(self) -> list[str]:
        members = await self._redis.smembers(self._dirty)  # type: ignore[misc]
        return sorted(m.decode() for m in members)

    async def pending_generation(self, extension_id: str) -> int:
        """The latest generation recorded for `extension_id` (0 when never marked)."""
        value = await self._redis.hget(self._gen, extension_id)  # type: ignore[misc]
        return int(value or 0)

    # --- locks ---------------------------------------------------------------------------------

    def _lock_key(self, extension_id: str) -> str:
        return f"{self._lock_prefix}:{extension_id}"

    async def unlock(self, extension_id: str, token: str) -> None:
        """Release a lock `claim` took, when a read failed before `finish`."""
        await release(self._redis, self._lock_key(extension_id), token)

    async def set_batch_active(self, active: bool, ttl: float = 15.0) -> None:
        if active:
            await self._redis.set(self._batch, 1, px=int(ttl * 1000))
        else:
            await self._redis.delete(self._batch)

    async def batch_active(self) -> bool:
        return bool(await self._redis.exists(self._batch))
