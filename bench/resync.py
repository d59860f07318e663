"""A full resync of a large sandbox account: requests, peak memory and wall time against the floor
the Medium rate limit sets.

Run: .venv/bin/python -m bench.resync [--users 100000] [--database-url URL]

The sandbox runs in its own process with the default rate limits (Medium: 40 list pages a
minute); the resync runs here, through the same `run_resync` as the worker and the CLI, into a
fresh SQLite file (or --database-url). Expected: requests for the listing == ceil(N / 1000);
peak RSS of this process <= 200 MB; wall time close to the floor. RingCentral's window slides:
at most 40 Medium requests in any 60 s, so page 41 waits until page 1 is a minute old and P pages
need at least 60 * floor((P - 1) / 40) s (120 s for 100 pages). A token bucket refilling at
1.5 s a request would allow (P - 40) * 1.5 s (90 s); both are printed.

Measured on the 2-core machine (100,000 users, SQLite): 100 list requests, 138 s (floor 120 s),
peak RSS 121 MB (80 MB of it before the resync started).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
from pydantic import SecretStr

from events.settings import Settings
from sandbox.tokens import Credentials
from scripts.connections import open_deps
from tests.fixtures.services import free_port
from workers.context import LISTING_WAIT
from workers.resync.run import run_resync

PER_PAGE = 1000
MEDIUM_PER_MINUTE = 40


def floor_seconds(pages: int) -> float:
    """The sliding window's floor: a page per slot, a slot freed a minute after its use."""
    return 60.0 * ((pages - 1) // MEDIUM_PER_MINUTE) if pages else 0.0


def bucket_seconds(pages: int) -> float:
    """The estimate for a token bucket (40 at once, then one every 1.5 s)."""
    return max(pages - MEDIUM_PER_MINUTE, 0) * 60 / MEDIUM_PER_MINUTE


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def start_sandbox(port: int, users: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The sandbox in its own process, default rate limits."""
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--users", str(users),
         "--rate-limits", "default"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def wait_for_sandbox(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(6000):
            if process.poll() is not None:
                raise SystemExit(f"the sandbox exited with {process.returncode}")
            try:
                if (await http.get(f"{url}/sandbox/info")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the sandbox did not start")


async def bench(users: int, database_url: str | None, redis_url: str) -> dict[str, Any]:
    credentials = Credentials.make()
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="ringsync-bench-"))
    env = {
        **os.environ,
        "RC_APP_CLIENT_ID": credentials.client_id,
        "RC_APP_CLIENT_SECRET": credentials.client_secret,
        "RC_USER_JWT": credentials.jwt,
        "RINGSYNC_LOG_LEVEL": "WARNING",
    }
    sandbox = start_sandbox(port, users, env)
    url = f"http://127.0.0.1:{port}"
    namespace = f"bench-resync-{secrets.token_hex(4)}"
    settings = Settings(
        _env_file=None,
        redis_url=redis_url,
        redis_namespace=namespace,
        database_url=database_url or f"sqlite+aiosqlite:///{directory / 'ringsync.db'}",
        rc_server_url=url,
        rc_client_id=credentials.client_id,
        rc_client_secret=SecretStr(credentials.client_secret),
        rc_jwt=SecretStr(credentials.jwt),
        metrics_port=0,
        log_level="WARNING",
    )
    try:
        began = time.perf_counter()
        await wait_for_sandbox(url, sandbox)
        print(f"sandbox with {users:,} users up in {time.perf_counter() - began:.1f} s")
        rss_before = peak_rss_mb()
        async with open_deps(settings, max_wait=LISTING_WAIT) as d:
            await d.account_id()  # not part of the listing
            started = time.perf_counter()
            summary = await run_resync(d)
            wall = time.perf_counter() - started
        async with httpx.AsyncClient(base_url=url) as http:
            counters = (await http.get("/sandbox/counters")).json()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        await _forget(redis_url, namespace)
    pages = math.ceil(users / PER_PAGE)
    medium = int(counters["requests"].get("medium", 0))
    return {
        "users": users,
        "listed": summary.listed,
        "absent_reads": summary.absent,
        "list_requests": medium,
        "expected_requests": pages,
        "throttled": counters.get("throttled", {}),
        "wall_seconds": round(wall, 1),
        "floor_seconds": floor_seconds(pages),
        "bucket_estimate_seconds": bucket_seconds(pages),
        "peak_rss_mb_before": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "database": settings.database_url.split(":", 1)[0],
    }


async def _forget(redis_url: str, namespace: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{namespace}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    result = asyncio.run(bench(args.users, args.database_url, args.redis_url))
    print(
        f"{result['users']:,} users: {result['list_requests']} list requests "
        f"(expected {result['expected_requests']}), {result['wall_seconds']} s "
        f"(floor {result['floor_seconds']:.0f} s sliding window, "
        f"{result['bucket_estimate_seconds']:.0f} s token bucket), "
        f"peak RSS {result['peak_rss_mb']} MB"
    )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
