"""Notifications the receiver refused while Redis was away, told to the workers once it is back.

RingCentral never sends a notification again after a 503: what a receiver refused is lost unless
a resync repairs it. So the receiver remembers, in memory, when it first refused since its last
report, and a probe tries every second to write that down in Redis (one hash field per report,
so a write retried is the same write) and to queue a subscription check. That check
(`workers.subscription.renewal`) records the gap and queues the full resync that repairs it, as for
a blacklisted subscription. Nothing here slows a request: a refusal costs a counter.

Each report names the accounts whose notifications were refused ("" the default account), or
`EVERY_ACCOUNT` when the receiver could not tell (Redis was needed to route it): the default
account's check hands each other account its own report, and each repairs its own gap.

A receiver stopped or restarted while Redis is still away forgets what it refused (it says so in
its log); the daily full resync (RINGSYNC_RESYNC_AT) repairs that, as it repairs the last second
of writes a crashed Redis can lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from events.queue import RENEW, Queue
from events.settings import Settings

log = logging.getLogger(__name__)

# Seconds between attempts to report, while Redis stays away.
PROBE_EVERY: Final = 1.0
# The reason a subscription check is queued with, and the reason its gap is recorded under.
REFUSED: Final = "refused"
# A refused notification whose account could not be told: every account may have lost it.
EVERY_ACCOUNT: Final = "*"


class Refused(BaseModel):
    """One report: a receiver answered 503 to `count` notifications between these times."""

    model_config = ConfigDict(frozen=True)

    started_at: datetime
    ended_at: datetime
    count: int = Field(ge=1)
    # Whose notifications they were ("" the default account); reports written before accounts
    # existed name none, and are every account's.
    accounts: tuple[str, ...] = (EVERY_ACCOUNT,)


def refusals_key(settings: Settings) -> str:
    """The Redis hash holding reports not yet turned into gaps (field: one report), of the
    account `settings` acts for."""
    return settings.key("receiver", REFUSED)


class Refusals:
    """The receiver's memory of what it refused, and the probe that reports it."""

    def __init__(
        self, settings: Settings, redis: Redis, queue: Queue, *, every: float = PROBE_EVERY
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._queue = queue
        self._every = every
        self._receiver = uuid.uuid4().hex[:12]
        self._since: float | None = None  # when the first refusal not yet reported happened
        self._count = 0
        self._reported = 0  # reports written: no two of one receiver share a field
        self._accounts: set[str] = set()
        self._probe: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Refusals not yet reported."""
        return self._count

    def note(self, account: str | None = None) -> None:
        """A notification for `account` ("" the default, None when it could not be told) was
        answered 503; start probing for Redis if not already."""
        if self._since is None:
            self._since = time.time()
        self._count += 1
        self._accounts.add(EVERY_ACCOUNT if account is None else account)
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._report_when_back())

    async def report(self) -> None:
        """Write what was refused so far to Redis and queue the check; raises if Redis fails.

        Refusals noted while this runs belong to the next report.
        """
        if self._since is None:
            return
        since, count, now = self._since, self._count, time.time()
        accounts, self._accounts = self._accounts, set()
        refused = Refused(
            started_at=_utc(since),
            ended_at=_utc(now),
            count=count,
            accounts=tuple(sorted(accounts)),
        )
        field = f"{self._receiver}:{self._reported}:{int(since * 1000)}:{count}"
        key = refusals_key(self._settings)
        try:
            await self._redis.hset(key, field, refused.model_dump_json())  # type: ignore[misc]
            await self._queue.enqueue(RENEW, REFUSED, job_id=self._settings.key("renew", field))
        except BaseException:
            self._accounts |= accounts  # still unreported
            raise
        log.warning(
            "%d notifications were refused while Redis was unreachable; a full resync will "
            "repair them",
            count,
            extra={"refused_since": refused.started_at.isoformat()},
        )
        self._reported += 1
        self._count -= count
        self._since = now if self._count else None

    async def close(self) -> None:
        """Stop probing; report once more if Redis answers, else say what is forgotten."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if not self._count:
            return
        try:
            async with asyncio.timeout(self._settings.enqueue_timeout * 2):
                await self.report()
        except (RedisError, OSError, TimeoutError):
            since = None if self._since is None else _utc(self._since).isoformat()
            log.error(
                "%d refused notifications could not be reported (Redis unreachable); the next "
                "full resync repairs them",
                self._count,
                extra={"refused_since": since},
            )

    async def _report_when_back(self) -> None:
        try:
            while self._count:
                await asyncio.sleep(self._every)
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await self.report()
        finally:
            self._probe = None


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
