"""Waking an idle worker when there is work, instead of polling Redis every 10 ms.

arq polls its queue every `poll_delay`; ringsync's 10 ms keeps a lone change's wait short, but
an idle worker then asks Redis a hundred times a second (measured here: two idle workers took
~150 ms of CPU a second between them, and Redis ~180 commands a second). Every enqueue goes
through `events.queue.Queue`, whose script also publishes, on the queue's wake channel
(`events.queue.wake_channel`), when the jobs it queued are due: the earliest and the latest.

A worker whose last poll claimed nothing (see `workers.claim`) sleeps until one of:
- a job is announced due now, or a job announced earlier comes due;
- it is woken here (`wake`: one of its jobs ended while it had no free slot);
- IDLE_POLL seconds pass, whatever happens: arq's crons are queued from the poll loop up to a
  second ahead, a job whose worker died becomes claimable when its lease expires, a retry arq
  puts back is announced to nobody, and neither is a job queued by anything but `Queue`.
A poll that claimed something is followed by another after arq's `poll_delay`, as before: an
account's jobs are due a millisecond apart (`events.queue`), so a busy worker keeps polling.
While the channel is not listened to (Redis unreachable, not subscribed yet) the worker polls as
before; once it listens again it polls at once, since what was announced meanwhile was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# The longest an idle worker sleeps between two polls (arq's cron window is 0.5 s).
IDLE_POLL: Final = 0.5
# How long after losing the channel it tries to listen again (polling every 10 ms meanwhile).
RESUBSCRIBE_AFTER: Final = 1.0
# Times of jobs announced for later that are remembered (beyond: IDLE_POLL finds them).
REMEMBERED: Final = 10_000


class Waker:
    """Listens on a wake channel in a task of its own; `sleep` waits for work to be due."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._due_now = False
        self._later: list[float] = []  # heap: unix times jobs announced for later come due
        self._changed = asyncio.Event()
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._listening

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    def wake(self) -> None:
        """Make the next (or the current) sleep return at once."""
        self._due_now = True
        self._changed.set()

    def heard(self, message: bytes | str) -> None:
        """An announcement: "<earliest ms> <latest ms>", the unix times the jobs come due."""
        now = time.time()
        try:
            dues = sorted({int(part) / 1000 for part in message.split()})
        except ValueError:
            dues = []
        if not dues or dues[0] <= now:
            self._due_now = True
        for due in dues:
            if due > now and len(self._later) < REMEMBERED:
                heapq.heappush(self._later, due)
        self._changed.set()

    async def sleep(self) -> None:
        """Until a job is due, a wake-up or IDLE_POLL seconds; at once when not listening."""
        deadline = time.time() + IDLE_POLL
        while self._listening and not self._due_now:
            now = time.time()
            until = min(deadline, self._later[0]) if self._later else deadline
            if until <= now:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(until - now):
                    await self._changed.wait()
        # Cleared before the poll that follows: what is announced during it wakes the next sleep.
        self._due_now = False
        now = time.time()
        while self._later and self._later[0] <= now:
            heapq.heappop(self._later)

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._listening = True
                self.wake()  # what was announced while not listening was missed
                async for message in pubsub.listen():
                    self.heard(message["data"])
            except (RedisError, OSError) as exc:
                if self._listening:
                    log.warning("wake channel lost; polling meanwhile: %s", exc)
            finally:
                self._listening = False
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RESUBSCRIBE_AFTER)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._listening = False
