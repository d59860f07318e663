"""Daily resyncs are staggered across accounts over the hour after RINGSYNC_RESYNC_AT, by
account id: a thousand accounts do not list at 03:00 all at once."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from events.queue import RESYNC
from tests.fixtures.renewal import MakeKeeping
from workers.accounts.registry import Registry, for_every_account, stagger
from workers.accounts.store import AccountStore


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

    cron = for_every_account(default_resync, RESYNC, "schedule", spread=True)
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
