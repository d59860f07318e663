"""The safeguard: when a resync holds its deprovisionings (a share and a floor), and approving a
held plan by its id — exactly that plan, re-confirmed, never a stale or unknown one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from events.settings import Settings
from tests.fixtures.commands import Ran, ringsync
from tests.fixtures.pipeline import MakePipeline, Pipeline
from tests.fixtures.resync import events_of, resync
from workers.resync.safeguard import PlanRefused, approvable, holds
from workers.resync.store import Plan, list_plans


@pytest.mark.parametrize(
    ("planned", "live", "ratio", "floor", "held"),
    [
        (1, 6, 0.10, 3, False),  # 17% of a small account, but one person: nobody needs to look
        (2, 6, 0.10, 3, False),
        (3, 6, 0.10, 3, True),
        (3, 100, 0.10, 3, False),  # enough people, a small share
        (11, 100, 0.10, 3, True),
        (10, 100, 0.10, 3, False),  # the share must be exceeded, not met
        (1, 6, 0.10, 1, True),  # a floor of 1: the share alone decides
        (0, 0, 0.10, 1, False),
        (1, 0, 0.10, 1, True),
    ],
)
def test_the_safeguard_holds_past_the_share_and_from_the_floor(
    planned: int, live: int, ratio: float, floor: int, held: bool
) -> None:
    settings = Settings(_env_file=None, max_deprovision_ratio=ratio, max_deprovision_min=floor)
    assert holds(planned, live, settings) is held


def test_the_floor_is_at_least_one() -> None:
    assert Settings(_env_file=None).max_deprovision_min == 3
    with pytest.raises(ValidationError, match="RINGSYNC_MAX_DEPROVISION_MIN"):
        Settings.model_validate({"RINGSYNC_MAX_DEPROVISION_MIN": "0"})


def plan(plan_id: str, status: str, account_id: str = "400") -> Plan:
    return Plan(plan_id, account_id, datetime.now(UTC), ["1", "2"], 0.5, status)


@pytest.mark.parametrize(
    ("found", "pending", "refused"),
    [
        (None, [], "there is no resync plan p1"),
        (plan("p1", "pending", account_id="999"), [], "belongs to account 999"),
        (plan("p1", "approved"), [], "already approved"),
        (plan("p1", "superseded"), [plan("p2", "pending")], "--approve p2"),
        (plan("p1", "superseded"), [], "stale: a later resync listed the account again, and held"),
    ],
)
def test_only_a_pending_plan_of_this_account_may_be_approved(
    found: Plan | None, pending: list[Plan], refused: str
) -> None:
    with pytest.raises(PlanRefused, match=refused):
        approvable("p1", found, "400", pending)
    assert approvable("p1", plan("p1", "pending"), "400", []).id == "p1"


async def cli(p: Pipeline, *args: str) -> Ran:
    return await ringsync({**p.env(), "RINGSYNC_LOG_LEVEL": "ERROR"}, *args)


async def hold_a_plan(p: Pipeline) -> tuple[list[str], str]:
    """Five of twenty users gone (four deleted, one unassigned), unheard: a held plan."""
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    for ext in ids[:4]:
        world.delete(ext)
    world.unassign(ids[4])
    await world.drain()
    held = await resync(p)
    assert held.plan_id is not None
    assert held.held == 5
    return ids, held.plan_id


async def test_one_absence_in_a_small_account_goes_through(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=6)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    world.delete(ids[0])
    await world.drain()
    summary = await resync(p)
    assert summary.plan_id is None
    assert summary.deprovisioned == 1
    assert await events_of(p, "user.deprovisioned") == [ids[0]]


async def test_three_absences_of_six_are_held(make_pipeline: MakePipeline, sqlite_url: str) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=6)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    world.set_faults(drop=1.0)
    for ext in ids[:3]:
        world.delete(ext)
    await world.drain()
    summary = await resync(p)
    assert summary.plan_id is not None
    assert summary.held == 3
    assert await events_of(p, "user.deprovisioned") == []


async def test_approving_a_plan_applies_exactly_its_deprovisionings(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=20)
    ids, plan_id = await hold_a_plan(p)
    status = await cli(p, "status", "--json")
    assert status.code == 1
    assert [plan["plan_id"] for plan in json.loads(status.out)["approvals"]["plans"]] == [plan_id]
    world = p.sandbox.world
    world.enable(ids[4])  # back since the plan was made: a read says so
    world.delete(ids[6])  # gone since, but not in the plan: the next resync's business
    await world.drain()

    approved = await cli(p, "resync", "--approve", plan_id, "--json")
    assert approved.code == 0, approved.err
    report = json.loads(approved.out)
    assert (report["deprovisioned"], report["found_live"], report["settled"]) == (4, 1, 1)
    assert report["listed"] == 0  # no listing: the plan's users were read one by one
    assert sorted(await events_of(p, "user.deprovisioned")) == sorted(ids[:4])
    mirror = await p.mirror()
    assert mirror[ids[4]].state.value == "active"
    assert mirror[ids[6]].state.value == "active"
    assert [plan.status for plan in await list_plans(p.store, p.sandbox.account_id)] == ["approved"]

    again = await cli(p, "resync", "--approve", plan_id)
    assert again.code == 1
    assert again.one_clear_line(), again.err
    assert "already approved" in again.err


async def test_approving_an_unknown_plan_is_refused(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=20)
    _, plan_id = await hold_a_plan(p)
    refused = await cli(p, "resync", "--approve", "0123456789ab")
    assert refused.code == 1
    assert refused.one_clear_line(), refused.err
    assert "no resync plan 0123456789ab" in refused.err
    assert "Nothing was applied" in refused.err
    assert await events_of(p, "user.deprovisioned") == []
    assert [plan.status for plan in await list_plans(p.store, p.sandbox.account_id)] == ["pending"]
    assert (await cli(p, "resync", "--approve")).code == 2  # the plan's id is required
    assert (await cli(p, "resync", "--approve", "not\nan id")).code == 2
    assert (await cli(p, "resync", "--dry-run", "--approve", plan_id)).code == 2


async def test_approving_a_stale_plan_is_refused(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=20)
    _, stale = await hold_a_plan(p)
    newer = await resync(p)  # a newer listing: its plan supersedes the first
    assert newer.plan_id is not None
    refused = await cli(p, "resync", "--approve", stale)
    assert refused.code == 1
    assert refused.one_clear_line(), refused.err
    assert f"plan {stale} is stale" in refused.err
    assert f"--approve {newer.plan_id}" in refused.err
    assert await events_of(p, "user.deprovisioned") == []
    statuses = [plan.status for plan in await list_plans(p.store, p.sandbox.account_id)]
    assert statuses == ["superseded", "pending"]
