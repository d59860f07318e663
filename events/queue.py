"""Job names and the one way ringsync puts jobs on the arq queue.

Nothing else in ringsync calls arq's enqueue API. Jobs are written in arq's own format (a pickled
``{t, f, a, k, et}`` under ``arq:job:<id>`` plus a ZADD on the queue), so a stock arq worker runs
them, but with *group commit*: every enqueue waiting at the same moment goes to Redis in one
EVALSHA, and each caller is answered only after that write succeeded. A lone enqueue is flushed
on the next turn of the event loop, so light traffic waits for nothing. With a `timeout`, each
write that outlasts it fails every caller waiting on it with `TimeoutError` (one timer a batch,
not one a caller).
"""

from __future__ import annotations

import asyncio
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis
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
ACTION_RUN: Final = "run_action"
ACTIONS_SWEEP: Final = "sweep_actions"
ACTIONS_DELETE: Final = "delete_batch"

# arq's key layout (arq.constants), which its worker reads.
JOB_KEY_PREFIX: Final = "arq:job:"
RESULT_KEY_PREFIX: Final = "arq:result:"
IN_PROGRESS_KEY_PREFIX: Final = "arq:in-progress:"
# arq keeps a queued job's data for a day past its scheduled time.
EXPIRES_EXTRA_MS: Final = 86_400_000

# ARGV = queue name, then (job id, score, ttl ms, payload) per job. Returns 1 (queued) or 0
# (a job with that id is queued, running or has a kept result: arq's own dedup rule).
_ENQUEUE_LUA: Final = """
local out = {}
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  local key = 'arq:job:' .. id
  if redis.call('EXISTS', key, 'arq:result:' .. id) == 0 then
    redis.call('PSETEX', key, ARGV[i + 2], ARGV[i + 3])
    redis.call('ZADD', ARGV[1], ARGV[i + 1], id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


@dataclass(slots=True)
class _Pending:
    job_id: str
    score: int
    ttl_ms: int
    payload: bytes
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
        self._sha: str | None = None

    @property
    def name(self) -> str:
        return self._queue_name

    async def backlog(self) -> int:
        """Jobs due by now: waiting for a worker, or running (arq keeps those queued too)."""
        now_ms = int(time.time() * 1000)
        count: int = await self._redis.zcount(self._queue_name, "-inf", now_ms)
        return count

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
        loop = asyncio.get_running_loop()
        pending = _Pending(
            job_id=job_id or _new_id(),
            score=score,
            ttl_ms=score - now_ms + EXPIRES_EXTRA_MS,
            payload=pickle.dumps(data),
            done=loop.create_future(),
        )
        self._pending.append(pending)
        if self._flusher is None:
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
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for job, queued in zip(batch, results, strict=True):
                    if not job.done.done():
                        job.done.set_result(bool(queued))
        finally:
            self._flusher = None
            # Anything that arrived after a cancellation must not wait forever.
            if self._pending and not asyncio.get_running_loop().is_closed():
                self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _write(self, batch: list[_Pending]) -> list[int]:
        argv: list[Any] = [self._queue_name]
        for job in batch:
            argv += [job.job_id, job.score, job.ttl_ms, job.payload]
        if self._sha is None:
            self._sha = await self._redis.script_load(_ENQUEUE_LUA)
        try:
            result = await self._redis.evalsha(self._sha, 0, *argv)  # type: ignore[misc]
        except NoScriptError:  # Redis restarted and lost its script cache
            self._sha = await self._redis.script_load(_ENQUEUE_LUA)
            result = await self._redis.evalsha(self._sha, 0, *argv)  # type: ignore[misc]
        return [int(r) for r in result]

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
