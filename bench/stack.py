"""The whole pipeline for benchmarks: sandbox in this process, receiver and workers as processes.

`async with running_stack(database_kind="postgres", users=2000, workers=2) as s:` seeds the
sandbox, mirrors it once (`ringsync resync`), subscribes through the real handshake and starts
`ringsync serve` and `ringsync worker` processes; everything is torn down (Redis keys, database)
on the way out. `s.count(tag)` counts mirrored users whose last name is `tag`, which is how the
benchmarks see a change arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import sqlalchemy as sa

from events.settings import Settings
from sandbox.server import SandboxServer
from workers.ringcentral.client import RingCentral
from workers.store.identity import Store

TOKEN = "bench-verification-token"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "RINGSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    sandbox: SandboxServer
    settings: Settings
    store: Store
    directory: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # pid -> the name it was spawned with

    def env(self) -> dict[str, str]:
        return self.settings.process_env(
            RINGSYNC_VERIFICATION_TOKEN=TOKEN,
            RINGSYNC_METRICS_PORT="0",
            RINGSYNC_RESYNC_AT="off",
            RINGSYNC_LOG_FORMAT="json",
            RINGSYNC_LOG_LEVEL="WARNING",
        )

    def spawn(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        with (self.directory / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "scripts.cli", *args],
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.processes.append(process)
        self.names[process.pid] = name
        return process

    async def ringsync(self, *args: str) -> str:
        """Run one `ringsync` command to completion; its stdout."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.cli", *args,
            env=self.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"ringsync {' '.join(args)} failed: {err.decode()[-2000:]}")
        return out.decode()

    async def count(self, tag: str) -> int:
        """Mirrored users of the sandbox's account whose last name is `tag`."""
        query = sa.text("SELECT count(*) FROM users WHERE account_id = :a AND last_name = :t")
        async with self.store.engine.connect() as conn:
            found = await conn.scalar(query, {"a": self.sandbox.account_id, "t": tag})
        return int(found or 0)

    async def last_names(self, extension_ids: list[str]) -> dict[str, str | None]:
        query = sa.text(
            "SELECT extension_id, last_name FROM users WHERE account_id = :a "
            "AND extension_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(query, {"a": self.sandbox.account_id, "ids": extension_ids})
        return {row[0]: row[1] for row in rows}

    async def wait_for(self, tag: str, expected: int, within: float) -> float:
        """Seconds until `expected` users carry `tag` (polled every 20 ms)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while await self.count(tag) < expected:
            if loop.time() - started > within:
                raise TimeoutError(f"{await self.count(tag)} of {expected} after {within} s")
            await asyncio.sleep(0.02)
        return loop.time() - started


async def _wait_http(url: str, process: subprocess.Popen[bytes], within: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient(timeout=1) as http:
        while loop.time() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise TimeoutError(url)


async def _wait_healthy(settings: Settings, processes: list[subprocess.Popen[bytes]]) -> None:
    """Until arq's health key shows a worker polling; then a moment for its siblings."""
    if not processes:
        return
    redis = aioredis.Redis.from_url(REDIS_URL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    try:
        while not await redis.exists(settings.key("worker", "health")):
            if any(p.poll() is not None for p in processes) or loop.time() > deadline:
                raise RuntimeError("a worker did not start")
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
    await asyncio.sleep(1.0)


@contextlib.asynccontextmanager
async def database(kind: str, directory: Path) -> AsyncIterator[str]:
    """A fresh database URL: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'bench.db'}"
        return
    import asyncpg

    name = f"ringsync_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        server = POSTGRES_URL.rsplit("/", 1)[0]
        yield f"{server}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def postgres_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _forget(namespace: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    for pattern in (f"{namespace}*", f"arq:*:{namespace}*"):
        keys = [key async for key in client.scan_iter(match=pattern, count=5000)]
        for start in range(0, len(keys), 5000):
            await client.delete(*keys[start : start + 5000])
    await client.aclose()


@contextlib.asynccontextmanager
async def running_stack(
    *,
    database_kind: str,
    users: int,
    workers: int,
    rate_limits: Any = "off",
    **overrides: Any,
) -> AsyncIterator[Stack]:
    namespace = f"bench-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="ringsync-bench-") as tmp:
        directory = Path(tmp)
        async with (
            database(database_kind, directory) as database_url,
            SandboxServer(users=users, rate_limits=rate_limits) as sb,
        ):
            port = free_port()
            values: dict[str, Any] = {
                "redis_url": REDIS_URL,
                "redis_namespace": namespace,
                "database_url": database_url,
                "verification_token": TOKEN,
                "webhook_url": f"http://127.0.0.1:{port}/webhook",
                "resync_at": "off",
                "metrics_port": 0,
                **sb.settings_overrides(),
                **overrides,
            }
            settings = Settings(_env_file=None, **values)
            store = await Store.open(database_url)
            stack = Stack(sb, settings, store, directory)
            try:
                if users:
                    await stack.ringsync("resync", "--json")
                receiver = stack.spawn("serve", "--port", str(port), name="receiver")
                await _wait_http(f"http://127.0.0.1:{port}/healthz", receiver)
                redis = aioredis.Redis.from_url(REDIS_URL)
                async with RingCentral(settings, redis) as client:
                    await client.create_subscription(
                        event_filters=["/restapi/v1.0/account/~/extension"],
                        address=settings.webhook_url,
                        verification_token=TOKEN,
                        expires_in=settings.subscription_ttl,
                    )
                await redis.aclose()
                for n in range(workers):
                    stack.spawn("worker", name=f"worker{n}")
                await _wait_healthy(settings, stack.processes[-workers:] if workers else [])
                yield stack
            finally:
                for process in stack.processes:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
                await store.close()
                await _forget(namespace)
