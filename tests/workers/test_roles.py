"""Roles on real parts (sandbox over HTTP, Redis, SQLite and PostgreSQL, an arq worker): the sweep
finds assignments no notification announced, pages through large accounts, changes nothing when
it fails half-way, waits out a 429 penalty; history keeps every change; a first read is silent."""

from __future__ import annotations

import httpx
import pytest

from events.queue import ROLES_SWEEP
from scripts.connections import open_deps
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from tests.fixtures.resync import events_of, resync
from workers.ringcentral.errors import ApiError
from workers.roles import sweep

ROLES_PATH = "/restapi/v1.0/account/~/assigned-role"
STANDARD = {"id": "2", "name": "Standard"}
SUPER = {"id": "1", "name": "Super Admin"}


def sweep_pages(p: Pipeline) -> list[dict[str, object]]:
    """The account-wide assigned-role requests the sandbox has answered."""
    return [c for c in p.sandbox.world.calls if c["path"].endswith("/assigned-role")
            and "/extension/" not in c["path"]]  # fmt: skip


async def roles_of(p: Pipeline, extension_id: str) -> object:
    row = await p.store.get_user(p.sandbox.account_id, extension_id)
    assert row is not None
    return row.roles


async def test_a_role_assigned_without_a_notification_appears_within_one_sweep(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=5)
    await resync(p)  # the baseline; the worker sweeps roles after it
    ids = [user.id for user in p.sandbox.world.ordered()]

    async def baseline_taken() -> bool:
        return all([await roles_of(p, i) == [STANDARD] for i in ids])

    await eventually(baseline_taken, what="the roles baseline")
    assert await p.store.list_outbox(p.sandbox.account_id) == []  # a baseline is not news

    p.sandbox.world.assign_roles(ids[1], ["2", "1"])
    await p.sandbox.world.drain()
    async with open_deps(p.settings) as d:
        await d.queue.enqueue(ROLES_SWEEP, "test", job_id=p.settings.key("roles", "sweep"))

    async def announced() -> list[str]:
        return await events_of(p, "user.roles_changed")

    assert await eventually(announced, what="user.roles_changed") == [ids[1]]
    [event] = [r for r in await p.store.list_outbox(p.sandbox.account_id)]
    assert event.payload["diffs"] == {"roles": [[STANDARD], [SUPER, STANDARD]]}
    assert event.payload["user"]["roles"] == [SUPER, STANDARD]
    assert await roles_of(p, ids[1]) == [SUPER, STANDARD]


async def test_a_sweep_over_2500_users_pages_correctly_and_history_keeps_every_change(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=2500, workers=0)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    async with open_deps(p.settings) as d:
        assert await sweep(d, cause="baseline") == (2500, 2500)  # none read before
        first, last = ids[10], ids[2499]
        world.assign_roles(first, [])
        world.assign_roles(last, ["1"])
        before = len(sweep_pages(p))
        assert await sweep(d, cause="one") == (2499, 2)
        assert len(sweep_pages(p)) - before == 3  # ⌈2,500 / 1,000⌉
        world.assign_roles(last, ["3", "1"])
        assert await sweep(d, cause="two") == (2499, 1)
    assert await roles_of(p, first) == []
    assert await roles_of(p, last) == [SUPER, {"id": "3", "name": "Phone System Admin"}]
    assert sorted(await events_of(p, "user.roles_changed")) == sorted([first, last, last])
    history = [c["diffs"]["roles"] for c in await p.store.list_changes(p.sandbox.account_id, last)
               if "roles" in c["diffs"]]  # fmt: skip
    assert history == [
        [None, [STANDARD]],
        [[STANDARD], [SUPER]],
        [[SUPER], [SUPER, {"id": "3", "name": "Phone System Admin"}]],
    ]


async def test_a_sweep_that_fails_half_way_changes_nothing(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=30, workers=0)
    await resync(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    async with open_deps(p.settings) as d:
        await sweep(d, cause="baseline", per_page=10)
        world.assign_roles(ids[0], [])  # listed on no page any more
        world.assign_roles(ids[25], ["1"])

        async def refuse_after_the_first_page(path: str) -> None:
            if path.endswith("/assigned-role") and "/extension/" not in path:
                world.set_faults(refuse={"GET /restapi/v1.0/account/*/assigned-role": 400})

        world.before_reply = refuse_after_the_first_page
        before = len(sweep_pages(p))
        with pytest.raises(ApiError):
            await sweep(d, cause="broken", per_page=10)
    assert [c["status"] for c in sweep_pages(p)[before:]] == [200, 400]
    assert await roles_of(p, ids[0]) == [STANDARD]  # not read as "no role": the sweep failed
    assert await roles_of(p, ids[25]) == [STANDARD]
    assert await events_of(p, "user.roles_changed") == []


async def test_the_sweep_waits_out_a_429_penalty(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    limits = {"medium": 3, "window": 1, "penalty": 1}
    p = await make_pipeline(database_url=database_url, users=25, workers=0, rate_limits=limits)
    await resync(p)
    sb = p.sandbox
    sb.world.assign_roles(sb.world.ordered()[24].id, ["1"])
    # Another user of the same app spends the Medium group behind our back.
    outsider = {"Authorization": f"Bearer {sb.world.tokens.issue().access_token}"}
    async with httpx.AsyncClient(base_url=sb.url, headers=outsider) as raw:
        while (await raw.get(ROLES_PATH)).status_code == 200:
            pass
    started = len(sb.world.calls)
    async with open_deps(p.settings) as d:
        assert await sweep(d, cause="penalty", per_page=5) == (25, 25)  # the baseline
    medium = [c for c in sb.world.calls[started:] if c["group"].lower() == "medium"]
    refused = [c for c in medium if c["status"] == 429]
    assert len(refused) <= 1  # at most the one request that learnt of the penalty
    for call in refused:
        inside = [c for c in medium if call["time"] < c["time"] < call["time"] + 1.0]
        assert inside == []
    assert [c["status"] for c in medium][-5:] == [200] * 5
