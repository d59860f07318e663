"""Fixtures of the chaos suite: `make_rig` starts a whole deployment as processes, `fresh_postgres`
gives a scenario a database of its own on the machine's PostgreSQL server (dropped after)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.chaos.processes import Processes
from tests.chaos.rig import Rig, offboarding_sink
from workers.store.identity import Store

MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(
    tmp_path: Path, redis_url: str, namespace: str, redis: aioredis.Redis
) -> AsyncIterator[MakeRig]:
    """`rig = await make_rig(users=20, workers=1, ...)`: running, subscribed, baseline mirrored.

    `redis` (the fixture) removes this test's namespaced keys from the shared server after; a
    scenario that hurts Redis passes `redis_url=` of a private server instead.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            *,
            users: int = 20,
            workers: int = 1,
            rate_limits: str = "off",
            redis_url: str = redis_url,
            database_url: str | None = None,
            store_url: str | None = None,
            offboarding: bool = True,
            env: dict[str, str] | None = None,
        ) -> Rig:
            database_url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'ringsync.db'}"
            store = await Store.open(store_url or database_url)
            stack.push_async_callback(store.close)
            sink = await stack.enter_async_context(offboarding_sink(offboarding))
            processes = Processes(tmp_path)
            rig = Rig(
                processes=processes,
                redis_url=redis_url,
                namespace=namespace,
                database_url=database_url,
                store=store,
                env_overrides=dict(env or {}),
                sink=sink,
            )
            stack.push_async_callback(rig.close)
            for _ in range(workers):  # they wait for work; no need to wait for them
                rig.start_worker()
            await asyncio.gather(
                rig.start_sandbox(users=users, rate_limits=rate_limits), rig.start_receiver()
            )
            await rig.subscribe()
            await rig.resync()
            await rig.converged(within=30)
            return rig

        yield make


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A database of this test's own on the shared server (asyncpg DSN); dropped after."""
    import asyncpg

    base = os.environ.get("RINGSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"ringsync_chaos_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(base, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {base} is required in CI: {exc}")
        pytest.skip(f"NO POSTGRESQL at {base}: {exc}")
    yield f"{base.rsplit('/', 1)[0]}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
