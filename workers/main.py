"""The arq worker: which jobs it runs, with which limits, and its crons.

arq keeps only the settings it knows and silently drops the rest, so the worker is built here
from explicit keyword arguments (tests assert the built worker's functions and crons).
"""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Function, Worker, func

from events.queue import (
    ACTION_RUN,
    ACTIONS_DELETE,
    ACTIONS_SWEEP,
    ACTIVITY_SCAN,
    DELIVER,
    INGEST,
    RECONCILE,
    RECONCILE_BATCH,
    RENEW,
    RESYNC,
    ROLES_READ,
    ROLES_SWEEP,
    wake_channel,
)
from events.settings import Settings
from workers.accounts.registry import Registry, for_every_account, scoped
from workers.actions.deletes import delete_batch
from workers.actions.run import run_action, sweep_actions
from workers.activity.scan import scan_activity
from workers.claim import ClaimingWorker
from workers.context import shutdown, startup
from workers.delivery.courier import Courier, close_courier
from workers.delivery.deliver import deliver
from workers.delivery.metrics import DeliveryMetrics
from workers.delivery.sweep import sweep_deliveries
from workers.failures import ARQ_MAX_TRIES, bounded
from workers.ingest import ingest
from workers.lease import lease_seconds, renewed
from workers.metrics import instrument, on_job_start
from workers.reconcile import reconcile, reconcile_batch
from workers.resync.run import resync
from workers.retention import PRUNE_AT, prune_old_records
from workers.roles import read_roles, sweep_roles
from workers.subscription.renewal import LOCK_WAIT, cron_times, renew_subscription

# Listings (batch, resync) page through up to 100,000 users at the Medium rate limit.
LISTING_TIMEOUT = 1800
# A subscription check may wait for another one's lock, then create (the handshake takes ≤ 3 s).
RENEWAL_TIMEOUT = int(LOCK_WAIT) + 60
# Other accounts' share of a periodic job is spread (by account id) over the hour after a daily
# one, and over this share of the period of a recurring one (as `cron_times` rounds it): each
# account's job is due at the latest half a period before the next is queued, the time it has
# to wait for a worker and run (one still queued or running then takes that period's turn:
# its id is the same).
HOUR = 3600.0
SPREAD_SHARE = 0.5
ACTIONS_EVERY = 60.0


def functions(settings: Settings) -> list[Function]:
    # arq re-runs the job of a worker that died only after `timeout + 10 s`: short timeouts
    # (RINGSYNC_JOB_TIMEOUT, 30 s) mean a SIGKILLed worker's reconciles resume within a minute.
    timeout = settings.job_timeout
    # Short jobs end themselves just before arq's timeout, as a retry (see `bounded`).
    own = timeout * 0.9
    # Jobs allowed longer than a lease renew it while they run (see workers.lease).
    lease = lease_seconds(settings)

    def job(coroutine: Any, name: str, seconds: float, *, keep_result: bool = False) -> Function:
        # keep_result=0 for all but ingest: their job ids are reused (coalescing generations,
        # the delivery sweep and hand-overs); ingest keeps its result an hour, so a redelivered
        # notification id stays blocked meanwhile.
        extra: dict[str, Any] = {} if keep_result else {"keep_result": 0}
        return func(coroutine, name=name, timeout=seconds, max_tries=ARQ_MAX_TRIES, **extra)

    return [
        job(
            bounded(scoped(ingest, keeps_notifications=True), own),
            INGEST,
            timeout,
            keep_result=True,
        ),
        job(bounded(scoped(reconcile, deferred_as=(RECONCILE, "light")), own), RECONCILE, timeout),
        job(
            renewed(scoped(reconcile_batch, deferred_as=(RECONCILE_BATCH, "medium")), lease),
            RECONCILE_BATCH,
            LISTING_TIMEOUT,
        ),
        job(renewed(scoped(resync), lease), RESYNC, LISTING_TIMEOUT),
        job(bounded(scoped(deliver, calls_ringcentral=False), own), DELIVER, timeout),
        job(renewed(scoped(renew_subscription), lease), RENEW, RENEWAL_TIMEOUT),
        job(bounded(scoped(read_roles), own), ROLES_READ, timeout),
        job(renewed(scoped(sweep_roles), lease), ROLES_SWEEP, LISTING_TIMEOUT),
        job(
            bounded(scoped(run_action, deferred_as=(ACTION_RUN, "light")), own),
            ACTION_RUN,
            timeout,
        ),
        # Up to 50 extensions a Heavy call: a long queue of deletes waits for budget in between.
        job(renewed(scoped(delete_batch), lease), ACTIONS_DELETE, LISTING_TIMEOUT),
        job(renewed(scoped(sweep_actions), lease), ACTIONS_SWEEP, timeout),
        job(renewed(scoped(scan_activity), lease), ACTIVITY_SCAN, LISTING_TIMEOUT),
    ]


