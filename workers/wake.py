"""Waking an idle worker when there is work, instead of polling Redis every 10 ms.

arq polls its queue every `poll_delay`; ringsync's 10 ms keeps a lone change's wait short, but
an idle worker then asks Redis a hundred times a second (measured here: two idle workers took
~150 ms of CPU a second between them, and Redis ~180 commands a second). Every enqueue goes
through `events.queue.Queue`, whose script also publishes, on the queue's wake channel
(`events.queue.wake_channel`), when the jobs it queued come due ("now", and the earliest few of
those queued for later).

A worker whose last poll asked about every due job and claimed none (see `workers.claim`)
sleeps until one of:
- a job is announced due now, or a job announced earlier comes due;
- it is woken here (`wake`: one of its jobs ended; it then looks up the jobs queued for later,
  since a retry arq puts back is announced to nobody);
- IDLE_POLL seconds pass, whatever happens: arq's crons are queued from the poll loop up to a
  second ahead, a job whose worker died becomes claimable when its lease expires, and a job
  queued by anything but `Queue` is announced to nobody.
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
import socket
import time
from typing import Any, Final

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.exceptions import NoPermissionError, RedisError

log = logging.getLogger(__name__)

# The longest an idle worker sleeps between two polls (arq's cron window is 0.5 s).
IDLE_POLL: Final = 0.5
# How long after losing the channel it tries to listen again (polling every 10 ms meanwhile).
RESUBSCRIBE_AFTER: Final = 1.0
# How long the answer to SUBSCRIBE may take before the channel counts as not listened to.
SUBSCRIBE_WITHIN: Final = 5.0
# Times of jobs announced for later that are remembered (the nearest; beyond, IDLE_POLL).
REMEMBERED: Final = 10_000
# A listening connection only reads, so a peer gone without a word (a NAT or load balancer
# dropping a quiet flow) would never be noticed: the kernel probes it after 30 s of silence.
_KEEPALIVE: Final = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}


def _listening_client(redis: Redis) -> Redis:
    """A client of its own for the channel, on the same server, with TCP keepalive."""
    pool = redis.connection_pool
    kwargs: dict[str, Any] = dict(pool.connection_kwargs)
    if issubclass(pool.connection_class, Connection):  # TCP or TLS (not a Unix socket)
        kwargs.update(socket_keepalive=True, socket_keepalive_options=_KEEPALIVE)
    return Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs))


class Waker:
    """Listens on a wake channel in a task of its own; `sleep` waits for work to be due."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._due_now = False
        self._later: list[float] = []  # heap: unix times jobs announced for later come due
        self._changed = asyncio.Event()
        self._listening = False
        self._failed = False  # an unexpected error was logged
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

    def expect(self, due: float) -> None:
        """Remember that a job comes due at `due` (unix time): a sleep ends then."""
        if due <= time.time():
            self.wake()
            return
        if len(self._later) >= REMEMBERED:  # a busy worker never sleeps, so never pops
            now = time.time()
            self._later = heapq.nsmallest(
                REMEMBERED // 2, (later for later in self._later if later > now)
            )  # sorted: still a heap
        heapq.heappush(self._later, due)
        self._changed.set()

    def heard(self, message: bytes | str) -> None:
        """An announcement: the unix times (ms) the queued jobs come due, space-separated."""
        try:
            dues = {int(part) / 1000 for part in message.split()}
        except ValueError:
            dues = set()
        if not dues:
            self.wake()
        for due in dues:
            self.expect(due)

    async def sleep(self) -> None:
        """Until a job is due, a wake-up or IDLE_POLL seconds; at once when not listening."""
        loop = asyncio.get_running_loop()
        # The loop's clock: a wall clock set back meanwhile changes nothing.
        deadline = loop.time() + IDLE_POLL
        while self._listening and not self._due_now:
            left = deadline - loop.time()
            if self._later:
                left = min(left, self._later[0] - time.time())
            if left <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._changed.wait()
        # Cleared before the poll that follows: what is announced during it wakes the next sleep.
        self._due_now = False
        now = time.time()
        while self._later and self._later[0] <= now:
            heapq.heappop(self._later)

    async def _listen(self) -> None:
        client = _listening_client(self._redis)
        try:
            while True:
                if await self._listen_once(client):
                    return
                await asyncio.sleep(RESUBSCRIBE_AFTER)
        finally:
            self._listening = False
            with contextlib.suppress(Exception):
                await client.aclose(close_connection_pool=True)

    async def _listen_once(self, client: Redis) -> bool:
        """Subscribe and hear announcements until the connection fails (False: try again) or
        the server refuses the channel (True: poll from now on)."""
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            while True:
                message = await pubsub.get_message(
                    timeout=None if self._listening else SUBSCRIBE_WITHIN
                )
                if message is None:
                    if not self._listening:
                        raise TimeoutError("no answer to SUBSCRIBE")
                    continue
                if message["type"] == "subscribe":
                    self._listening = True
                    self.wake()  # what was announced while not listening was missed
                elif message["type"] == "message":
                    self.heard(message["data"])
        except NoPermissionError as exc:
            # This Redis user may not use channels (Redis 7's default for new users).
            log.warning("wake channel refused; idle workers poll every 10 ms: %s", exc)
            return True
        except (RedisError, OSError, TimeoutError) as exc:  # BUSY, LOADING, a connection lost
            if self._listening:
                log.warning("wake channel lost; polling meanwhile: %s", exc)
            return False
        except Exception:  # never leave the worker deaf and unaware (told once)
            if not self._failed:
                self._failed = True
                log.exception("wake channel listener failed; polling meanwhile")
            return False
        finally:
            self._listening = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._listening = False
