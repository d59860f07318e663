"""An activity scan of an account whose call log holds N calls in the window: Heavy requests, wall
time against the floor the Heavy rate limit sets, and peak memory.

Run: .venv/bin/python -m bench.activity [--calls 100000] [--users 1000] [--window 60]
     [--database-url URL]

The sandbox runs in its own process with the default rate limits (Heavy: 10 requests a window);
`--window 60` is RingCentral's minute, so 100,000 calls take about ten minutes by design. A
shorter `--window` scales every limit's window (the client follows the sandbox's
`X-Rate-Limit-Window`), to measure the same scan in less time. The mirror is filled first by
another process (bench.roles's filler: its memory is not counted here), the calls are generated
inside the sandbox over the last 29 days, then one scan runs here through the same
`workers.activity.scan.scan` as the worker, its first (a 30-day backfill). Expected: Heavy
requests == ceil(N / 1000); wall time close to the floor (a page per slot, a slot freed a window
after its use); peak RSS printed before and after the scan (goal: at most 150 MB, as records are
folded page by page).

Measured on the 2-core machine (100,000 calls, 1,000 users, SQLite, a first scan): 100 Heavy
requests, no 429; with `--window 60` 551.7 s (floor 540 s), with `--window 6` 69.0 s (floor 54 s;
the client keeps a 1 s margin per window); peak RSS 120.9 MB (93 MB before the scan).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.resync import _forget, peak_rss_mb, wait_for_sandbox
from bench.roles import settings_for
from sandbox.tokens import Credentials
from scripts.connections import open_deps
from tests.fixtures.services import free_port
from workers.activity.scan import scan
from workers.context import LISTING_WAIT

PER_PAGE = 1000
HEAVY_PER_WINDOW = 10


def floor_seconds(pages: int, window: float) -> float:
    """The sliding window's floor: ten pages a window, a slot freed a window after its use."""
    return window * ((pages - 1) // HEAVY_PER_WINDOW) if pages else 0.0


def start_sandbox(port: int, users: int, window: float, env: dict[str, str]) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--users", str(users),
         "--rate-limits", "default", "--rate-window", str(window)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def bench(
    calls: int, users: int, window: float, database_url: str | None, redis_url: str
) -> dict[str, Any]:
    credentials = Credentials.make()
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="ringsync-bench-"))
    os.environ.update(
        RC_APP_CLIENT_ID=credentials.client_id,
        RC_APP_CLIENT_SECRET=credentials.client_secret,
        RC_USER_JWT=credentials.jwt,
        RINGSYNC_LOG_LEVEL="WARNING",
    )
    sandbox = start_sandbox(port, users, window, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    namespace = f"bench-activity-{secrets.token_hex(4)}"
    database_url = database_url or f"sqlite+aiosqlite:///{directory / 'ringsync.db'}"
    settings = settings_for(url, database_url, redis_url, namespace)
    try:
        await wait_for_sandbox(url, sandbox)
        fill = [sys.executable, "-m", "bench.roles", "--fill", url, "--namespace", namespace,
                "--database-url", database_url, "--redis-url", redis_url]  # fmt: skip
        filling = await asyncio.create_subprocess_exec(*fill)
        if await filling.wait() != 0:
            raise SystemExit("filling the mirror failed")
        now = datetime.now(UTC)
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            made = await http.post(
                "/sandbox/call-log",
                json={
                    "generate": calls,
                    "dateFrom": (now - timedelta(days=29)).isoformat(),
                    "dateTo": (now - timedelta(minutes=1)).isoformat(),
                },
            )
            made.raise_for_status()
            before = (await http.get("/sandbox/counters")).json()
        print(f"{users:,} users mirrored, {calls:,} calls in the sandbox's log")
        rss_before = peak_rss_mb()
        async with open_deps(settings, max_wait=LISTING_WAIT) as d:
            await d.account_id()  # not part of the scan
            started = time.perf_counter()
            summary = await scan(d)
            wall = time.perf_counter() - started
        async with httpx.AsyncClient(base_url=url) as http:
            after = (await http.get("/sandbox/counters")).json()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        await _forget(redis_url, namespace)
    pages = math.ceil(calls / PER_PAGE)

    def heavy(counters: dict[str, Any]) -> int:
        return int(counters["requests"].get("heavy", 0))

    return {
        "calls": calls,
        "users": users,
        "records_read": summary.records,
        "users_moved": summary.users_moved,
        "heavy_requests": heavy(after) - heavy(before),
        "expected_requests": pages,
        "throttled": after.get("throttled", {}),
        "window_seconds": window,
        "wall_seconds": round(wall, 1),
        "floor_seconds": floor_seconds(pages, window),
        "peak_rss_mb_before": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "database": database_url.split(":", 1)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--window", type=float, default=60.0, help="the rate limits' window (RingCentral: 60 s)"
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    result = asyncio.run(
        bench(args.calls, args.users, args.window, args.database_url, args.redis_url)
    )
    print(
        f"{result['calls']:,} calls: {result['heavy_requests']} Heavy requests "
        f"(expected {result['expected_requests']}), {result['wall_seconds']} s "
        f"(floor {result['floor_seconds']:.0f} s at {result['window_seconds']:g} s windows), "
        f"peak RSS {result['peak_rss_mb']} MB ({result['peak_rss_mb_before']} MB before the scan)"
    )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
