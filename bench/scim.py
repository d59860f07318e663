"""SCIM list throughput: `GET /scim/v2/Users?filter=…&count=100` over a large mirror, against a
bare Starlette JSON endpoint in the same run.

    python -m bench.scim [--users 100000] [--seconds 10] [--connections 8]
                         [--database sqlite|postgres|both] [--postgres URL]

The mirror is written straight into a fresh database (SQLite file or a new PostgreSQL database,
dropped afterwards); `ringsync api` and the bare app each run as their own uvicorn process. The
load is a Python keep-alive client asking random pages (startIndex over the first 200 pages) of
a filter that needs the database to look at names as well as states ("page"), then single users
looked up by `userName eq` in another case, as identity providers do ("lookup"). Prints
requests/s and p50/p99 per server and query (the bare app answers both with its one page).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import redis
from sqlalchemy import insert

from bench.receiver import _free_port, _wait_ready
from workers.store import tables
from workers.store.engine import refresh_statistics
from workers.store.identity import Store

FILTER = 'active eq true and (name.familyName sw "s" or userName co "7")'
# What an identity provider asks before anything else: one user by userName (an index answers).
LOOKUP = 'userName eq "USER{}@example.com"'
ACCOUNT = "400000000001"
_STATES = [("Enabled", "active")] * 7 + [("Disabled", "suspended"), ("NotActivated", "pending")]
_LAST = ["Smith", "Stone", "Jones", "Brown", "Li", "Garcia", "Silva", "Nguyen", "Shah", "Kim"]
_BARE_APP = """
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

PAGE = orjson.dumps({"totalResults": 70000, "Resources": [
    {"id": str(i), "userName": f"user{i}@example.com", "active": True} for i in range(100)]})

async def users(request):
    return Response(PAGE, media_type="application/scim+json")

app = Starlette(routes=[Route("/scim/v2/Users", users)])
"""


@dataclass
class Result:
    server: str
    database: str
    query: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    total: int


def _rows(count: int) -> list[dict[str, object]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        status, state = _STATES[i % len(_STATES)]
        at = t0 + timedelta(seconds=i)
        rows.append(
            {
                "account_id": ACCOUNT,
                "extension_id": str(100_000_000 + i),
                "extension_number": str(1000 + i),
                "first_name": f"First{i}",
                "last_name": _LAST[(i * 7) % len(_LAST)],
                "email": f"user{i}@example.com",
                "department": "Sales",
                "type": "User",
                "status": status,
                "state": state,
                "observed_at": at,
                "first_seen_at": at,
                "updated_at": at,
                "sequence": 1,
            }
        )
    return rows


async def seed(database_url: str, count: int) -> None:
    store = await Store.open(database_url)
    try:
        rows = _rows(count)
        async with store.engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(tables.users), rows[start : start + 5000])
        # What the baseline resync that filled a real mirror ends with.
        await refresh_statistics(store.engine)
    finally:
        await store.close()


def _params(query: str, users: int) -> dict[str, str | int]:
    if query == "lookup":
        return {"filter": LOOKUP.format(random.randrange(users))}
    return {"filter": FILTER, "startIndex": random.randrange(200) * 100 + 1, "count": 100}


async def load(
    url: str, headers: dict[str, str], seconds: float, connections: int, query: str, users: int
) -> Result:
    ok = bad = 0
    latencies: list[float] = []
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as http:

        async def one_connection() -> None:
            nonlocal ok, bad
            while time.monotonic() < end:
                params = _params(query, users)
                began = time.perf_counter()
                reply = await http.get(url, params=params)
                latencies.append((time.perf_counter() - began) * 1000)
                if reply.status_code == 200:
                    ok += 1
                else:
                    bad += 1

        began = time.monotonic()
        await asyncio.gather(*(one_connection() for _ in range(connections)))
        elapsed = time.monotonic() - began
    latencies.sort()
    return Result(
        server="",
        database="",
        query=query,
        requests_per_s=round(ok / elapsed, 1),
        p50_ms=round(statistics.median(latencies), 2),
        p99_ms=round(latencies[int(len(latencies) * 0.99) - 1], 2),
        errors=bad,
        total=ok + bad,
    )


def _serve(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _wait_ready(f"http://127.0.0.1:{port}/healthz")
    return process


def run_one(database: str, database_url: str, args: argparse.Namespace) -> list[Result]:
    asyncio.run(seed(database_url, args.users))
    token, namespace = secrets.token_urlsafe(32), f"bench-scim-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(args.redis)
    client.set(f"{namespace}:account_id", ACCOUNT)
    port, bare_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis,
        "RINGSYNC_REDIS_NAMESPACE": namespace,
        "RINGSYNC_API_TOKEN": secrets.token_urlsafe(32),
        "RINGSYNC_SCIM_TOKEN": token,
        "RINGSYNC_LOG_LEVEL": "WARNING",
    }
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bare_scim.py").write_text(_BARE_APP)
        bare_env = {**env, "PYTHONPATH": folder}
        bare_cmd = [sys.executable, "-m", "uvicorn", "bare_scim:app", "--port", str(bare_port),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log"]  # fmt: skip
        api_cmd = [sys.executable, "-m", "scripts.cli", "api", "--port", str(port)]
        for name, command, server_env, server_port in (
            ("bare Starlette", bare_cmd, bare_env, bare_port),
            ("ringsync api", api_cmd, env, port),
        ):
            if name == "bare Starlette":
                # The bare app has no /healthz: wait on its one route.
                process = subprocess.Popen(command, env=server_env, stderr=subprocess.DEVNULL)
                _wait_ready(f"http://127.0.0.1:{server_port}/scim/v2/Users")
            else:
                process = _serve(command, server_env, server_port)
            try:
                url = f"http://127.0.0.1:{server_port}/scim/v2/Users"
                headers = {"Authorization": f"Bearer {token}"}
                for query in ("page", "lookup"):
                    shape = (args.connections, query, args.users)
                    asyncio.run(load(url, headers, 2, *shape))  # warm-up
                    result = asyncio.run(load(url, headers, args.seconds, *shape))
                    result.server, result.database = name, database
                    results.append(result)
            finally:
                process.terminate()
                process.wait(10)
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)
    return results


def _postgres_database(server: str) -> tuple[str, str]:
    name = f"ringsync_bench_scim_{uuid.uuid4().hex[:8]}"
    admin = server.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def run() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return name, f"{server.rsplit('/', 1)[0]}/{name}"


def _drop(server: str, name: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(server.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results: list[Result] = []
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            results += run_one("sqlite", url, args)
    if args.database in ("postgres", "both"):
        name, url = _postgres_database(args.postgres)
        try:
            results += run_one("postgres", url, args)
        finally:
            _drop(args.postgres, name)
    print(f"{args.users} users, {args.connections} connections; page: {FILTER!r}, count=100, "
          f"startIndex over the first 200 pages; lookup: {LOOKUP.format('N')!r}")  # fmt: skip
    print(f"{'server':16} {'database':9} {'query':7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7}")  # fmt: skip
    for r in results:
        print(f"{r.server:16} {r.database:9} {r.query:7} {r.requests_per_s:8.1f} {r.p50_ms:8.2f} "
              f"{r.p99_ms:8.2f} {r.errors:7d}")  # fmt: skip
    if args.json:
        args.json.write_bytes(orjson.dumps([asdict(r) for r in results]))


if __name__ == "__main__":
    main()
