"""Job names and the one way ringsync puts jobs on the arq queue.

Nothing else in ringsync calls arq's enqueue API. Jobs are written in arq's own format (a pickled
``{t, f, a, k, et}`` under ``arq:job:<id>`` plus a ZADD on the queue), so a stock arq worker runs
them, but with *group commit*: every enqueue waiting at the same moment goes to Redis in one
EVALSHA, and each caller is answered only after that write succeeded. A lone enqueue is flushed
on the next turn of the event loop, so light traffic waits for nothing. With a `timeout`, each
write that outlasts it fails every caller waiting on it with `TimeoutError` (one timer a batch,
not one a caller).

Accounts take turns (start-time fair queuing on arq's own sorted set): each account has a *turn*,
and a job due now is scored at its account's turn or at the earliest job still waiting for a
worker, whichever is later; each job moves its account's turn on by `TURN_MS`. An account that
queues 10,000 jobs at once has them due one every `TURN_MS` from there, while another account's
lone job is scored beside the earliest waiting one, ahead of that whole backlog: first come,
first served would have put it behind all 10,000. Scores may thus lie in the past; arq runs any
job whose score is not in the future. Jobs deferred beyond `TURN_HORIZON_MS` (waits for budget,
scheduled work) keep their time and take no turn.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Final

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError

# Job function names, shared by the receiver (which enqueues) and the worker (which runs them).
INGEST: Final = "ingest"
RECONCILE: Final = "reconcile"
RECONCILE_BATCH: Final = "reconcile_batch"
DELIVER: Final = "deliver"
RENEW: Final = "renew_subscription"
RESYNC: Final = "resync"
ROLES_SWEEP: Final = "sweep_roles"
ROLES_READ: Final = "read_roles"
ACTIVITY_SCAN: Final = "scan_activity"
ACTION_RUN: Final = "run_action"
ACTIONS_SWEEP: Final = "sweep_actions"
ACTIONS_DELETE: Final = "delete_batch"

# arq's key layout (arq.constants), which its worker reads.
JOB_KEY_PREFIX: Final = "arq:job:"
RESULT_KEY_PREFIX: Final = "arq:result:"
IN_PROGRESS_KEY_PREFIX: Final = "arq:in-progress:"
# arq keeps a queued job's data for a day past its scheduled time.
EXPIRES_EXTRA_MS: Final = 86_400_000

# How far apart one account's jobs are due when it queues many at once: 1 ms a job, so an
# account alone still gets 1,000 jobs/s (a worker runs ~1,800 no-op jobs/s; a bulk change's
# users arrive by listing pages, not by these jobs).
TURN_MS: Final = 1
# Jobs due within this long take turns; those deferred longer keep their time.
TURN_HORIZON_MS: Final = 1000
# How long an account's turn is remembered once it is in the past.
_TURN_KEEP_MS: Final = 60_000
# Running jobs at the head of the queue skipped looking for the earliest waiting one (beyond:
# now), and how far back that one may lie (a score older is treated as this old).
_HEAD_SCAN: Final = 100
_OLDEST_MS: Final = 3_600_000

# The channel every enqueue publishes on, after the queue's name (see `wake_channel`).
WAKE_SUFFIX: Final = ":wake"
# The times of at most this many jobs queued for later are announced in one message, the
# soonest among them (an idle worker polls at least every 0.5 s anyway).
WAKE_LATER: Final = 32


def wake_channel(queue_name: str) -> str:
    """Where `Queue` announces jobs it queued: idle workers sleep until a message here."""
    return queue_name + WAKE_SUFFIX


# ARGV = queue name, now ms, then (job id, score, ttl ms, payload, turn key) per job. Returns 1
# (queued) or 0 (a job with that id is queued, running or has a kept result: arq's own dedup
# rule). Running jobs stay in arq's sorted set: the earliest *waiting* job is the first one
# without an in-progress key. Times are integral ms: Redis hands Lua numbers to its commands
# with 14 significant digits.
_EARLIEST_LUA: Final = f"""
local now = tonumber(ARGV[2])
local earliest = now
local head = redis.call('ZRANGE', ARGV[1], 0, {_HEAD_SCAN - 1}, 'WITHSCORES')
for j = 1, #head, 2 do
  if redis.call('EXISTS', 'arq:in-progress:' .. head[j]) == 0 then
    earliest = math.max(math.min(now, tonumber(head[j + 1])), now - {_OLDEST_MS})
    break
  end
