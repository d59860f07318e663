"""`ringsync activity` as people run it, against the sandbox: a summary, and a permanent refusal
part-way that exits 1 in one line keeping every page read; the next run goes on from there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from tests.fixtures.commands import Ran, ringsync
from tests.fixtures.pipeline import MakePipeline, Pipeline
from tests.fixtures.resync import resync
from tests.workers.activity.test_scan import add, log_reads


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
