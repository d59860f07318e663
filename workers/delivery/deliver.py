"""The deliver job and the delivery sweep: outbox rows reach every endpoint, in order per user.

Rows are durable, jobs are not. A delivery row per (outbox row, endpoint) holds the truth: its
status, attempts and when the next attempt is due. Jobs only act on it:

- `deliver(outbox_id)` (queued by `announce`) creates the missing delivery rows and tries each
  endpoint once; `deliver(outbox_id, endpoint, attempt=n)` is the n-th retry, deferred with arq.
- An attempt runs under a Redis lock per endpoint and user, re-reads the row, and goes ahead only
  if the row still expects attempt n and no earlier event of that user is unfinished or dead for
  that endpoint. Re-run jobs and duplicates therefore send nothing twice.
- 2xx → delivered; 410 → the endpoint is unsubscribed (said once, loudly); anything else is
  retried on `RINGSYNC_DELIVERY_SCHEDULE` until `RINGSYNC_DELIVERY_MAX_AGE`, then dead-lettered.
  A delivered event hands over to the user's next one at once. A dead one holds the user's later
  events for that endpoint back (downstream never hears them out of order) until it is replayed,
  and then sent first, or skipped (`workers.delivery.holds`).
- `sweep_deliveries` (cron, every minute) creates missing rows and re-queues whatever is due
  with no job, so a lost job or a crashed worker delays a delivery by a minute, never forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from arq.worker import Retry
from redis.exceptions import LockError

from events.queue import DELIVER
from events.settings import Settings
from workers.context import Deps, deps
from workers.delivery import hook
from workers.delivery.courier import Courier, courier_for
from workers.delivery.signing import body_of, event_for, signed_headers
from workers.delivery.store import OPEN, Delivery, DeliveryStore
from workers.store.mirror import OutboxRow

log = logging.getLogger(__name__)

# A lock outlives one attempt (a POST is cut at 10 s, a hook at 10 s), and no more than that:
# a worker killed mid-attempt holds that user's deliveries back only this long.
LOCK_SECONDS: Final = 20.0
SWEEP_LIMIT: Final = 1000


def endpoints(settings: Settings) -> list[str]:
    """Every configured endpoint: the URLs, then the in-process hook."""
    found = list(dict.fromkeys(settings.offboarding_urls))
    if settings.offboarding_hook:
        found.append(hook.endpoint_for(settings.offboarding_hook))
    return found


def label(endpoint: str) -> str:
    """An endpoint as logs show it: no credentials or query string of a URL."""
    if hook.is_hook(endpoint):
        return endpoint
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}" + (
        parts.path
    )


def retry_delay(schedule: list[float], failures: int) -> float:
    """Seconds before the next attempt after `failures` failed ones (the last delay repeats)."""
    return schedule[min(failures, len(schedule)) - 1]


def job_id(settings: Settings, event_id: str, endpoint: str, attempt: int) -> str:
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:16]
    return settings.key("deliver", event_id, digest, str(attempt))


async def deliver(
    ctx: dict[str, Any],
    outbox_id: int,
    endpoint: str | None = None,
    attempt: int = 0,
    replay: bool = False,
) -> str:
    """Try one outbox row at `endpoint` (default: every endpoint) if it expects `attempt`.

    `replay=True` (how a dead letter is replayed) re-opens the delivery first.
    """
    d = deps(ctx)
    store = DeliveryStore(d.store.engine)
    row = await store.outbox_row(outbox_id)
    if row is None:
        log.warning("outbox row not found", extra={"outbox_id": outbox_id, **_job(ctx)})
        return "missing"
    targets = [endpoint] if endpoint else endpoints(d.settings)
    if not targets:
        return "no endpoints"
    if endpoint is None or await store.get(outbox_id, endpoint) is None:
        # First run for this row (retries, hand-overs and sweeps find their row made).
        gone = await store.unsubscribed(targets)
        since = datetime.now(UTC) - timedelta(seconds=d.settings.delivery_max_age)
        await store.materialize(targets, since=since, upto=row, unsubscribed=gone)
    expected: int | None = attempt
    if replay:
        await store.reopen(outbox_id=outbox_id, endpoint=endpoint)
        expected = None
    async with courier_for(ctx) as courier:
        sender = _Sender(ctx, d, store, row, courier)
        outcomes = await asyncio.gather(*(sender.attempt(t, expected) for t in targets))
    if "busy" in outcomes:
        # Another job holds this user's lock for an endpoint: come back in a moment (longer
        # each time, in case its holder died and the lock has to expire).
        tries: int = ctx.get("job_try", 1)
        raise Retry(defer=min(0.05 * tries, 5.0) + random.uniform(0, 0.2))
    return ",".join(outcomes)


async def sweep_deliveries(ctx: dict[str, Any]) -> str:
    """Create missing delivery rows and queue every delivery that is due (see module doc)."""
    d = deps(ctx)
    targets = endpoints(d.settings)
    if not targets:
        return "no endpoints"
    store = DeliveryStore(d.store.engine)
    gone = await store.unsubscribed(targets)
    since = datetime.now(UTC) - timedelta(seconds=d.settings.delivery_max_age)
    # The outbox of every account of this deployment (a database may be shared with others).
    created, due = 0, []
    for account_id in [await d.account_id(), *await store.stored_accounts()]:
        created += await store.materialize(
            targets, since=since, account_id=account_id, unsubscribed=gone, limit=SWEEP_LIMIT
        )
        due += await store.due(targets, account_id=account_id, limit=SWEEP_LIMIT)
    queued = await asyncio.gather(
        *(
            d.queue.enqueue(
                DELIVER,
                item.delivery.outbox_id,
                endpoint=item.delivery.endpoint,
                attempt=item.delivery.attempts,
                job_id=job_id(
                    d.settings, item.event_id, item.delivery.endpoint, item.delivery.attempts
                ),
            )
            for item in due
        )
    )
    if created or any(queued):
        log.info(
            "delivery sweep",
            extra={"rows_created": created, "due": len(due), "queued": sum(queued), **_job(ctx)},
        )
    return f"{created} created, {sum(queued)} queued"


async def hand_over(
    d: Deps, store: DeliveryStore, endpoint: str, account_id: str, extension_id: str
) -> None:
    """Queue the user's next unfinished event for `endpoint` (it waited for the one before)."""
    found = await store.next_open(endpoint, account_id, extension_id)
    if found is None:
        return
    nxt = found.delivery
    wait = (nxt.next_attempt_at - datetime.now(UTC)).total_seconds()
    await d.queue.enqueue(
        DELIVER,
        nxt.outbox_id,
        endpoint=endpoint,
        attempt=nxt.attempts,
        job_id=job_id(d.settings, found.event_id, endpoint, nxt.attempts),
        defer_by=max(wait, 0.0),
    )


