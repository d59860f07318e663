"""Full resync on real parts: baseline, repair after dropped notifications, absences confirmed by
single reads, the safeguard, a listing that fails part-way, dry runs, and two resyncs at once."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import pytest

from events.queue import RESYNC
from scripts.cli import Failure
from scripts.connections import open_deps
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from tests.fixtures.resync import events_of, resync
from workers.resync.store import Plan, list_plans, pending_plans


async def cli(p: Pipeline, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.cli", *args,
        env=p.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_first_resync_is_a_silent_baseline(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=25)
    summary = await resync(p)
    assert summary.baseline
    assert summary.complete
    assert summary.listed == 25
    await p.converged()
    assert await p.store.list_outbox(p.sandbox.account_id) == []


async def test_resync_repairs_users_whose_notifications_were_dropped(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=30)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    world.disable(ids[0])
    world.update_user(ids[1], last_name="Renamed")
    world.delete(ids[2])
    hired = world.create_user(first_name="New", last_name="Hire")
    await world.drain()
    world.set_faults(drop=0.0)
    assert len(await p.differences()) == 4  # nothing reached the mirror

    summary = await resync(p)
    await p.converged(within=5)
    assert summary.deprovisioned == 1
    assert summary.held == 0
    assert await events_of(p, "user.suspended") == [ids[0]]
    assert await events_of(p, "user.updated") == [ids[1]]
    assert await events_of(p, "user.deprovisioned") == [ids[2]]
    assert await events_of(p, "user.created") == [hired]

    again = await resync(p)  # nothing left to repair
    assert again.changed == 0
    assert again.events == {}


async def test_the_safeguard_holds_mass_deprovisioning_until_approved(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=20)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    for ext in ids[:4]:
        world.delete(ext)
    world.unassign(ids[4])
    world.update_user(ids[5], first_name="Still")  # an ordinary change, applied regardless
    await world.drain()
    world.set_faults(drop=0.0)

    held = await resync(p)
    assert held.plan_id is not None
    assert held.held == 5
    assert held.ratio == pytest.approx(5 / 20)
    mirror = await p.mirror()
    assert all(mirror[ext].state.value == "active" for ext in ids[:5])
    assert mirror[ids[5]].first_name == "Still"
    assert await events_of(p, "user.deprovisioned") == []
    plans = await list_plans(p.store, p.sandbox.account_id)
    assert [(plan.status, sorted(plan.deprovision_ids)) for plan in plans] == [
        ("pending", sorted(ids[:5]))
    ]

    code, out, err = await cli(p, "status", "--json")
    assert code == 1
    assert json.loads(out)["approvals"]["pending"] == 1

    code, out, err = await cli(p, "resync")
    assert code == 1
    assert "safeguard" in err
    assert "Traceback" not in err
    plans = await list_plans(p.store, p.sandbox.account_id)
    assert [plan.status for plan in plans] == ["superseded", "pending"]
    newer = plans[1].id
    assert f"--approve {newer}" in err

    code, out, err = await cli(p, "resync", "--approve", newer, "--json")
    assert code == 0, err
    approved = json.loads(out)
    assert approved["approved_plan"] == newer
    assert approved["deprovisioned"] == 5
    assert approved["settled"] == 1
    await p.converged(within=5)
    assert sorted(await events_of(p, "user.deprovisioned")) == sorted(ids[:5])
    plans = await list_plans(p.store, p.sandbox.account_id)
    assert [plan.status for plan in plans] == ["superseded", "approved"]


async def schedule_deletion(p: Pipeline, extension_id: str, *, after_page: int) -> None:
    """Through the sandbox's control API: delete the user once list page `after_page` is out."""
    async with httpx.AsyncClient(base_url=p.sandbox.url) as control:
        response = await control.post(
            f"/sandbox/users/{extension_id}/delete-after-page", json={"page": after_page}
        )
        assert response.status_code == 200, response.text


async def test_a_user_shifted_out_of_the_listing_is_read_not_deprovisioned(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=30)
    await resync(p, per_page=10)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)  # downstream hears only what the resync finds
    # Right after page 1: ids[0] (already listed) and ids[25] go. Everyone after ids[0] moves up
    # a place, so ids[10] lands on page 1, already read: no page shows it, yet it is live.
    await schedule_deletion(p, ids[0], after_page=1)
    await schedule_deletion(p, ids[25], after_page=1)
    reads = p.reads()

    summary = await resync(p, per_page=10)
    mirror = await p.mirror()
    assert mirror[ids[10]].state.value == "active"
    assert mirror[ids[25]].state.value == "deprovisioned"  # its read said 404 CMN-102
    assert mirror[ids[0]].state.value == "active"  # listed live; the next resync finds it gone
    assert await events_of(p, "user.deprovisioned") == [ids[25]]
    assert (summary.absent, summary.found_live, summary.deprovisioned) == (2, 1, 1)
    assert p.reads() - reads == 2  # one single read per absent user, no more

    world.set_faults()
    await resync(p, per_page=10)
    assert await events_of(p, "user.deprovisioned") == [ids[25], ids[0]]
    await p.converged(within=5)


