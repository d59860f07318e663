"""Accounts take turns: a bulk change in one account leaves another account's lone change as
prompt as ever. Real Redis, SQLite, arq worker, receiver and two sandboxes."""

from __future__ import annotations

import time
from pathlib import Path

from tests.fixtures.pipeline import MakePipeline, eventually
from tests.workers.accounts.test_isolation import _first_name, _scheduled, reaches, two_accounts

# Enough of B's users that, first come first served, their jobs hold A's change for seconds.
BULK = 3000
# RingCentral batches an Extension List notification at 500 users (as the sandbox does).
NOTIFICATIONS = BULK // 500
# Far above the idle latency (~0.1 s) and what a loaded 2-core machine adds (~2 s), far below
# the 13-15 s A waited behind B when jobs were first come, first served.
PROMPT = 5.0


async def test_a_bulk_change_in_one_account_does_not_delay_another_s_lone_change(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path, b_users=BULK) as two:
        p, b = two.p, two.b
        a = p.sandbox
        b.world.bulk_update(BULK, department="Bulk")
        # B's notifications are ingested: every one of its users has a reconcile queued.
        await reaches(lambda: _scheduled(p, b.account_id), NOTIFICATIONS, what="B's ingests")
        a_user = a.world.ordered()[1].id
        started = time.monotonic()
        a.world.update_user(a_user, first_name="Prompt")
        await reaches(lambda: _first_name(p, a.account_id, a_user), "Prompt", what="A's change")
        waited = time.monotonic() - started
        assert waited < PROMPT, f"A's lone change took {waited:.2f} s behind B's bulk change"

        # B's changes all land too.
        async def departments() -> bool:
            users = await p.store.list_users(account_id=b.account_id)
            return {u.row.department for u in users} == {"Bulk"}

        await eventually(departments, within=60, what="B's bulk change")