def _job(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": ctx.get("job_id"), "job_try": ctx.get("job_try")}


class _Sender:
    """One deliver job's attempts of one outbox row, one endpoint at a time per lock."""

    def __init__(
        self,
        ctx: dict[str, Any],
        d: Deps,
        store: DeliveryStore,
        row: OutboxRow,
        courier: Courier,
    ) -> None:
        self.d = d
        self.store = store
        self.row = row
        self.courier = courier
        self.metrics = courier.metrics
        self.extra = {
            "event_id": row.event_id,
            "extension_id": row.extension_id,
            "uuid": row.cause,
            "type": row.type,
            "sequence": row.sequence,
            **_job(ctx),
        }
        self.event = event_for(row)
        self.body = body_of(self.event)

    async def attempt(self, endpoint: str, expected: int | None) -> str:
        key = self.d.settings.key(
            "delivery",
            "lock",
            hashlib.sha256(endpoint.encode()).hexdigest()[:16],
            self.row.account_id,
            self.row.extension_id,
        )
        lock = self.d.redis.lock(key, timeout=LOCK_SECONDS, blocking=False)
        if not await lock.acquire():
            return "busy"
        handover = False
        try:
            delivery = await self.store.get(self.row.id, endpoint)
            if delivery is None or delivery.status not in OPEN:
                return "done"
            if expected is not None and delivery.attempts != expected:
                return "stale"
            if await self.store.waits(delivery):
                return "waiting"
            outcome = await self._send(delivery)
            handover = outcome == "delivered"
            return outcome
        finally:
            with contextlib.suppress(LockError):
                await lock.release()
            if handover:
                row = self.row
                await hand_over(self.d, self.store, endpoint, row.account_id, row.extension_id)

    async def _send(self, delivery: Delivery) -> str:
        endpoint = delivery.endpoint
        extra = {**self.extra, "endpoint": label(endpoint), "attempt": delivery.attempts + 1}
        started = time.perf_counter()
        status, error = await self._call(endpoint)
        self.metrics.attempt_seconds.observe(time.perf_counter() - started)
        attempts = delivery.attempts + 1
        now = datetime.now(UTC)
        if error is None:
            await self.store.record(
                delivery.id,
                status="delivered",
                attempts=attempts,
                delivered_at=now,
                last_status=status,
                last_error=None,
            )
            self.metrics.attempts.labels("delivered").inc()
            self.metrics.latency_seconds.observe((now - self.row.created_at).total_seconds())
            log.info("event delivered", extra=extra)
            return "delivered"
        self.metrics.failures.labels(_kind(endpoint, status, error)).inc()
        if status == 410:
            await self.store.record(
                delivery.id,
                status="unsubscribed",
                attempts=attempts,
                last_status=status,
                last_error=error,
            )
            self.metrics.attempts.labels("unsubscribed").inc()
            if await self.store.unsubscribe(endpoint, label(endpoint)):
                log.error(
                    "ENDPOINT UNSUBSCRIBED: it answered 410 Gone; nothing more is sent to it"
                    " (remove it from RINGSYNC_OFFBOARDING_URLS, or use a new URL to resume)",
                    extra=extra,
                )
            return "unsubscribed"
        started_at = max(self.row.created_at, delivery.replayed_at or self.row.created_at)
        deadline = started_at + timedelta(seconds=self.d.settings.delivery_max_age)
        if now >= deadline:
            letter = await self.store.bury(delivery, attempts=attempts, error=error, status=status)
            self.metrics.attempts.labels("dead").inc()
            log.error("delivery dead-lettered: %s", error, extra={**extra, "dead_letter": letter})
            return "dead"
        delay = retry_delay(self.d.settings.delivery_schedule, attempts)
        next_at = min(now + timedelta(seconds=delay), deadline)
        await self.store.record(
            delivery.id,
            status="failed",
            attempts=attempts,
            next_attempt_at=next_at,
            last_status=status,
            last_error=error,
        )
        await self.d.queue.enqueue(
            DELIVER,
            self.row.id,
            endpoint=endpoint,
            attempt=attempts,
            job_id=job_id(self.d.settings, self.row.event_id, endpoint, attempts),
            defer_by=max((next_at - now).total_seconds(), 0.0),
        )
        self.metrics.attempts.labels("retrying").inc()
        log.warning("delivery failed, retrying in %.1fs: %s", delay, error, extra=extra)
        return "retrying"

    async def _call(self, endpoint: str) -> tuple[int | None, str | None]:
        """Run one attempt: (HTTP status or None, error or None when it succeeded)."""
        if hook.is_hook(endpoint):
            try:
                await hook.call(endpoint, self.event)
            except Exception as exc:
                return None, f"hook failed: {type(exc).__name__}: {exc}"
            return None, None
        secret = self.d.settings.offboarding_secret.get_secret_value()
        if not secret:
            return None, "RINGSYNC_OFFBOARDING_SECRET is not set: nothing is sent unsigned"
        headers = {
            "content-type": "application/json",
            "user-agent": "ringsync",
            **signed_headers(secret, self.row.event_id, self.body),
        }
        try:
            response = await self.courier.http().post(endpoint, content=self.body, headers=headers)
        except Exception as exc:  # timeouts, refused connections, a malformed URL: all retried
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def _kind(endpoint: str, status: int | None, error: str) -> str:
    if hook.is_hook(endpoint):
        return "hook"
    if status is not None:
        return f"{status // 100}xx" if status != 410 else "410"
    return "unsigned" if error.startswith("RINGSYNC_") else "network"
