"""The ingest job: keep the raw notification, expand it to extensions, schedule their reconciles.

A notification only says *that* users changed. Each extension is marked dirty (a new generation,
see `workers.coalesce`) and gets a reconcile job of its own; when many are dirty at once and one
listing is cheaper than their single reads, a batch reconcile reads list pages instead, and no
single jobs are queued (see `_listing_covers`). Company Directory events are no different:
their bodies carry contact data (status, type, names), but a body is only as trustworthy as its
sender, so it only says *which* users to re-read; what they now are comes from RingCentral's
answer to our own request (a forged "Disabled" never offboards anyone, a forged date never
freezes a row).

The common case, a notification naming a user or two that nobody read within the coalescing
window, is reconciled right here, at once: one job a change instead of two. Whatever cannot go
through at once (no budget, a listing under way, another worker reading, any failure) gets its
reconcile job as above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.models import Kind, Notification
from events.queue import IN_PROGRESS_KEY_PREFIX, RECONCILE, RECONCILE_BATCH, RENEW
from workers import stages
from workers.batching import GroupState, prefer_listing
from workers.coalesce import Marked
from workers.context import Deps, deps
from workers.failures import guarded
from workers.metrics import WorkerMetrics
from workers.reconcile import read_roles_soon, reconcile_now

log = logging.getLogger(__name__)

RECEIVED = "received"
# A batch runs first: single jobs queued beside it wait this long, then find themselves covered.
BATCH_HEAD_START = 0.5
# A notification naming at most this many users reconciles them at once, inside the ingest,
# while its account has few jobs waiting: under a burst, changes are marked and queued instead,
# so the dirty set grows and one listing can cover them (see `workers.batching`). Other
# accounts' jobs do not count: a hundred accounts changing one user each are no burst, and
# queuing them would double their jobs just when the workers are busiest.
INLINE_MAX = 4
INLINE_BACKLOG = 50


async def ingest(ctx: dict[str, Any], raw: bytes, received_ms: int, kind: str = "") -> str:
    """Store `raw` once (by uuid) and schedule reconciles for the extensions it names.

    `kind` is the receiver's classification, for people reading the queue; the job classifies
    the notification again itself.
    """
    notification = Notification.model_validate_json(raw)
    if stages.enabled():
        named = notification.extension_ids()
        stages.passed("received", named, at=received_ms / 1000)
        stages.passed("ingest", named)
    extra = {"uuid": notification.uuid}
    return await guarded(ctx, "ingest", extra, lambda: _ingest(ctx, notification, raw, received_ms))


async def _ingest(
    ctx: dict[str, Any], notification: Notification, raw: bytes, received_ms: int
) -> str:
    d = deps(ctx)
    if await d.store.event_outcome(notification.uuid) not in (None, RECEIVED):
        log.info("notification already ingested", extra={"uuid": notification.uuid})
        return "duplicate"
    received_at = datetime.fromtimestamp(received_ms / 1000, UTC)
    await d.note_event(received_at)
    account_id = await d.account_id()

    async def store(outcome: str, *, finished: bool) -> None:
        await d.store.record_event(
            uuid=notification.uuid,
            body=raw.decode(),
            event=notification.event,
            subscription_id=notification.subscription_id,
            account_id=account_id,
            received_at=received_at,
            outcome=outcome,
            finished=finished,
        )

    # Stored once its work is queued, with what became of it: one write. A crash before that
    # leaves it unstored, so the job's retry schedules it again (reconciles are idempotent); a
    # failure stores it unfinished, so its body outlives a dead letter (replays read it).
    try:
        outcome = await _dispatch(d, notification, ctx.get("metrics"))
    except Exception:
        await store(RECEIVED, finished=False)
        raise
    await store(outcome, finished=True)
    return outcome


async def _dispatch(
    d: Deps, notification: Notification, metrics: WorkerMetrics | None = None
) -> str:
    """Queue what the notification calls for; returns the outcome to record."""
    kind = notification.kind
    if kind is Kind.SUBSCRIPTION:
        await d.queue.enqueue(RENEW, "reminder", job_id=d.settings.key("renew", "reminder"))
        return "renewal"
    if kind is Kind.UNKNOWN:
        extra = {"uuid": notification.uuid, "event": notification.event}
        log.info("unknown event stored", extra=extra)
        return "ignored"
    ids = notification.extension_ids()
    inline = Inline(metrics, notification.timestamp)
    await schedule(d, ids, cause=notification.uuid, inline=inline)
    await read_roles_soon(d, notification.hinted("Permissions"), notification.uuid)
    log.info(
        "notification ingested",
        extra={"uuid": notification.uuid, "kind": kind.value, "extensions": len(ids)},
    )
    return "scheduled"


@dataclass(frozen=True, slots=True)
class Inline:
    """Reconciling at once inside the ingest job: where to count it, and when RingCentral sent
    the notification (for the lag metric)."""

    metrics: WorkerMetrics | None
    sent: datetime


async def schedule(
    d: Deps, extension_ids: list[str], *, cause: str | None, inline: Inline | None = None
) -> int:
    """Mark extensions dirty and queue their reconciles (a batch when listing is cheaper);
    with `inline`, reconcile a few that can go at once right here instead. Returns how many
    were marked."""
    marks, dirty = await d.coalescer.mark_counting(extension_ids)
    marked = len(marks)
    if not marks:
        return 0
    head_start = 0.0
    if await _listing_is_cheaper(d, dirty):
        if await _listing_covers(d, cause):
            return marked
        head_start = BATCH_HEAD_START
    elif (
        inline is not None
        and d.active
        and len(marks) <= INLINE_MAX
        and await _at_once(d, len(marks))
    ):
        now = [mark for mark in marks if mark.defer_by == 0]
        done = await asyncio.gather(*(_reconcile_inline(d, mark, cause, inline) for mark in now))
        finished = [mark for mark, ok in zip(now, done, strict=True) if ok]
        marks = [mark for mark in marks if mark not in finished]
    for mark in marks:
        await d.queue.enqueue(
            RECONCILE,
            mark.extension_id,
            mark.generation,
            cause,
            job_id=d.settings.key("reconcile", mark.extension_id, str(mark.generation)),
            defer_by=max(mark.defer_by, head_start),
        )
    return marked


async def _listing_covers(d: Deps, cause: str | None) -> bool:
    """Make sure a listing that has not started yet is queued: it covers every change marked so
    far, so no single job is queued for them (a bulk change of 10,000 users is one job, not
    10,000 that would crowd other accounts' out of the workers). What it does not list, it
    queues single jobs for itself (`workers.reconcile`). False when both listings a deployment
    keeps per account are under way: then single jobs are queued, as before."""
    for name in ("pending", "next"):
        job_id = d.settings.key("batch", name)
        if await d.queue.enqueue(RECONCILE_BATCH, cause, job_id=job_id):
            log.info("batch reconcile scheduled", extra={"uuid": cause})
            return True
        # Taken: queued and not started yet (it lists after these marks), or under way.
        if not await d.redis.exists(IN_PROGRESS_KEY_PREFIX + job_id):
            return True
    return False


async def _at_once(d: Deps, reads: int) -> bool:
    """Whether `reads` single reads can go now: budget left, and no backlog of the account's
    own to leave behind."""
    # One script call on the Light group alone: with many accounts each changing now and then,
    # a per-account snapshot of every group (`Deps.budget_snapshot`) is rarely fresh enough to
    # be reused, and costs a pipeline a change.
    remaining, wait = await d.client.budget.room("light")
    if remaining < reads or wait > 0:
        return False
    return await d.queue.account_backlog() < INLINE_BACKLOG


async def _reconcile_inline(d: Deps, mark: Marked, cause: str | None, inline: Inline) -> bool:
    """Reconcile `mark` now; False when it needs its job after all."""
    started = time.perf_counter()
    try:
        outcome = await reconcile_now(d, mark.extension_id, mark.generation, cause, inline=True)
    except Exception as exc:  # its job retries, dead-letters and logs it as any other
        extra = {"extension_id": mark.extension_id, "uuid": cause}
        log.info("reconcile queued after a failed first try: %s", exc, extra=extra)
        return False
    if outcome in ("batch", "locked"):
        return False
    if inline.metrics is not None:
        inline.metrics.reconciled_inline(outcome, time.perf_counter() - started, inline.sent)
    return True


async def _listing_is_cheaper(d: Deps, dirty: int) -> bool:
    if dirty < 2:
        return False
    users = await d.account_users()
    if dirty <= users // 1000 + 1:
        return False
    snapshot = await d.budget_snapshot()  # a few Redis calls: reused for a second

    def state(group: str) -> GroupState:
        found = snapshot.get(group)
        if found is None:
            return GroupState(remaining=0, limit=1, window=60.0)
        return GroupState(found.remaining, found.limit, found.window, found.available_in)

    return prefer_listing(dirty, users, state("light"), state("medium"))
