"""`POST /v1/resync {"approve": PLAN_ID}` through a real worker: the held plan's users are
deprovisioned, each confirmed by its own read, and nobody else is."""

from __future__ import annotations

import httpx

from events.queue import RESYNC
from scripts.connections import open_deps
from tests.api.mirror import API_TOKEN, api_settings, running_api
from tests.fixtures.pipeline import MakePipeline, eventually
from tests.fixtures.resync import resync
from workers.resync.store import Plan, list_plans, pending_plans


async def test_approving_a_held_plan_through_the_api(
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

    plan = (await eventually(planned, what="the held plan"))[0]
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with (
        running_api(api_settings(p.settings)) as url,
        httpx.AsyncClient(base_url=url, headers=headers) as http,
    ):
        approved = await http.post("/v1/resync", json={"approve": plan.id})
        assert (approved.status_code, approved.json()["queued"]) == (202, True)

        async def settled() -> list[Plan] | None:
            plans = await list_plans(p.store, p.sandbox.account_id)
            return plans if [x.status for x in plans] == ["approved"] else None

        await eventually(settled, what="the plan approved by the worker")
        again = await http.post("/v1/resync", json={"approve": plan.id})
    mirror = await p.mirror()
    assert sorted(e for e, row in mirror.items() if row.state.value == "deprovisioned") == sorted(
        gone
    )
    assert again.status_code == 409
    assert "already approved" in again.json()["reason"]
