"""arq silently drops settings it does not know: assert what the built worker really runs."""

from __future__ import annotations

import inspect
from collections.abc import Callable

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
)
from events.settings import Settings
from workers.main import build_worker


async def test_the_worker_runs_every_job_with_short_timeouts(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(job_timeout=30)
    worker = build_worker(settings, handle_signals=False)
    try:
        assert {
            INGEST,
            RECONCILE,
            RECONCILE_BATCH,
            RESYNC,
            RENEW,
            DELIVER,
            ROLES_READ,
            ROLES_SWEEP,
            ACTION_RUN,
            ACTIONS_DELETE,
            ACTIONS_SWEEP,
        } <= set(worker.functions)
        assert worker.functions[ACTION_RUN].timeout_s == 30
        assert worker.functions[ROLES_READ].timeout_s == 30
        assert worker.functions[RECONCILE].timeout_s == 30
        assert worker.functions[RECONCILE].keep_result_s == 0
        assert worker.functions[INGEST].timeout_s == 30
        assert worker.queue_name.endswith(":queue")
        # Cron names are namespaced: arq makes a unique cron's job id from its name alone.
        crons = {job.name.split(":")[-1]: job for job in worker.cron_jobs}
        assert {
            "actions_sweep",
            "daily_resync",
            "delivery_sweep",
            "renewal",
            "retention",
            "roles_sweep",
        } <= set(crons)
        assert crons["actions_sweep"].second == {15}  # every minute
        assert all(job.name.startswith(f"{settings.redis_namespace}:") for job in worker.cron_jobs)
        assert crons["daily_resync"].hour == {3}
        assert (crons["retention"].hour, crons["retention"].minute) == ({2}, {30})
        assert (crons["roles_sweep"].minute, crons["roles_sweep"].second) == ({0}, {0})  # hourly
        assert all(job.unique for job in worker.cron_jobs)
    finally:
        await worker.close()


async def test_the_daily_resync_can_be_turned_off(make_settings: Callable[..., Settings]) -> None:
    worker = build_worker(make_settings(resync_at="off"), handle_signals=False)
    try:
        assert not any(job.name.endswith("daily_resync") for job in worker.cron_jobs)
    finally:
        await worker.close()


async def test_retention_can_be_turned_off(make_settings: Callable[..., Settings]) -> None:
    worker = build_worker(make_settings(retention_days=0), handle_signals=False)
    try:
        assert not any(job.name.endswith("retention") for job in worker.cron_jobs)
    finally:
        await worker.close()


async def test_roles_sweeps_can_be_left_to_resyncs(make_settings: Callable[..., Settings]) -> None:
    worker = build_worker(make_settings(roles_every=0), handle_signals=False)
    try:
        assert not any(job.name.endswith("roles_sweep") for job in worker.cron_jobs)
        assert ROLES_SWEEP in worker.functions  # still run after each resync
    finally:
        await worker.close()


async def test_the_daily_activity_scan_runs_at_its_hour_or_not_at_all(
    make_settings: Callable[..., Settings],
) -> None:
    worker = build_worker(make_settings(activity_at="05:30"), handle_signals=False)
    try:
        assert ACTIVITY_SCAN in worker.functions
        crons = {job.name.split(":")[-1]: job for job in worker.cron_jobs}
        assert (crons["daily_activity"].hour, crons["daily_activity"].minute) == ({5}, {30})
    finally:
        await worker.close()
    worker = build_worker(make_settings(activity_at="off"), handle_signals=False)
    try:
        assert not any(job.name.endswith("daily_activity") for job in worker.cron_jobs)
        assert ACTIVITY_SCAN in worker.functions  # `ringsync activity` and retries still run it
    finally:
        await worker.close()


async def test_every_job_queued_for_each_account_takes_the_cron_s_reason(
    make_settings: Callable[..., Settings],
) -> None:
    """`for_every_account` queues `function(reason, account=ID)` for each stored account: a job
    that took no reason would fail there every time, and that account's work would never run."""
    worker = build_worker(make_settings(), handle_signals=False)
    try:
        for name in (RENEW, RESYNC, ROLES_SWEEP, ACTIONS_SWEEP, ACTIVITY_SCAN):
            job = inspect.signature(worker.functions[name].coroutine)
            job.bind({}, "cron")  # raises TypeError when it takes no reason
    finally:
        await worker.close()