end
"""
_ENQUEUE_LUA: Final = (
    _EARLIEST_LUA
    + f"""
local out = {{}}
local due_now, soonest, dues = false, nil, {{}}
for i = 3, #ARGV, 5 do
  local id = ARGV[i]
  local key = 'arq:job:' .. id
  if redis.call('EXISTS', key, 'arq:result:' .. id) == 0 then
    local score = tonumber(ARGV[i + 1])
    local ttl = tonumber(ARGV[i + 2])
    local turn_key = ARGV[i + 4]
    if turn_key ~= '' and score <= now + {TURN_HORIZON_MS} then
      local from = score
      if score <= now then from = earliest end
      local start = math.max(from, tonumber(redis.call('GET', turn_key) or '0'))
      ttl = ttl + start - score
      score = start
      local turn = start + {TURN_MS}
      redis.call('SET', turn_key, turn, 'PX', turn - now + {_TURN_KEEP_MS})
    end
    redis.call('PSETEX', key, ttl, ARGV[i + 3])
    redis.call('ZADD', ARGV[1], score, id)
    if score <= now then
      due_now = true
    else
      if not soonest or score < soonest then soonest = score end
      if #dues < {WAKE_LATER} then dues[#dues + 1] = string.format('%d', score) end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
-- When the queued jobs come due: idle workers sleep until then (workers.wake). pcall: a Redis
-- user not allowed to publish still queues (its workers poll).
if soonest then dues[#dues + 1] = string.format('%d', soonest) end
if due_now then dues[#dues + 1] = string.format('%d', now) end
if #dues > 0 then
  redis.pcall('PUBLISH', ARGV[1] .. '{WAKE_SUFFIX}', table.concat(dues, ' '))
end
return out
"""
)
# ARGV = queue name, now ms, turn key. How many jobs of the turn key's account are queued and
# waiting: its turn lies that many TURN_MS past the earliest waiting job (0 when it has none).
_ACCOUNT_BACKLOG_LUA: Final = (
    _EARLIEST_LUA
    + f"""
local turn = tonumber(redis.call('GET', ARGV[3]) or '0')
return math.max(math.floor((turn - earliest) / {TURN_MS}), 0)
"""
)


@dataclass(slots=True)
class _Pending:
    job_id: str
    score: int
    ttl_ms: int
    payload: bytes
    turn_key: str
    done: asyncio.Future[bool] = field(repr=False)


class Queue:
    """Enqueue arq jobs with group commit; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        queue_name: str,
        *,
        max_batch: int = 1024,
        timeout: float | None = None,
        account: str = "",
    ) -> None:
        self._redis = redis
        # Jobs queued through this queue act for this stored account (`account=` kwarg).
        self._account = account
        self._queue_name = queue_name
        self._max_batch = max_batch
        self._timeout = timeout
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        # Taken from the client's pool while writes follow one another, given back when none is
        # left waiting (see `_evalsha`).
        self._connection: AbstractConnection | None = None
        self._sha: str | None = None
        self._account_backlog = redis.register_script(_ACCOUNT_BACKLOG_LUA)

    @property
    def name(self) -> str:
        return self._queue_name

    def turn_key(self, account: str) -> str:
        """The Redis key holding an account's next turn ("": the default account)."""
        return f"{self._queue_name}:turn:{account or 'default'}"

    async def backlog(self) -> int:
        """Jobs due by now or taking their turn: waiting for a worker, or running (arq keeps
        those queued too)."""
        now_ms = int(time.time() * 1000)
        due = now_ms + TURN_HORIZON_MS
        count: int = await self._redis.zcount(self._queue_name, "-inf", due)
        return count

    async def account_backlog(self) -> int:
        """Jobs of this queue's account queued and waiting for a worker (others' not counted):
        how far its turn lies past the earliest waiting job, in turns."""
        now_ms = int(time.time() * 1000)
        args: list[Any] = [self._queue_name, now_ms, self.turn_key(self._account)]
        found = await self._account_backlog(keys=[], args=args)
        return int(found)

    async def enqueue(
        self,
        function: str,
        *args: Any,
        job_id: str | None = None,
        defer_by: float = 0.0,
        **kwargs: Any,
    ) -> bool:
        """Queue `function(*args, **kwargs)`; True when queued, False when `job_id` is taken.

        Returns only once Redis has accepted the write; raises the Redis error otherwise.
        """
        if self._account:
            kwargs.setdefault("account", self._account)
        now_ms = int(time.time() * 1000)
        score = now_ms + int(defer_by * 1000)
        data = {"t": None, "f": function, "a": args, "k": kwargs, "et": now_ms}
        # The flusher's loop is the running one; asking asyncio costs a getpid() system call.
        flusher = self._flusher
        loop = asyncio.get_running_loop() if flusher is None else flusher.get_loop()
        pending = _Pending(
            job_id=job_id or _new_id(),
            score=score,
            ttl_ms=score - now_ms + EXPIRES_EXTRA_MS,
            payload=pickle.dumps(data),
            turn_key=self.turn_key(str(kwargs.get("account") or "")),
            done=loop.create_future(),
        )
        self._pending.append(pending)
        if flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await pending.done

    async def _flush(self) -> None:
        """Write every waiting job, batch after batch, until none is left waiting."""
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    async with asyncio.timeout(self._timeout):
                        results = await self._write(batch)
                except BaseException as exc:
                    for job in batch:
                        if not job.done.done():
                            job.done.set_exception(exc)
                    # A write cut short may have left its reply unread: never reuse that line.
                    await self._give_back(disconnect=True)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for job, queued in zip(batch, results, strict=True):
                    if not job.done.done():
                        job.done.set_result(bool(queued))
        finally:
            await self._give_back()
            self._flusher = None
            # Anything that arrived after a cancellation must not wait forever.
            if self._pending and not asyncio.get_running_loop().is_closed():
                self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _write(self, batch: list[_Pending]) -> list[int]:
        argv: list[Any] = [self._queue_name, int(time.time() * 1000)]
        for job in batch:
            argv += [job.job_id, job.score, job.ttl_ms, job.payload, job.turn_key]
        if self._sha is None:
            self._sha = await self._redis.script_load(_ENQUEUE_LUA)
        try:
            result = await self._evalsha(self._sha, argv)
        except NoScriptError:  # Redis restarted and lost its script cache
            self._sha = await self._redis.script_load(_ENQUEUE_LUA)
            result = await self._evalsha(self._sha, argv)
        return [int(r) for r in result]

    async def _evalsha(self, sha: str, argv: list[Any]) -> list[int]:
        """One EVALSHA on a connection kept across a run of writes.

        Under load the flusher writes batch after batch; going through the client for each one
        (pool lock, readiness probe, retry wrapper, argument encoding in Python) cost as much
        CPU as the rest of a batch's requests together. A write that fails or runs out of time
        closes the connection (`_give_back`); the next write takes another from the pool.
        """
        if self._connection is None:
            self._connection = await self._redis.connection_pool.get_connection()
        command = hiredis.pack_command(("EVALSHA", sha, 0, *argv))
        await self._connection.send_packed_command(command, check_health=False)
        result: list[int] = await self._connection.read_response()
        return result

    async def _give_back(self, *, disconnect: bool = False) -> None:
        """Return the kept connection to the pool (closed first when its state is unknown)."""
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        if disconnect:
            await connection.disconnect(nowait=True)
        await self._redis.connection_pool.release(connection)

    async def hold(self, job_id: str, defer_by: float) -> None:
        """Keep a queued job's data until a day past its next try, `defer_by` seconds from now
        (arq sets that expiry once, at enqueue, and a job retried longer would expire unrun)."""
        await self._redis.pexpire(JOB_KEY_PREFIX + job_id, int(defer_by * 1000) + EXPIRES_EXTRA_MS)

    async def close(self) -> None:
        """Wait for writes already under way, then stop."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex
