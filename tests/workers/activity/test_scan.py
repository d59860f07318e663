"""The activity scan on real parts (the sandbox over HTTP, Redis, SQLite and PostgreSQL, an arq
worker): who a call counts for, forward-only writes, the watermark, a scan stopped midway that
resumes without re-reading or skipping a page, the budget kept, and never a per-user log read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.queue import ACTIVITY_SCAN
from sandbox.limits import build_limiter
from sandbox.world import World
from scripts.connections import open_deps
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from tests.fixtures.resync import resync
from workers.activity.scan import OVERLAP, scan
from workers.activity.store import ActivityStore, Cursor
from workers.ringcentral.errors import ServerUnavailable

CALL_LOG = "/restapi/v1.0/account/~/call-log"


def add(world: World, direction: str, result: str, extension: str, at: datetime) -> None:
    """A call between `extension` and an outside number."""
    outbound = direction == "Outbound"
    world.phone_calls.add(
        direction=direction,
        result=result,
        start=at.timestamp(),
        from_extension=extension if outbound else None,
        from_number=None if outbound else "+16505550100",
        to_extension=None if outbound else extension,
        to_number="+16505550100" if outbound else None,
    )


def log_reads(p: Pipeline) -> list[dict[str, Any]]:
    """Every call-log request the sandbox answered (any path, any status)."""
    return [c for c in p.sandbox.world.calls if c["path"].endswith("/call-log")]


async def activity(p: Pipeline) -> dict[str, datetime | None]:
    return {u.extension_id: u.last_activity_at for u in await p.store.list_users()}


def ms(moment: datetime) -> datetime:
    """RingCentral's startTime keeps milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def test_outbound_answered_inbound_and_missed_inbound_calls(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=5, workers=1)
    await resync(p)
    caller, callee, missed, both, idle = [user.id for user in p.sandbox.world.ordered()]
    now = datetime.now(UTC)
    t = {hours: ms(now - timedelta(hours=hours)) for hours in (1, 2, 3, 5, 30, 24 * 40)}
    world = p.sandbox.world
    add(world, "Outbound", "No Answer", caller, t[5])  # they acted: counts
    add(world, "Inbound", "Missed", caller, t[1])  # later, but counts for nobody
    add(world, "Inbound", "Accepted", callee, t[3])
    add(world, "Inbound", "Missed", missed, t[2])
    add(world, "Inbound", "Voicemail", missed, t[1])
    add(world, "Inbound", "Call connected", both, t[30])
    add(world, "Outbound", "Call connected", both, t[2])
    add(world, "Outbound", "Call connected", idle, t[24 * 40])  # before the 30-day backfill

    async with open_deps(p.settings) as d:
        await d.queue.enqueue(ACTIVITY_SCAN, "test", job_id="activity-test")

    async def scanned() -> bool:
        book = ActivityStore(p.store)
        return await book.watermark(p.sandbox.account_id) is not None

    await eventually(scanned, what="the activity scan job")
    assert await activity(p) == {
        caller: t[5],
        callee: t[3],
        missed: None,
        both: t[2],
        idle: None,
    }
    # The account's log only: never one user's.
    assert {c["path"] for c in log_reads(p)} == {CALL_LOG}
    # A reconcile that rewrites the user's row leaves their activity as it was.
    world.update_user(caller, department="Finance")
    await resync(p)
    [rewritten] = [u for u in await p.store.list_users() if u.extension_id == caller]
    assert (rewritten.row.department, rewritten.last_activity_at) == ("Finance", t[5])

    # The next scan reads from the watermark minus the overlap; activity never moves back.
    async with open_deps(p.settings) as d:
        mark = await ActivityStore(d.store).watermark(await d.account_id())
        assert mark is not None
        book, account_id = ActivityStore(d.store), await d.account_id()
        older = Cursor(date_from=mark, date_to=mark)
        assert await book.record_page(account_id, {callee: t[30]}, older) == 0
        await book.finish(account_id, older)
        add(world, "Outbound", "Call connected", missed, ms(datetime.now(UTC)))
        summary = await scan(d)
    assert summary.date_from == mark - OVERLAP
    latest = await activity(p)
    assert latest[callee] == t[3]
    moved = latest[missed]
    assert moved is not None
    assert moved > t[1]


