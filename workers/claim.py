"""arq's worker, claiming the jobs it polled in one round trip instead of four a job.

arq starts a job it polled with WATCH on the job's in-progress key, EXISTS, ZSCORE and then
MULTI/PSETEX/EXEC: four round trips, paid again by every other worker that polled the same job
and lost the race (three more, and an UNWATCH). Measured under a steady 100 changes/s with two
workers, those claims were a fifth of a worker's CPU, most of it in the socket writes. The
script below makes the same decision atomically in Redis, for every job of a poll in one call
(one call a job was still 14% of a worker's socket writes at 200 accounts changing a user each
every 2 s): a job is claimed when no worker holds it and it is still queued and due, by setting
its in-progress key for as long as arq would. Everything else (running the job, its retries,
results and aborts) is arq's own.

arq keeps a running job in the queue until it ends, so a worker polling every 10 ms sees every
running job again and again. Jobs it runs itself, and jobs the script just found another worker
holding (for RUNNING_ELSEWHERE seconds), are not asked about again: without that, a poll while
any job ran was a script call too, two round trips a poll (at 100 accounts changing a user
every 2 s, polling was a seventh of a worker's CPU).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from workers.wake import Waker

logger = logging.getLogger("arq.worker")

# Jobs queued for later whose due times a worker looks up after one of its jobs ended.
LOOK_AHEAD: Final = 8

# How long a job another worker was found running is left out of this worker's claims: a job
# whose holder dies keeps its in-progress key far longer (arq's lease), so this delays nothing.
RUNNING_ELSEWHERE: Final = 0.2

# KEYS: queue, then one in-progress key per job. ARGV: now ms, in-progress ttl ms, then the job
# ids. Returns (job id, score) pairs of the jobs now this worker's.
_CLAIM: Final = """
local out = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local id = ARGV[i + 1]
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= tonumber(ARGV[1]) then
      redis.call('SET', KEYS[i], '1', 'PX', ARGV[2])
      out[#out + 1] = id
      out[#out + 1] = score
    end
  end
end
return out
"""


class ClaimingWorker(Worker):
    """`arq.worker.Worker` with `start_jobs` claiming a poll's jobs in one script call, and,
    given a `wake_channel`, sleeping between polls while idle (see `workers.wake`)."""

    _claim: AsyncScript | None = None
    # Job id -> time.monotonic() until which it is not asked about (see RUNNING_ELSEWHERE).
    _elsewhere: dict[str, float] | None = None
    wake_channel: str | None = None
    _waker: Waker | None = None

    # Whether the last poll asked about every due job it did not know to be running, here or
    # elsewhere, and claimed none (arq skips the poll of a full worker: then False); and whether
    # one of its jobs ended since the last sleep (arq may have put it back for later: a retry
    # announces nothing).
    _idle = False
    _ended = False

    async def _poll_iteration(self) -> None:
        self._idle = False
        await super()._poll_iteration()
        if self.burst or self.wake_channel is None:
            return  # a burst worker stops once the queue is empty: it polls on until then
        if self._waker is None:
            self._waker = Waker(self.pool, self.wake_channel)
            self._waker.start()
        if not self._idle:
            return  # busy, or due jobs not asked about: poll again (as arq would)
        if self._ended:
            self._ended = False
            await self._expect_earliest(self._waker)
        await self._waker.sleep()  # until a job is due (or a wake-up, or a while)

    async def _expect_earliest(self, waker: Waker) -> None:
        """Tell the waker when the earliest job queued for later comes due (a retry arq put
        back, which nobody announced)."""
        now = timestamp_ms()
        try:
            found = await self.pool.zrangebyscore(
                self.queue_name, min=f"({now}", max="+inf", start=0, num=LOOK_AHEAD,
                withscores=True,
            )  # fmt: skip
        except (RedisError, OSError):
            waker.wake()  # arq's next poll meets the same error and handles it
            return
        for _job_id, score in found:
            waker.expect(float(score) / 1000)

    def _running_here(self, job_id: str) -> bool:
        """Whether this worker runs `job_id` now (arq drops ended tasks only after its poll, and
        the id may be queued again meanwhile)."""
        task = self.tasks.get(job_id)
        return task is not None and not task.done()

    def _job_done(self, _task: asyncio.Task[None]) -> None:
        self._release_sem_dec_counter_on_complete()
        self._ended = True
        if self._waker is not None:
            self._waker.wake()  # a slot is free, and the job may be queued again for later

    async def close(self) -> None:
        if self._waker is not None:
            await self._waker.close()
            self._waker = None
        await super().close()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # Idle once every due job was asked about (a job asked about takes a slot: a page of
        # jobs another worker runs, which stay queued, can fill them and hide waiting ones),
        # none was claimed, and no page is left unread.
        self._idle = len(job_ids) < self.queue_read_limit
        if self._claim is None:
            self._claim = self.pool.register_script(_CLAIM)
        now = time.monotonic()
        elsewhere = self._elsewhere = {
            job_id: until for job_id, until in (self._elsewhere or {}).items() if until > now
        }
        wanted: list[str] = []
        for polled in job_ids:  # a slot for each, as arq takes them
            job_id = polled.decode()
            if self._running_here(job_id) or job_id in elsewhere:
                continue  # running here, or elsewhere
            # arq's semaphore has one permit more than max_jobs and moves with the counter:
            # below max_jobs a slot is taken without waiting.
            if self.job_counter >= self.max_jobs:
                self._idle = False
                break
            await self.sem.acquire()
            self.job_counter = self.job_counter + 1
            wanted.append(job_id)
        if not wanted:
            return
        keys = [self.queue_name, *(in_progress_key_prefix + job_id for job_id in wanted)]
        ttl_ms = int(self.in_progress_timeout_s * 1000)
        try:
            found = await self._claim(keys=keys, args=[timestamp_ms(), ttl_ms, *wanted])
        except ResponseError as exc:  # Redis refuses writes (MISCONF, OOM): poll on, as arq
            for _ in wanted:
                self._release_sem_dec_counter_on_complete()
            logger.debug("jobs not claimed: %s", exc)
            return
        except BaseException:
            for _ in wanted:
                self._release_sem_dec_counter_on_complete()
            raise
        claimed = {found[i].decode(): found[i + 1] for i in range(0, len(found), 2)}
        for job_id in wanted:
            score = claimed.get(job_id)
            if score is None:  # running elsewhere, done, or deferred again meanwhile
                self._release_sem_dec_counter_on_complete()
                elsewhere[job_id] = now + RUNNING_ELSEWHERE
                logger.debug("job %s already running elsewhere", job_id)
                continue
            task = asyncio.get_running_loop().create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(self._job_done)
            self.tasks[job_id] = task
            self._idle = False
