"""`ringsync activity` and `ringsync licences --propose` as people run them, against the sandbox: a
summary; a permanent refusal part-way exits 1 in one line keeping every page read and the next run
goes on from there; proposals are recorded and nothing is executed; each account is scanned on its
own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from tests.fixtures.commands import Ran, ringsync
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from tests.fixtures.resync import resync
from tests.workers.accounts.test_isolation import two_accounts
from tests.workers.activity.test_scan import add, log_reads
from workers.actions.decide import ActionState, Kind
from workers.actions.store import ActionStore


async def cli(p: Pipeline, *args: str) -> Ran:
    return await ringsync({**p.env(), "RINGSYNC_LOG_LEVEL": "ERROR"}, *args)


async def test_activity_scans_now_and_stops_cleanly_keeping_what_it_read(
    make_pipeline: MakePipeline,
) -> None:
    p = await make_pipeline(users=3, workers=0)
    await resync(p)
    world = p.sandbox.world
    extension = world.ordered()[0].id
    now = datetime.now(UTC)
    for minutes in range(1, 2501):
        add(world, "Outbound", "Call connected", extension, now - timedelta(minutes=minutes))

    # Once the first page (1,000 records) is answered, every further one is refused: a 403,
    # which no retry mends.
    async def refuse_the_rest(path: str) -> None:
        if path.endswith("/call-log"):
            world.set_faults(refuse={"GET /restapi/v1.0/account/*/call-log": 403})

    world.before_reply = refuse_the_rest
    stopped = await cli(p, "activity")
    assert stopped.code == 1
    assert stopped.one_clear_line(), stopped.err
    assert "kept" in stopped.err
    [mirrored] = [u for u in await p.store.list_users() if u.extension_id == extension]
    assert mirrored.last_activity_at is not None

    world.before_reply = None
    world.set_faults(refuse={})
    before = len(log_reads(p))
    ran = await cli(p, "activity", "--json")
    assert ran.code == 0, ran.err
    summary = orjson.loads(ran.out)
    assert (summary["resumed_at_page"], summary["pages"], summary["records"]) == (2, 2, 1500)
    assert len(log_reads(p)) - before == 2


async def test_licences_propose_suspend_records_proposals_and_runs_nothing(
    make_pipeline: MakePipeline,
) -> None:
    p = await make_pipeline(users=0, workers=0)
    world = p.sandbox.world
    long_ago = "2025-01-06T09:00:00.000Z"
    busy, idle, never = (world.create_user(creation_time=long_ago) for _ in range(3))
    world.add_owner()  # the credential's own extension: protected, and new (not a candidate)
    await world.drain()
    await resync(p)
    add(world, "Outbound", "Call connected", busy, datetime.now(UTC) - timedelta(days=1))
    add(world, "Outbound", "Call connected", idle, datetime.now(UTC) - timedelta(days=45))
    assert (await cli(p, "activity")).code == 0

    lacking = await cli(p, "licences", "--propose", "suspend")
    assert lacking.code == 2
    assert "--by" in lacking.err
    ran = await cli(p, "licences", "--propose", "suspend", "--by", "ops@example.com", "--json")
    assert ran.code == 0, ran.err
    lines = [orjson.loads(line) for line in ran.out.splitlines()]
    assert [line["extension_id"] for line in lines] == sorted([idle, never])
    assert all(line["action_id"] and line["refused"] is None for line in lines)
    assert "2 suspensions proposed, 0 refused" in ran.err

    actions = await ActionStore(p.store).list()
    assert sorted(a.extension_id for a in actions) == sorted([idle, never])
    assert {(a.kind, a.state, a.proposed_by) for a in actions} == {
        (Kind.SUSPEND, ActionState.PROPOSED, "ops@example.com")
    }
    # Nothing was asked of RingCentral but reads: no PUT, no DELETE; everyone is still Enabled.
    assert {c["method"] for c in world.calls} <= {"GET", "POST"}
    assert {world.user(i)["status"] for i in (busy, idle, never)} == {"Enabled"}


async def test_each_account_is_scanned_on_its_own(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    # No daily scan of its own may run meanwhile: the counters below are the command's alone.
    async with two_accounts(make_pipeline, tmp_path, activity_at="off") as two:
        p, b = two.p, two.b
        a_id = p.sandbox.account_id
        a_user, b_user = p.sandbox.world.ordered()[0].id, b.world.ordered()[0].id
        at = datetime.now(UTC) - timedelta(hours=1)
        add(p.sandbox.world, "Outbound", "Call connected", a_user, at)
        add(b.world, "Outbound", "Call connected", b_user, at)

        unnamed = await ringsync(two.env, "activity")
        assert unnamed.code == 2
        assert "--account" in unnamed.err
        ran = await ringsync(two.env, "activity", "--account", b.account_id, "--json")
        assert ran.code == 0, ran.err
        assert orjson.loads(ran.out)["account_id"] == b.account_id
        [b_mirrored] = [
            u for u in await p.store.list_users(account_id=b.account_id) if u.extension_id == b_user
        ]
        assert b_mirrored.last_activity_at is not None
        assert all(u.last_activity_at is None for u in await p.store.list_users(account_id=a_id))
        # Account B's Heavy requests went to B's sandbox alone, with B's own budget.
        assert b.world.counters()["requests"]["heavy"] == 1
        assert "heavy" not in p.sandbox.world.counters()["requests"]


async def test_activity_rides_out_a_short_outage(make_pipeline: MakePipeline) -> None:
    p = await make_pipeline(users=2, workers=0)
    await resync(p)
    world = p.sandbox.world
    extension = world.ordered()[0].id
    add(world, "Outbound", "Call connected", extension, datetime.now(UTC) - timedelta(hours=1))
    world.set_faults(refuse={"GET /restapi/v1.0/account/*/call-log": 503})
    command = asyncio.create_task(cli(p, "activity", "--json"))

    async def refused_more_than_one_client_try() -> bool:
        # The client tries 4 times before the command sees a failure: 5 means it tried again.
        return sum(1 for c in log_reads(p) if c["status"] == 503) >= 5

    await eventually(refused_more_than_one_client_try, what="a retry after a failed try")
    world.set_faults(refuse={})
    ran = await command
    assert ran.code == 0, ran.err
    assert orjson.loads(ran.out)["records"] == 1
