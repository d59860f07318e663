"""What every job needs, built once per worker in `startup` and reached through `deps(ctx)`."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from events.queue import Queue
from events.settings import Settings
from workers import stages
from workers.coalesce import Coalescer
from workers.endpoint import Endpoint
from workers.metrics import WorkerMetrics
from workers.ringcentral.budget import GroupBudget
from workers.ringcentral.client import RingCentral
from workers.store.identity import Store

log = logging.getLogger(__name__)


@dataclass
class Deps:
    settings: Settings
    redis: Redis
    queue: Queue
    store: Store
    client: RingCentral
    coalescer: Coalescer
    # False while the account's credentials are refused: nothing may call RingCentral for it.
    active: bool = True
    _account_id: str | None = field(default=None, repr=False)
    _users: tuple[float, int] | None = field(default=None, repr=False)
    _last_event_noted: float = field(default=0.0, repr=False)
    _budget: tuple[float, dict[str, GroupBudget]] | None = field(default=None, repr=False)

    async def account_id(self) -> str:
        """The numeric account id (never `~`), asked of RingCentral once and shared in Redis."""
        if self._account_id is None:
            # The default account (RC_* environment); stored accounts are built with their id.
            key = self.settings.key("account_id")
            cached = await self.redis.get(key)
            if cached is None:
                account = await self.client.account()
                await self.redis.set(key, account.id)
                self._account_id = account.id
            else:
                self._account_id = cached.decode()
        return self._account_id

    async def note_event(self, received_at: datetime, every: float = 10.0) -> None:
        """Record when a notification last arrived (silence detection, status), at most once
        every `every` seconds per account and worker: one write a notification would double
        the store's write load, and with many accounts each changing now and then, a shorter
        pause would still mean one write a notification. Silence is counted in hours, and an
        older mark only makes a gap's resync start earlier."""
        now = time.monotonic()
        if now - self._last_event_noted >= every:
            self._last_event_noted = now
            await self.store.set_state(
                "last_event_at", received_at.isoformat(), self.settings.account
            )

    async def budget_snapshot(self, max_age: float = 1.0) -> dict[str, GroupBudget]:
        """The shared rate-limit budget per group, at most `max_age` seconds old."""
        now = time.monotonic()
        if self._budget is None or now - self._budget[0] > max_age:
            self._budget = (now, await self.client.budget.snapshot())
        return self._budget[1]

    async def account_users(self, max_age: float = 60.0) -> int:
        """How many of this account's users the mirror holds (cached for `max_age` seconds):
        sizes a listing."""
        now = time.monotonic()
        if self._users is None or now - self._users[0] > max_age:
            self._users = (now, await self.store.count_users(await self.account_id()))
        return self._users[1]


def deps(ctx: dict[str, Any]) -> Deps:
    return cast(Deps, ctx["deps"])


# A listing (batch reconcile, resync) may need up to a minute per 40 pages of Medium budget: its
# client waits that long instead of failing the job after a third of a single read's timeout.
LISTING_WAIT = 120.0


@contextlib.asynccontextmanager
async def listing_deps(ctx: dict[str, Any]) -> AsyncIterator[Deps]:
    """The job's Deps with a client that waits as long as a listing needs (same token, budget)."""
    d = deps(ctx)
    metrics = ctx.get("metrics")
    transport = None
    if isinstance(metrics, WorkerMetrics):
        transport = metrics.transport(account=d.settings.account)
    async with RingCentral(
        d.settings,
        d.redis,
        max_wait=LISTING_WAIT,
        transport=transport,
        on_refused=d.client.on_refused,
    ) as client:
        yield dataclasses.replace(d, client=client)


async def startup(ctx: dict[str, Any]) -> None:
    """Open the store (migrating it) and the RingCentral client for this worker process."""
    settings: Settings = ctx["settings"]
    redis: Redis = ctx["redis"]
    stages.configure(settings.stage_log)
    store = await Store.open(settings.database_url)
    metrics = ctx["metrics"] = WorkerMetrics()
    endpoint = ctx["endpoint"] = Endpoint(metrics.registry)
    await endpoint.start(settings.metrics_host, settings.metrics_port)
    ctx["deps"] = Deps(
        settings=settings,
        redis=redis,
        queue=Queue(redis, settings.queue_name),
        store=store,
        # A job waits at most a third of its timeout for rate-limit budget, then retries later.
        client=RingCentral(
            settings, redis, max_wait=settings.job_timeout / 3, transport=metrics.transport()
        ),
        coalescer=Coalescer(redis, settings, window=settings.coalesce_window),
    )
    await _warn_if_evicting(redis)
    log.info("worker started", extra={"queue": settings.queue_name})


async def _warn_if_evicting(redis: Redis) -> None:
    """Say so when Redis may evict keys: the queue (acknowledged notifications) and the access
    token live there, and an evicted job is a notification silently lost."""
    try:
        found = await redis.config_get("maxmemory-policy")
    except RedisError:  # managed services often refuse CONFIG: nothing to learn then
        return
    policy = next(iter(found.values()), b"noeviction")
    policy = policy.decode() if isinstance(policy, bytes) else str(policy)
    if policy != "noeviction":
        log.warning(
            "Redis maxmemory-policy is %s: under memory pressure it may evict queued jobs, "
            "losing acknowledged notifications; set it to noeviction",
            policy,
        )


async def shutdown(ctx: dict[str, Any]) -> None:
    stages.configure(None)
    endpoint = ctx.pop("endpoint", None)
    if isinstance(endpoint, Endpoint):
        await endpoint.stop()
    found = ctx.get("deps")
    if found is None:
        return
    d = cast(Deps, found)
    await d.queue.close()
    await d.client.aclose()
    await d.store.close()
