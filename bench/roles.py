"""A roles sweep of a large sandbox account: Medium requests, wall time against the floor the
Medium rate limit sets, and peak memory.

Run: .venv/bin/python -m bench.roles [--users 100000] [--database-url URL]

The sandbox runs in its own process with the default rate limits (Medium: 40 requests a minute).
The mirror is filled first, by another process (so its memory is not counted here), straight
into a fresh SQLite file (or --database-url), with no API call: the sweep writes only users the
mirror holds. Then one sweep runs here, through the same
`workers.roles.sweep` as the worker. Every sandbox user holds the default role, so every one is
listed. Expected: Medium requests == ceil(N / 1000) (the page size the client asks for; the
reference documents no page-size limit for this endpoint); wall time close to the sliding
window's floor (see bench/resync.py); peak RSS printed before and after the sweep.

Measured on the 2-core machine (100,000 users, SQLite, a first sweep: every user's roles
written): 100 Medium requests, 133 s (floor 120 s), no 429, peak RSS 132 MB (83 MB before it).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from bench.resync import _forget, floor_seconds, peak_rss_mb, start_sandbox, wait_for_sandbox
from events.settings import Settings
from sandbox.tokens import Credentials
from scripts.connections import open_deps
from tests.fixtures.services import free_port
from workers.context import LISTING_WAIT
from workers.decide import Observation, Policy
from workers.roles import sweep

PER_PAGE = 1000


async def fill_mirror(settings: Settings, url: str) -> int:
    """Every sandbox user into the mirror (a baseline, no events), without an API call."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        ids = [str(user["extension_id"]) for user in (await http.get("/sandbox/users")).json()]
    now = datetime.now(UTC)
    async with open_deps(settings) as d:
        account_id = await d.account_id()
        for start in range(0, len(ids), PER_PAGE):
            observations = {
                i: Observation(read_at=now, status="Enabled", type="User")
                for i in ids[start : start + PER_PAGE]
            }
            await d.store.apply_many(account_id, observations, "bench", Policy(baseline=True))
    return len(ids)


def settings_for(url: str, database_url: str, redis_url: str, namespace: str) -> Settings:
    """The bench's settings; the sandbox's credentials come from the environment."""
    return Settings(
        _env_file=None,
        redis_url=redis_url,
        redis_namespace=namespace,
        database_url=database_url,
        rc_server_url=url,
        rc_client_id=os.environ["RC_APP_CLIENT_ID"],
        rc_client_secret=SecretStr(os.environ["RC_APP_CLIENT_SECRET"]),
        rc_jwt=SecretStr(os.environ["RC_USER_JWT"]),
        metrics_port=0,
        log_level="WARNING",
    )


async def bench(users: int, database_url: str | None, redis_url: str) -> dict[str, Any]:
    credentials = Credentials.make()
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="ringsync-bench-"))
    os.environ.update(
        RC_APP_CLIENT_ID=credentials.client_id,
        RC_APP_CLIENT_SECRET=credentials.client_secret,
        RC_USER_JWT=credentials.jwt,
        RINGSYNC_LOG_LEVEL="WARNING",
    )
    sandbox = start_sandbox(port, users, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    namespace = f"bench-roles-{secrets.token_hex(4)}"
    database_url = database_url or f"sqlite+aiosqlite:///{directory / 'ringsync.db'}"
    settings = settings_for(url, database_url, redis_url, namespace)
    try:
        await wait_for_sandbox(url, sandbox)
        began = time.perf_counter()
        fill = [sys.executable, "-m", "bench.roles", "--fill", url, "--namespace", namespace,
                "--database-url", database_url, "--redis-url", redis_url]  # fmt: skip
        filling = await asyncio.create_subprocess_exec(*fill)
        if await filling.wait() != 0:
            raise SystemExit("filling the mirror failed")
        print(f"{users:,} users mirrored in {time.perf_counter() - began:.1f} s")
        async with httpx.AsyncClient(base_url=url) as http:
            before = (await http.get("/sandbox/counters")).json()
        rss_before = peak_rss_mb()
        async with open_deps(settings, max_wait=LISTING_WAIT) as d:
            started = time.perf_counter()
            listed, changed = await sweep(d, cause="bench")
            wall = time.perf_counter() - started
        async with httpx.AsyncClient(base_url=url) as http:
            after = (await http.get("/sandbox/counters")).json()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        await _forget(redis_url, namespace)
    pages = math.ceil(users / PER_PAGE)

    def medium(counters: dict[str, Any]) -> int:
        return int(counters["requests"].get("medium", 0))

    return {
        "users": users,
        "listed": listed,
        "changed": changed,
        "medium_requests": medium(after) - medium(before),
        "expected_requests": pages,
        "throttled": after.get("throttled", {}),
        "wall_seconds": round(wall, 1),
        "floor_seconds": floor_seconds(pages),
        "peak_rss_mb_before": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "database": settings.database_url.split(":", 1)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--fill", metavar="SANDBOX_URL", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        settings = settings_for(args.fill, args.database_url, args.redis_url, args.namespace)
        asyncio.run(fill_mirror(settings, args.fill))
        return
    result = asyncio.run(bench(args.users, args.database_url, args.redis_url))
    print(
        f"{result['users']:,} users: {result['medium_requests']} Medium requests "
        f"(expected {result['expected_requests']}), {result['wall_seconds']} s "
        f"(floor {result['floor_seconds']:.0f} s), peak RSS {result['peak_rss_mb']} MB "
        f"({result['peak_rss_mb_before']} MB before the sweep)"
    )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
