"""Daily resyncs are staggered across accounts over the hour after RINGSYNC_RESYNC_AT, by
account id: a thousand accounts do not list at 03:00 all at once."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from events.queue import ACTIONS_SWEEP, RENEW, RESYNC, ROLES_SWEEP
from tests.fixtures.renewal import MakeKeeping
from workers.accounts.registry import Registry, for_every_account, stagger
from workers.accounts.store import AccountStore
from workers.main import build_worker


def test_stagger_spreads_accounts_over_the_hour_and_is_stable() -> None:
    ids = [str(400_000_000 + 7919 * i) for i in range(1000)]
    offsets = [stagger(i) for i in ids]
    assert all(0 <= offset < 3600 for offset in offsets)
    assert offsets == [stagger(i) for i in ids]  # every worker computes the same
    minutes = Counter(int(offset // 60) for offset in offsets)
    assert len(minutes) == 60  # every minute of the hour has some
    assert max(minutes.values()) <= 3 * 1000 / 60  # and none a crowd


async def test_the_daily_cron_queues_each_account_s_resync_at_its_own_offset(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d = await k.deps()
    book = AccountStore(k.store)
    ids = ["3001", "3002", "3003", "3004"]
    for account_id in ids:
        await book.add(account_id, account_id, k.sandbox.url, "sealed")
    await book.mark_failing("3004", "refused")  # a failing account is not listed

    async def default_resync(ctx: dict[str, Any], *args: Any) -> str:
        return "default"

    cron = for_every_account(default_resync, RESYNC, "schedule", spread=3600)
    started = time.time()
    assert await cron({"accounts": Registry(d), "deps": d}) == "default"
    for account_id in ids:
        job_id = k.settings.key("account", account_id, RESYNC, "schedule")
        score = await k.redis.zscore(k.settings.queue_name, job_id)
        if account_id == "3004":
            assert score is None
            continue
        assert score is not None
        offset = score / 1000 - started
        assert abs(offset - stagger(account_id)) < 5, (account_id, offset)


async def test_recurring_sweeps_spread_other_accounts_over_their_period(
    make_keeping: MakeKeeping,
) -> None:
    """The minutely actions sweep, the hourly roles sweep and the subscription check queued
    every account's job at one instant: with hundreds of accounts, hundreds of jobs (the roles
    sweep, a listing each) ahead of every change that arrived in the next seconds. Each account
    keeps one a period, at its own offset within the first half of it (the period as the cron
    rounds it: 5400 s runs hourly)."""
    k = await make_keeping(roles_every=5400)
    d = await k.deps()
    book = AccountStore(k.store)
    ids = [str(5001 + n) for n in range(6)]
    for account_id in ids:
        await book.add(account_id, account_id, k.sandbox.url, "sealed")
    worker = build_worker(k.settings, handle_signals=False)
    try:
        crons = {job.name: job for job in worker.cron_jobs}
        for name, function, period in [
            ("actions_sweep", ACTIONS_SWEEP, 60.0),
            ("roles_sweep", ROLES_SWEEP, 3600.0),
            ("renewal", RENEW, float(k.settings.renew_every)),
        ]:
            started = time.time()
            ctx = {"accounts": Registry(d), "deps": d, "redis": k.redis, "job_id": name}
            await crons[k.settings.key(name)].coroutine(ctx)
            offsets = []
            for account_id in ids:
                job_id = k.settings.key("account", account_id, function, "cron")
                score = await k.redis.zscore(k.settings.queue_name, job_id)
                assert score is not None, (name, account_id)
                offset = score / 1000 - started
                assert abs(offset - stagger(account_id, period / 2)) < 5, (name, account_id)
                offsets.append(offset)
            assert max(offsets) < period / 2 + 5
            assert len({round(offset) for offset in offsets}) > 1  # not one instant
    finally:
        await worker.close()
