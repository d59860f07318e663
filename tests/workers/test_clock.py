"""One clock for every process: reads are stamped on Redis's, never on a host's own.

`host_clock_ahead` makes ringsync's worker code in this process read a wall clock an hour ahead
(as on a host whose clock is off), while Redis, the sandbox, the receiver and arq keep the true
time; whatever the worker stamps must still agree with Redis's clock.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Self

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from events.settings import Settings
from sandbox.server import SandboxServer
from tests.fixtures.pipeline import MakePipeline, eventually, run_resync_now
from workers.coalesce import Coalescer
from workers.ringcentral.client import RingCentral
from workers.ringcentral.resources import Extension
from workers.store import tables

AHEAD = 3600.0


class _TimeAhead:
    """The `time` module as seen on a host whose wall clock is `seconds` ahead."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def time(self) -> float:
        return time.time() + self._seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def host_clock_ahead(monkeypatch: pytest.MonkeyPatch, seconds: float = AHEAD) -> None:
    """Every `workers` module reads `time.time()` and `datetime.now()` `seconds` ahead."""

    class Ahead(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Self:
            return cls.fromtimestamp(time.time() + seconds, tz)

    for name, module in list(sys.modules.items()):
        if name == "workers" or name.startswith("workers."):
            if getattr(module, "datetime", None) is datetime:
                monkeypatch.setattr(module, "datetime", Ahead)
            if getattr(module, "time", None) is time:
                monkeypatch.setattr(module, "time", _TimeAhead(seconds))


async def redis_now(redis: aioredis.Redis) -> datetime:
    seconds, micros = await redis.time()
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)


async def test_reads_are_stamped_on_redis_clock_not_the_hosts(
    sandbox: SandboxServer,
    redis: aioredis.Redis,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ext = sandbox.world.create_user(first_name="On", last_name="Time")
    settings = make_settings(
        rc_server_url=sandbox.url,
        rc_client_id=sandbox.client_id,
        rc_client_secret=sandbox.client_secret,
        rc_jwt=sandbox.jwt,
    )
    host_clock_ahead(monkeypatch)
    async with RingCentral(settings, redis) as client:
        before = await redis_now(redis)
        found = await client.get_extension(ext)
        page = await anext(client.list_extensions())
        after = await redis_now(redis)
    assert isinstance(found, Extension)
    assert before <= found.read_at <= after
    assert before <= page.read_at <= after
    assert {record.read_at for record in page.records} == {page.read_at}


async def test_a_host_clock_ahead_does_not_hold_back_other_workers(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    with pytest.MonkeyPatch.context() as ahead:
        host_clock_ahead(ahead)
        claim = await Coalescer(redis, settings, window=0.5).claim("7")  # read on that host
    await Coalescer(redis, settings, window=0.5).finish("7", claim.reading, claim.token)
    (mark,) = await Coalescer(redis, settings, window=0.5).mark(["7"])  # a change, elsewhere
    assert mark.defer_by <= 0.5  # one coalescing window, not the other host's hour


async def test_a_worker_with_its_clock_ahead_never_overwrites_a_newer_read(
    make_pipeline: MakePipeline, sqlite_url: str, redis: aioredis.Redis
) -> None:
    """Its read of the old state is held in flight while another process reads the new one."""
    p = await make_pipeline(database_url=sqlite_url, workers=0, coalesce_window=0.0)
    world = p.sandbox.world
    ext = world.create_user(first_name="Old", last_name="State")
    await world.drain()
    reading = asyncio.Event()
    release = asyncio.Event()

    async def hold(path: str) -> None:
        if path.endswith(f"/extension/{ext}") and not release.is_set():
            reading.set()
            await release.wait()

    world.before_reply = hold
    with pytest.MonkeyPatch.context() as ahead:
        host_clock_ahead(ahead)
        p.start_worker()
        await asyncio.wait_for(reading.wait(), 10)  # its read (old state) is in flight
    world.update_user(ext, first_name="New")
    await world.drain()
    await run_resync_now(p)  # a process with a true clock reads the new state and writes it
    assert (await p.mirror())[ext].first_name == "New"

    release.set()  # the older read arrives last

    async def written() -> bool:  # its ingest is marked done once that read was written
        query = select(tables.events.c.outcome)
        async with p.store.engine.connect() as conn:
            outcomes = (await conn.execute(query)).scalars().all()
        return len(outcomes) == 2 and "received" not in outcomes

    await eventually(written, within=10, what="the held read to be written")
    await p.converged(within=10)
    row = (await p.mirror())[ext]
    assert row.first_name == "New"
    assert abs(row.observed_at - await redis_now(redis)) < timedelta(minutes=1)