async def test_a_dry_run_confirms_absences_too(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=30)
    await resync(p)
    ids = [user.id for user in p.sandbox.world.ordered()]
    p.sandbox.world.set_faults(drop=1.0)
    await schedule_deletion(p, ids[0], after_page=1)
    before = await p.mirror()
    summary = await resync(p, per_page=10, dry_run=True)
    assert summary.planned_deprovisions == 0  # ids[10] was missed by the pages, not deleted
    assert summary.events == {}
    assert (summary.absent, summary.found_live) == (1, 1)
    assert await p.mirror() == before


async def test_a_confirming_read_that_fails_deprovisions_nobody(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=20)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    world.delete(ids[5])
    await world.drain()
    lists = 0

    async def fail_after_the_listing(path: str) -> None:
        nonlocal lists
        if path.endswith("/extension"):
            lists += 1
            if lists == 2:  # the last page: every request after it answers 5xx
                world.set_faults(drop=1.0, error_rate=1.0)

    world.before_reply = fail_after_the_listing
    with pytest.raises(Failure, match="HTTP 500"):
        await resync(p, per_page=10)
    world.before_reply = None
    world.set_faults()
    assert (await p.mirror())[ids[5]].state.value == "active"
    assert await events_of(p, "user.deprovisioned") == []

    code, out, err = await cli(p, "resync", "--json")
    assert code == 0, err
    assert json.loads(out)["deprovisioned"] == 1


async def test_a_listing_that_fails_part_way_deprovisions_nobody(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=30)
    await resync(p, per_page=10)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    world.update_user(ids[0], last_name="FirstPage")
    world.delete(ids[25])  # absent from a complete listing: would be deprovisioned
    await world.drain()
    lists = 0

    async def fail_after_first_page(path: str) -> None:
        nonlocal lists
        if path.endswith("/extension"):
            lists += 1
            if lists == 1:
                world.set_faults(error_rate=1.0)  # every later request answers 5xx

    world.before_reply = fail_after_first_page
    with pytest.raises(Failure, match="RingCentral"):
        await resync(p, per_page=10)
    world.before_reply = None
    world.set_faults()
    mirror = await p.mirror()
    assert mirror[ids[0]].last_name == "FirstPage"  # the page read was applied
    assert mirror[ids[25]].state.value == "active"  # ...and nobody deprovisioned
    assert await events_of(p, "user.deprovisioned") == []

    code, out, err = await cli(p, "resync", "--json")
    assert code == 0, err
    assert json.loads(out)["deprovisioned"] == 1


async def test_a_dry_run_reports_the_diff_and_writes_nothing(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=10)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    world.freeze(ids[3])
    await world.drain()
    before = await p.mirror()
    code, out, err = await cli(p, "resync", "--dry-run", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"]
    assert report["events"] == {"user.suspended": 1}
    assert [c["extension_id"] for c in report["changes"]] == [ids[3]]
    assert await p.mirror() == before
    code, out, err = await cli(p, "resync", "--dry-run")
    assert code == 0
    assert "would change" in out
    assert ids[3] in out


async def test_a_second_resync_waits_for_the_first_then_runs(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=15)
    first, second = await asyncio.gather(resync(p, per_page=5), resync(p, per_page=5))
    assert first.complete
    assert second.complete
    assert {first.baseline, second.baseline} == {True, False}


async def test_the_worker_job_holds_a_mass_deprovisioning_too(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=10)
    await resync(p)
    world = p.sandbox.world
    gone = [user.id for user in world.ordered()[:3]]
    world.set_faults(drop=1.0)
    for ext in gone:
        world.delete(ext)
    await world.drain()
    world.set_faults(drop=0.0)
    async with open_deps(p.settings) as d:
        assert await d.queue.enqueue(RESYNC, "test")

    async def planned() -> list[Plan]:
        return await pending_plans(p.store, p.sandbox.account_id)

    plans = await eventually(planned, what="the held plan")
    assert sorted(plans[0].deprovision_ids) == sorted(gone)
    mirror = await p.mirror()
    assert all(mirror[ext].state.value == "active" for ext in gone)
