"""`ringsync status`: the report's keys, and exit 1 exactly when a human should look."""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

from scripts.connections import open_deps
from tests.fixtures.commands import ringsync
from tests.fixtures.pipeline import MakePipeline, Pipeline
from workers.resync.run import run_resync
from workers.subscription.renewal import ensure_subscription

KEYS = {"queue", "subscription", "last_event", "dead_letters", "approvals", "rate_limits"}


async def healthy(make_pipeline: MakePipeline, sqlite_url: str) -> Pipeline:
    p = await make_pipeline(database_url=sqlite_url, users=5)
    async with open_deps(p.settings) as d:
        await ensure_subscription(d)  # adopts the pipeline's subscription and records it
        await run_resync(d)
    p.sandbox.world.create_user(first_name="Last", last_name="Event")
    await p.converged()
    return p


async def test_a_healthy_deployment_exits_0_with_every_key(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await healthy(make_pipeline, sqlite_url)
    ran = await ringsync(p.env(), "status", "--json")
    assert ran.code == 0, ran.out + ran.err
    report = json.loads(ran.out)
    assert set(report) >= KEYS | {"deliveries", "last_gap", "attention"}
    assert report["attention"] == []
    assert report["subscription"]["status"] == "Active"
    assert report["subscription"]["remaining_seconds"] > 0
    assert report["last_event"]["at"] is not None
    assert report["dead_letters"]["count"] == 0
    assert report["approvals"] == {"pending": 0, "plans": []}
    assert {"light", "medium"} <= set(report["rate_limits"])
    assert report["queue"]["depth"] == 0

    table = await ringsync(p.env(), "status")
    assert table.code == 0
    assert "all good" in table.out


async def test_dead_letters_and_an_old_job_need_a_human(
    make_pipeline: MakePipeline, sqlite_url: str, redis: aioredis.Redis
) -> None:
    p = await healthy(make_pipeline, sqlite_url)
    await p.stop_workers()
    await p.store.add_dead_letter("reconcile", {"extension_id": "1"}, "ApiError: 400", 1)
    await redis.zadd(p.settings.queue_name, {"stale-job": int((time.time() - 400) * 1000)})
    ran = await ringsync(p.env(), "status", "--json")
    assert ran.code == 1
    report = json.loads(ran.out)
    dead = report["dead_letters"]
    assert (dead["count"], dead["by_job"]) == (1, {"reconcile": 1})
    # A letter of the default account: shown under its id once known.
    assert dead["by_account"] == {p.sandbox.account_id: 1}
    assert [(x["account_id"], x["job"]) for x in dead["letters"]] == [
        (p.sandbox.account_id, "reconcile")
    ]
    assert report["queue"]["oldest_age_seconds"] > 300
    assert len(report["attention"]) == 2
    table = await ringsync(p.env(), "status")
    assert table.code == 1
    assert "needs a look" in table.out


async def test_no_subscription_needs_a_human(make_pipeline: MakePipeline, sqlite_url: str) -> None:
    p = await make_pipeline(database_url=sqlite_url, workers=0)
    ran = await ringsync(p.env(), "status", "--json")
    assert ran.code == 1
    assert json.loads(ran.out)["attention"] == ["no subscription"]
