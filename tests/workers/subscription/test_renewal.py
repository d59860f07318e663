"""The renewal job and its cron as the worker runs them."""

from __future__ import annotations

import dataclasses
import logging
import pickle
import time
from collections.abc import Callable

import pytest

from events.queue import RENEW
from events.refusals import Refusals, refusals_key
from events.settings import Settings
from tests.fixtures.renewal import MakeKeeping
from tests.fixtures.sandbox import WebhookSink
from workers.accounts.store import AccountStore
from workers.lock import LockTimeout, RedisLock
from workers.main import build_worker
from workers.metrics import WorkerMetrics
from workers.subscription import store
from workers.subscription.renewal import NotConfigured, ensure_subscription, renew_subscription


async def test_the_worker_runs_renewal_as_a_job_and_a_unique_cron(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(renew_every=900)
    worker = build_worker(settings, handle_signals=False)
    try:
        assert worker.functions[RENEW].keep_result_s == 0
        crons = {job.name: job for job in worker.cron_jobs}
        renewal = crons[settings.key("renewal")]
        assert renewal.minute == {0, 15, 30, 45}
        assert renewal.second == {0}
        assert renewal.unique
    finally:
        await worker.close()


async def test_the_job_creates_the_subscription_when_none_exists(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d = await k.deps()
    metrics = WorkerMetrics()
    ctx = {"deps": d, "job_id": "t", "job_try": 1, "metrics": metrics}

    assert await renew_subscription(ctx, "cron") == "create"
    assert len(k.ours()) == 1
    left = metrics.registry.get_sample_value(
        "ringsync_subscription_remaining_seconds", {"account": "default"}
    )
    assert left is not None
    assert abs(left - k.settings.subscription_ttl) < 60

    k.sandbox.world.blacklist(k.ours()[0].id)
    assert await renew_subscription(ctx, "reminder") == "recreate"
    assert (
        metrics.registry.get_sample_value(
            "ringsync_gaps_total", {"account": "default", "reason": "blacklisted"}
        )
        == 1
    )


async def test_without_a_webhook_url_the_job_says_so_once_and_does_nothing(
    make_keeping: MakeKeeping, caplog: pytest.LogCaptureFixture
) -> None:
    k = await make_keeping(webhook_url="")
    d = await k.deps()
    ctx = {"deps": d, "job_id": "t", "job_try": 1}

    with caplog.at_level(logging.INFO, logger="workers.subscription.renewal"):
        assert await renew_subscription(ctx) == "not configured"
        assert await renew_subscription(ctx) == "not configured"

    assert len([r for r in caplog.records if "RINGSYNC_WEBHOOK_URL" in r.getMessage()]) == 1
    assert k.sandbox.world.subscriptions == {}
    with pytest.raises(NotConfigured):
        await ensure_subscription(d)


async def test_a_check_waits_for_the_lock_and_gives_up_in_time(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()
    d = await k.deps()
    async with RedisLock(k.redis, k.settings.key("lock", "subscription")):
        with pytest.raises(LockTimeout):
            await ensure_subscription(d, wait=0.2)
    assert k.sandbox.world.subscriptions == {}
    assert not await k.redis.exists(k.settings.key("lock", "subscription"))


async def test_a_refused_handshake_is_dead_lettered_by_the_job(
    make_keeping: MakeKeeping, webhook_sink: WebhookSink
) -> None:
    webhook_sink.handshake = "no-echo"
    k = await make_keeping(webhook_url=webhook_sink.url)
    d = await k.deps()

    result = await renew_subscription({"deps": d, "job_id": "t", "job_try": 1}, "cron")

    assert result == "dead-lettered"
    [letter] = await k.store.list_dead_letters()
    assert "SUB-525" in letter.error


async def test_notifications_a_receiver_refused_become_a_gap_and_a_resync(
    make_keeping: MakeKeeping,
) -> None:
    """A receiver answered 503 while Redis was away and reported it once Redis was back: the
    next check records the gap and queues the resync, as for a blacklisted subscription."""
    k = await make_keeping()
    d = await k.deps()
    metrics = WorkerMetrics()
    ctx = {"deps": d, "job_id": "t", "job_try": 1, "metrics": metrics}
    assert await renew_subscription(ctx, "cron") == "create"
    assert not await k.resync_queued()

    refusals = Refusals(k.settings, k.redis, d.queue)
    refusals.note()
    refusals.note()
    await refusals.report()
    await refusals.close()
    assert await renew_subscription(ctx, "refused") == "nothing"

    [gap] = await store.list_gaps(k.store, await d.account_id())
    assert gap.reason == "refused"
    assert gap.started_at is not None
    assert gap.ended_at is not None
    assert gap.started_at <= gap.ended_at
    assert await k.resync_queued()
    assert not await k.redis.exists(refusals_key(k.settings))
    assert (
        metrics.registry.get_sample_value(
            "ringsync_gaps_total", {"account": "default", "reason": "refused"}
        )
        == 1
    )
    assert await renew_subscription(ctx, "cron") == "nothing"  # reported once, repaired once
    assert len(await store.list_gaps(k.store, await d.account_id())) == 1


async def test_refusals_are_repaired_in_every_account_they_concern(
    make_keeping: MakeKeeping, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report naming account 2001, then one whose account the receiver could not tell: the
    default account repairs only the second; 2001 gets both, 2002 the second, each with a check
    of its own that records its own gaps and queues its own resync."""
    k = await make_keeping()
    d = await k.deps()
    ctx = {"deps": d, "job_id": "t", "job_try": 1}
    assert await renew_subscription(ctx, "cron") == "create"
    book = AccountStore(k.store)
    for other in ("2001", "2002"):
        await book.add(other, other, k.sandbox.url, "sealed")
    refusals = Refusals(k.settings, k.redis, d.queue)
    with monkeypatch.context() as frozen:  # both reports in one millisecond, one refusal each
        instant = time.time()
        frozen.setattr(time, "time", lambda: instant)
        refusals.note("2001")
        await refusals.report()
        refusals.note(None)
        await refusals.report()
    await refusals.close()
    await renew_subscription(ctx, "refused")
    assert len(await store.list_gaps(k.store, await d.account_id())) == 1

    for other, reports in (("2001", 2), ("2002", 1)):
        scoped = k.settings.for_account(other, server_url=k.sandbox.url, jwt=k.sandbox.jwt)
        checks = await k.redis.keys("arq:job:" + scoped.key("renew", "*"))
        assert len(checks) == reports
        for check in checks:
            job = pickle.loads(await k.redis.get(check))  # noqa: S301 (our own queue)
            assert job["k"] == {"account": other}
        own = dataclasses.replace(await k.deps(scoped), _account_id=other)
        await renew_subscription({"deps": own, "job_id": "t", "job_try": 1}, "refused")
        assert len(await store.list_gaps(k.store, other)) == reports
        assert not await k.redis.exists(refusals_key(scoped))
        assert await k.redis.zscore(k.settings.queue_name, scoped.key("resync", "gap"))