@pytest.mark.parametrize("stop", ["crash", "fault"])
async def test_a_scan_stopped_midway_resumes_without_rereading_or_skipping(
    make_pipeline: MakePipeline, stop: str
) -> None:
    p = await make_pipeline(users=40, workers=0)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    now = datetime.now(UTC)
    expected: dict[str, datetime | None] = {}
    for index, extension in enumerate(ids):
        at = ms(now - timedelta(minutes=10 + index))
        add(world, "Outbound", "Call connected", extension, at)
        add(world, "Inbound", "Missed", extension, at + timedelta(seconds=30))
        expected[extension] = at
    # 80 records, 10 a page: 8 pages, newest first. Stop after the 3rd page is stored.

    def stop_after_third(cursor: Cursor) -> None:
        if cursor.next_page != 4:
            return
        if stop == "crash":
            raise RuntimeError("the process died here")
        world.set_faults(refuse={"GET /restapi/v1.0/account/*/call-log": 503})

    async with open_deps(p.settings) as d:
        with pytest.raises(RuntimeError if stop == "crash" else ServerUnavailable):
            await scan(d, per_page=10, on_page=stop_after_third)
        partial = await activity(p)
        assert sum(1 for at in partial.values() if at is not None) == 15  # 3 pages, 2 calls each
        world.set_faults(refuse={})
        answered = sum(1 for c in log_reads(p) if c["status"] == 200)
        summary = await scan(d, per_page=10)
    assert summary.resumed_at_page == 4
    assert summary.pages == 5  # pages 4 to 8, nothing read twice
    assert sum(1 for c in log_reads(p) if c["status"] == 200) - answered == 5
    assert await activity(p) == expected


async def test_a_scan_keeps_to_the_heavy_budget(make_pipeline: MakePipeline) -> None:
    p = await make_pipeline(users=3, workers=0)
    await resync(p)
    world = p.sandbox.world
    # Heavy: 3 requests in any 2 s, as the sandbox's headers say; 7 pages need three windows.
    world.limiter = build_limiter({"heavy": 3}, window=2.0)
    now = datetime.now(UTC)
    for minutes in range(7):
        add(
            world,
            "Outbound",
            "Call connected",
            world.ordered()[0].id,
            now - timedelta(minutes=minutes + 1),
        )
    async with open_deps(p.settings) as d:
        summary = await scan(d, per_page=1)
    assert summary.pages == 7
    assert world.counters()["throttled"] == {}
    assert world.counters()["requests"]["heavy"] == 7


async def test_outbound_texts_count_for_users_without_calls_when_asked(
    make_pipeline: MakePipeline,
) -> None:
    p = await make_pipeline(users=4, workers=0, activity_sms=True)
    await resync(p)
    world = p.sandbox.world
    caller, texter, receiver, quiet = [user.id for user in world.ordered()]
    now = datetime.now(UTC)
    called, texted = ms(now - timedelta(days=2)), ms(now - timedelta(days=3))
    add(world, "Outbound", "Call connected", caller, called)
    world.texts.add(caller, "Outbound", (now - timedelta(hours=1)).timestamp(), "+16505550100")
    world.texts.add(texter, "Outbound", texted.timestamp(), "+16505550100")
    world.texts.add(texter, "Outbound", (now - timedelta(days=40)).timestamp(), "+16505550100")
    world.texts.add(receiver, "Inbound", (now - timedelta(hours=2)).timestamp(), "+16505550100")
    async with open_deps(p.settings) as d:
        summary = await scan(d)
    assert summary.texts_read == 3
    assert await activity(p) == {caller: called, texter: texted, receiver: None, quiet: None}
    stores = [c for c in world.calls if c["path"].endswith("/message-store")]
    assert sorted(c["path"].split("/")[-2] for c in stores) == sorted([texter, receiver, quiet])
    assert {c["group"] for c in stores} == {"light"}
