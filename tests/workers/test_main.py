"""arq silently drops settings it does not know: assert what the built worker really runs."""

from __future__ import annotations

from collections.abc import Callable

from events.queue import (
    ACTION_RUN,
    ACTIONS_DELETE,
    ACTIONS_SWEEP,
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
