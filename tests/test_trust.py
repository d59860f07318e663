"""End to end: a notification names users to re-read; it never decides what they are, nor when.

A forged Company Directory notification (with the right verification token) posted to the real
receiver and run by a real worker against the sandbox: the users it names are re-read, and only
RingCentral's answer reaches the mirror and downstream.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from tests.fixtures.pipeline import TOKEN, MakePipeline, Pipeline, eventually
from workers.coalesce import Coalescer
from workers.lifecycle import State

OFFBOARDING = {"user.suspended", "user.deprovisioned"}


async def post_directory(p: Pipeline, contact: dict[str, Any], *, timestamp: str) -> str:
    """Post a Company Directory notification about `contact` to the receiver; its uuid."""
    uid = str(uuid.uuid4())
    envelope = {
        "uuid": uid,
        "event": f"/restapi/v1.0/account/{p.sandbox.account_id}/directory/entries",
        "timestamp": timestamp,
        "subscriptionId": "forged",
        "ownerId": p.sandbox.world.owner_id,
        "body": {"contacts": [contact]},
    }
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{p.receiver_url}/webhook",
            content=orjson.dumps(envelope),
            headers={"Verification-Token": TOKEN, "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    return uid


def reads_of(p: Pipeline, extension_id: str) -> int:
    return sum(
        1
        for call in p.sandbox.world.calls
        if call["method"] == "GET" and call["path"].endswith(f"/extension/{extension_id}")
    )


async def ingested(p: Pipeline, uid: str) -> None:
    async def done() -> bool:
        return await p.store.event_outcome(uid) == "scheduled"

    await eventually(done, within=10, what=f"notification {uid} to be ingested")


async def reread(p: Pipeline, redis: aioredis.Redis, extension_id: str, reads_before: int) -> None:
    """Wait until `extension_id` was read again and that read written."""
    coalescer = Coalescer(redis, p.settings)

    async def done() -> bool:
        return (
            reads_of(p, extension_id) > reads_before and extension_id not in await coalescer.dirty()
        )

    await eventually(done, within=10, what=f"{extension_id} to be read again")


@pytest.mark.parametrize("directory_events", [True, False], ids=["subscribed", "not-subscribed"])
@pytest.mark.parametrize(
    "claim", [{"status": "Disabled", "type": "User"}, {"status": "Enabled", "type": "Department"}]
)
async def test_a_forged_directory_notification_offboards_nobody(
    make_pipeline: MakePipeline,
    sqlite_url: str,
    redis: aioredis.Redis,
    directory_events: bool,
    claim: dict[str, str],
) -> None:
    p = await make_pipeline(
        database_url=sqlite_url, directory=directory_events, directory_events=directory_events
    )
    world = p.sandbox.world
    ext = world.create_user(first_name="Ada", last_name="Live", email="ada@example.com")
    await p.converged()
    before = reads_of(p, ext)

    contact = {"id": ext, "eventType": "Update", "firstName": "Mallory", **claim}
    uid = await post_directory(p, contact, timestamp=world.clock.iso())

    async def untouched() -> None:
        row = (await p.mirror())[ext]
        assert (row.state, row.status, row.type, row.first_name) == (
            State.ACTIVE,
            "Enabled",
            "User",
            "Ada",
        )
        outbox = await p.store.list_outbox(p.sandbox.account_id)
        assert [o.type for o in outbox if o.extension_id == ext] == ["user.created"]
        assert not {o.type for o in outbox} & OFFBOARDING

    await ingested(p, uid)
    await untouched()
    await reread(p, redis, ext, before)  # what the user is, RingCentral says
    await untouched()


async def test_a_notification_dated_2099_freezes_nobody(
    make_pipeline: MakePipeline, sqlite_url: str, redis: aioredis.Redis
) -> None:
    p = await make_pipeline(database_url=sqlite_url, directory=True, directory_events=True)
    world = p.sandbox.world
    ext = world.create_user(first_name="Ada", last_name="Before")
    await p.converged()
    before = reads_of(p, ext)

    contact = {"id": ext, "type": "User", "status": "Enabled", "lastName": "Forged"}
    uid = await post_directory(p, contact, timestamp="2099-01-01T00:00:00.000Z")
    await ingested(p, uid)

    world.update_user(ext, last_name="After")  # a real change later on still reaches the mirror
    await p.converged(within=10)
    assert reads_of(p, ext) >= before + 1
    row = (await p.mirror())[ext]
    assert row.last_name == "After"
    assert row.observed_at < datetime(2099, 1, 1, tzinfo=UTC)
