"""Keeping our webhook subscription alive: the renewal job, its cron, and `ensure_subscription`.

The decision is `workers.subscription.plan.decide` (pure); this module reads what it needs,
carries the plan out and records the result, all under one deployment-wide Redis lock, so every
worker's cron, the reminder event and `ringsync subscribe` can race without ever making two.
A recorded gap queues the full resync that repairs it. The same check turns what receivers
refused while Redis was away (`events.refusals`) into gaps, first.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from events.queue import RESYNC
from events.refusals import REFUSED
from events.routing import SUBSCRIPTION_ACCOUNTS
from workers.context import Deps, deps
from workers.failures import guarded
from workers.lock import RedisLock
from workers.metrics import DEFAULT_ACCOUNT, WorkerMetrics
from workers.ringcentral.errors import ApiError
from workers.ringcentral.resources import Subscription
from workers.subscription import store
from workers.subscription.plan import (
    Action,
    Facts,
    Plan,
    Wanted,
    after_failure,
    decide,
    remaining,
)
from workers.subscription.refused import repair_refusals

log = logging.getLogger(__name__)

# How long a check waits for another process's check before giving up (and retrying later).
LOCK_WAIT = 30.0


class NotConfigured(Exception):
    """RINGSYNC_WEBHOOK_URL or RINGSYNC_VERIFICATION_TOKEN is missing."""


@dataclass(frozen=True)
class Outcome:
    """What one check did, and the subscription of ours it left behind."""

    action: Action
    reason: str
    subscription: Subscription | None
    expires_at: datetime | None  # in this machine's clock
    deleted: tuple[str, ...] = ()
    gap: str | None = None
    resync_queued: bool = False
    refused: int = 0  # receivers' reports of refused notifications, each recorded as a gap


async def ensure_subscription(d: Deps, *, wait: float = LOCK_WAIT) -> Outcome:
    """Check our subscription and fix it, holding the deployment-wide lock throughout.

    Every worker's cron, the reminder event and `ringsync subscribe` come through here; the lock
    makes the read-decide-act sequence one step, so racing callers never create two.
    """
    settings = d.settings
    if not settings.webhook_url:
        raise NotConfigured("RINGSYNC_WEBHOOK_URL is not set")
    if not settings.verification_token.get_secret_value():
        raise NotConfigured("RINGSYNC_VERIFICATION_TOKEN is not set")
    wanted = Wanted.from_settings(settings)
    async with RedisLock(d.redis, settings.key("lock", "subscription"), wait=wait):
        account_id = await d.account_id()
        refused = await repair_refusals(d, account_id, _repair)
        facts = await _read_facts(d, account_id)
        plan = decide(facts, wanted)
        outcome = await _carry_out(d, account_id, plan, facts, wanted)
        if settings.account and outcome.subscription is not None:
            # The receiver routes `~` notifications of this subscription to this account.
            await d.redis.hset(  # type: ignore[misc]
                settings.root_key(*SUBSCRIPTION_ACCOUNTS),
                outcome.subscription.id,
                settings.account,
            )
        return dataclasses.replace(outcome, refused=refused)


async def _read_facts(d: Deps, account_id: str) -> Facts:
    stored = await store.load(d.store, account_id)
    listed = await d.client.list_subscriptions()
    last_event = await d.store.get_state("last_event_at", d.settings.account)
    gap = await store.last_gap(d.store, account_id)
    return Facts(
        stored=stored,
        listed=listed,
        now=_now(),
        last_event_at=None if last_event is None else datetime.fromisoformat(last_event),
        last_gap_at=None if gap is None else gap.ended_at,
        has_users=await d.store.account_has_users(account_id),
    )


async def _carry_out(d: Deps, account_id: str, plan: Plan, facts: Facts, wanted: Wanted) -> Outcome:
    client = d.client
    result = plan.target
    if plan.action in (Action.RENEW, Action.UPDATE) and plan.target is not None:
        try:
            if plan.action is Action.RENEW:
                result = await client.renew_subscription(plan.target.id)
            else:
                result = await client.update_subscription(
                    plan.target.id,
                    event_filters=wanted.event_filters,
                    expires_in=wanted.expires_in,
                )
        except ApiError as exc:
            # Gone, or refused for good: a subscription we cannot extend is replaced in time.
            log.warning(
                "subscription %s failed: %s",
                plan.action.value,
                exc,
                extra={"subscription_id": plan.target.id},
            )
            plan = after_failure(plan, facts, f"HTTP {exc.status} {exc.error_code or ''}".strip())
    deleted = await _delete(d, plan.delete_before)
    if plan.action in (Action.CREATE, Action.RECREATE):
        result = await client.create_subscription(
            event_filters=wanted.event_filters,
            address=wanted.address,
            verification_token=d.settings.verification_token,
            expires_in=wanted.expires_in,
        )
    expires_at = facts.stored.expiration_time if facts.stored is not None else None
    if result is not None and plan.action is not Action.NOTHING:
        now = _now()
        left = remaining(result, now)
        expires_at = None if left is None else now + timedelta(seconds=left)
        await store.save(
            d.store,
            account_id,
            result,
            token_hash=wanted.token_hash,
            expires_at=expires_at,
            expires_in=wanted.expires_in,
            now=now,
            created=facts.stored is None or facts.stored.id != result.id,
        )
    deleted += await _delete(d, plan.delete_after)
    queued = False
    if plan.gap is not None:
        gap = store.Gap(plan.gap_started_at, _now(), plan.gap)
        queued = await _repair(d, account_id, gap)
    log.info(
        "subscription checked",
        extra={
            "action": plan.action.value,
            "reason": plan.reason,
            "subscription_id": None if result is None else result.id,
            "deleted": list(deleted),
            "gap": plan.gap,
        },
    )
    return Outcome(plan.action, plan.reason, result, expires_at, deleted, plan.gap, queued)


async def _delete(d: Deps, ids: Sequence[str]) -> tuple[str, ...]:
    for subscription_id in ids:
        await d.client.delete_subscription(subscription_id)
        await store.mark_deleted(d.store, subscription_id, _now())
    return tuple(ids)


async def _repair(d: Deps, account_id: str, gap: store.Gap) -> bool:
    """Record the gap and queue the full resync that repairs it (one at a time)."""
    await store.record_gap(d.store, account_id, gap)
    queued = await d.queue.enqueue(RESYNC, "gap", job_id=d.settings.key("resync", "gap"))
    log.warning(
        "notifications may have been lost; full resync %s",
        "queued" if queued else "already queued",
        extra={"reason": gap.reason, "gap_started_at": gap.started_at},
    )
    return queued


async def renew_subscription(ctx: dict[str, Any], reason: str = "cron") -> str:
    """The renewal job (cron, and the reminder event): keep our subscription alive."""
    d = deps(ctx)
    settings = d.settings
    if not settings.webhook_url or not settings.verification_token.get_secret_value():
        # Said once a day per deployment, not every 15 minutes by every worker.
        if await d.redis.set(settings.key("renewal", "unconfigured"), 1, nx=True, ex=86_400):
            log.info(
                "no subscription is kept: RINGSYNC_WEBHOOK_URL or RINGSYNC_VERIFICATION_TOKEN "
                "is not set"
            )
        return "not configured"

    async def work() -> str:
        outcome = await ensure_subscription(d)
        metrics = ctx.get("metrics")
        if isinstance(metrics, WorkerMetrics):
            account = settings.account or DEFAULT_ACCOUNT
            metrics.subscription_expires(outcome.expires_at, account)
            if outcome.gap is not None:
                metrics.gaps.labels(account, outcome.gap).inc()
            if outcome.refused:
                metrics.gaps.labels(account, REFUSED).inc(outcome.refused)
        return outcome.action.value

    return await guarded(ctx, "renew_subscription", {"reason": reason}, work)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CronTimes:
    """arq cron fields; None means "every"."""

    hour: set[int] | None
    minute: set[int] | None
    second: set[int]
    period: int  # seconds between two runs, as rounded


def cron_times(every: int) -> CronTimes:
    """A cron schedule for "every `every` seconds" (RINGSYNC_RENEW_EVERY).

    arq schedules by clock fields, so the period is rounded to the nearest divisor of a minute,
    an hour or a day (ties to the shorter period): 900 → minutes {0, 15, 30, 45}; 420 (7 min) →
    every 6 minutes; 5400 (1.5 h) → every hour; a day or more → daily at 00:00.
    """
    if every < 60:
        step = _nearest_step(every, 1, 60)
        return CronTimes(hour=None, minute=None, second=set(range(0, 60, step)), period=step)
    if every < 3600:
        step = _nearest_step(every, 60, 60)
        return CronTimes(hour=None, minute=set(range(0, 60, step)), second={0}, period=step * 60)
    step = _nearest_step(every, 3600, 24)
    return CronTimes(hour=set(range(0, 24, step)), minute={0}, second={0}, period=step * 3600)


def _nearest_step(every: int, unit: int, of: int) -> int:
    """The divisor of `of` whose multiple of `unit` seconds is nearest `every` (ties: shorter)."""
    divisors = [d for d in range(1, of + 1) if of % d == 0]
    return min(divisors, key=lambda d: (abs(d * unit - every), d))