def cron_jobs(settings: Settings) -> list[CronJob]:
    jobs: list[CronJob] = [
        # Crash safety for deliveries: rows are durable, jobs may be lost (every minute).
        cron(
            sweep_deliveries,
            name=settings.key("delivery_sweep"),
            second={30},
            unique=True,
            run_at_startup=True,
            timeout=settings.job_timeout,
            keep_result=0,
        )
    ]
    # One check per period across all workers (unique); see `cron_times` for the rounding. The
    # name is namespaced: arq's unique cron job ids would otherwise collide between deployments
    # sharing one Redis, and one would skip the other's check.
    every = cron_times(settings.renew_every)
    jobs.append(
        cron(
            for_every_account(
                renewed(renew_subscription, lease_seconds(settings)),
                RENEW,
                "cron",
                spread=every.period * SPREAD_SHARE,
            ),
            name=settings.key("renewal"),
            hour=every.hour,
            minute=every.minute,
            second=every.second,
            unique=True,
            timeout=RENEWAL_TIMEOUT,
            keep_result=0,
        )
    )
    if settings.resync_at is not None:
        jobs.append(
            cron(
                for_every_account(
                    renewed(resync, lease_seconds(settings)), RESYNC, "schedule", spread=HOUR
                ),
                name=settings.key("daily_resync"),
                hour={settings.resync_at.hour},
                minute={settings.resync_at.minute},
                unique=True,
                timeout=LISTING_TIMEOUT,
                keep_result=0,
            )
        )
    if settings.roles_every:
        # Roles change without a notification: swept on a schedule (and after every resync).
        every = cron_times(settings.roles_every)
        jobs.append(
            cron(
                for_every_account(
                    renewed(sweep_roles, lease_seconds(settings)),
                    ROLES_SWEEP,
                    "cron",
                    spread=every.period * SPREAD_SHARE,
                ),
                name=settings.key("roles_sweep"),
                hour=every.hour,
                minute=every.minute,
                second=every.second,
                unique=True,
                timeout=LISTING_TIMEOUT,
                keep_result=0,
            )
        )
    # Approved actions the hourly cap held back, and running ones whose attempt died (every
    # minute, per account).
    jobs.append(
        cron(
            for_every_account(
                sweep_actions, ACTIONS_SWEEP, "cron", spread=ACTIONS_EVERY * SPREAD_SHARE
            ),
            name=settings.key("actions_sweep"),
            second={15},
            unique=True,
            timeout=settings.job_timeout,
            keep_result=0,
        )
    )
    if settings.activity_at is not None:
        # Staggered over the hour by account id, like the resync: Heavy budgets are per account
        # but the database is shared.
        jobs.append(
            cron(
                for_every_account(
                    renewed(scan_activity, lease_seconds(settings)),
                    ACTIVITY_SCAN,
                    "schedule",
                    spread=HOUR,
                ),
                name=settings.key("daily_activity"),
                hour={settings.activity_at.hour},
                minute={settings.activity_at.minute},
                unique=True,
                timeout=LISTING_TIMEOUT,
                keep_result=0,
            )
        )
    if settings.retention_days:
        jobs.append(
            cron(
                renewed(prune_old_records, lease_seconds(settings)),
                name=settings.key("retention"),
                hour={PRUNE_AT.hour},
                minute={PRUNE_AT.minute},
                unique=True,
                timeout=LISTING_TIMEOUT,
                keep_result=0,
            )
        )
    return jobs


async def start(ctx: dict[str, Any]) -> None:
    """arq's on_startup: the shared dependencies, and the delivery metrics beside the worker's."""
    await startup(ctx)
    ctx["accounts"] = accounts = Registry(ctx["deps"], ctx["metrics"])
    await accounts.reactivate_default()
    courier = ctx.get("courier")
    if isinstance(courier, Courier):
        # Served with the worker's own metrics, on RINGSYNC_METRICS_PORT.
        courier.metrics = DeliveryMetrics(ctx["metrics"].registry)


async def stop(ctx: dict[str, Any]) -> None:
    """arq's on_shutdown: close the delivery HTTP client, then the shared dependencies."""
    try:
        await close_courier(ctx)
        accounts = ctx.get("accounts")
        if isinstance(accounts, Registry):
            await accounts.close()
    finally:
        await shutdown(ctx)


def worker_settings(settings: Settings, *, burst: bool = False) -> dict[str, Any]:
    """Keyword arguments for arq's `Worker` (the equivalent of a WorkerSettings class)."""
    return {
        "functions": instrument(functions(settings)),
        "cron_jobs": cron_jobs(settings),
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": start,
        "on_shutdown": stop,
        "on_job_start": on_job_start,
        "ctx": {"settings": settings, "courier": Courier()},
        "max_jobs": settings.worker_concurrency,
        "job_timeout": settings.job_timeout,
        "poll_delay": 0.01,
        "burst": burst,
        "handle_signals": True,
        "health_check_key": settings.key("worker", "health"),
    }


def build_worker(settings: Settings, *, burst: bool = False, **overrides: Any) -> Worker:
    worker = ClaimingWorker(**{**worker_settings(settings, burst=burst), **overrides})
    # arq derives this from the longest timeout (listings: 30 min); see workers.lease.
    worker.in_progress_timeout_s = lease_seconds(settings)
    worker.wake_channel = wake_channel(settings.queue_name)
    return worker
