"""`ringsync replay`: stored notifications re-expanded and reconciled again (not deduplicated),
one user, dead letters, the outbox; a second replay changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from sqlalchemy import update

from tests.fixtures.commands import ringsync
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from workers.store import tables


async def tamper(p: Pipeline, extension_id: str) -> None:
    """Make the mirror wrong behind ringsync's back (as if a reconcile had been lost)."""
    users = tables.users
    async with p.store.engine.begin() as conn:
        await conn.execute(
            update(users)
            .where(users.c.extension_id == extension_id)
            .values(last_name="Tampered", observed_at=datetime(2000, 1, 1, tzinfo=UTC))
        )


async def idle(p: Pipeline) -> None:
    """Every queued job has run."""
    client = aioredis.Redis.from_url(p.settings.redis_url)
    try:

        async def empty() -> bool:
            depth: int = await client.zcard(p.settings.queue_name)
            return depth == 0

        await eventually(empty, within=20, what="the queue to drain")
    finally:
        await client.aclose()


async def counts(p: Pipeline) -> tuple[int, int]:
    return await p.store.count("outbox"), await p.store.count("user_changes")


async def test_replay_since_reconciles_stored_notifications_and_is_idempotent(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url)
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    world = p.sandbox.world
    ids = [world.create_user(first_name=f"R{i}", last_name="Real") for i in range(3)]
    await p.converged()
    await idle(p)
    await tamper(p, ids[1])
    assert await p.differences()

    dry = await ringsync(p.env(), "replay", "--since", since, "--dry-run")
    assert dry.code == 0, dry.err
    assert "would schedule reconciles for 3 users from 3 stored notifications" in dry.out

    ran = await ringsync(p.env(), "replay", "--since", since.replace("+00:00", "Z"))
    assert ran.code == 0, ran.err
    assert "3 users" in ran.out
    assert "ringsync worker" in ran.out
    await p.converged()
    await idle(p)
    before = await counts(p)

    again = await ringsync(p.env(), "replay", "--since", since)
    assert again.code == 0
    await idle(p)
    await p.converged()
    assert await counts(p) == before  # nothing changed the second time


async def test_replay_narrowed_to_one_extension(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url)
    world = p.sandbox.world
    ids = [world.create_user(first_name=f"N{i}", last_name="Real") for i in range(2)]
    await p.converged()
    await idle(p)
    for ext in ids:
        await tamper(p, ext)
    since = "2000-01-01T00:00:00+00:00"
    ran = await ringsync(p.env(), "replay", "--since", since, "--extension", ids[0])
    assert ran.code == 0
    assert "1 users" in ran.out

    async def first_repaired() -> bool:
        return bool((await p.mirror())[ids[0]].last_name == "Real")

    await eventually(first_repaired, what="the replayed user")
    await idle(p)
    assert (await p.mirror())[ids[1]].last_name == "Tampered"

    alone = await ringsync(p.env(), "replay", "--extension", ids[1])
    assert alone.code == 0
    await p.converged()


async def test_replay_dead_letters_once(make_pipeline: MakePipeline, sqlite_url: str) -> None:
    p = await make_pipeline(database_url=sqlite_url)
    ext = p.sandbox.world.create_user(first_name="Dead", last_name="Real")
    await p.converged()
    await idle(p)
    await tamper(p, ext)
    arguments = {"extension_id": ext, "generation": 0, "cause": "test"}
    await p.store.add_dead_letter("reconcile", arguments, "ServerUnavailable: 503", 12)

    dry = await ringsync(p.env(), "replay", "--dead-letters", "--dry-run")
    assert "would re-run 1 dead-lettered jobs" in dry.out
    ran = await ringsync(p.env(), "replay", "--dead-letters")
    assert ran.code == 0, ran.err
    assert "re-ran 1 dead-lettered jobs" in ran.out
    await p.converged()
    assert await p.store.list_dead_letters() == []
    again = await ringsync(p.env(), "replay", "--dead-letters")
    assert "re-ran 0 dead-lettered jobs" in again.out


async def test_replay_outbox_counts_undelivered_events(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url)
    ran = await ringsync(p.env(), "replay", "--outbox", "--dry-run")
    assert ran.code == 0, ran.err
    assert "would send 0 undelivered events" in ran.out
