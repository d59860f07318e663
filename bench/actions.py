"""Deprovision N users of one account with RingCentral's default rate limits on: Heavy requests
used (the goal is ceil(N / 50) bulk deletes), the Medium suspends, the Light re-reads, wall time
against the floor the limits set, and throttled (429) requests.

Run: .venv/bin/python -m bench.actions [--users 500] [--window 60] [--database-url URL]

The sandbox runs in its own process with RingCentral's default limits (Light 50, Medium 40,
Heavy 10 requests a window). `--window` shortens the window (60 s in RingCentral) to run the
same schedule faster: every figure but the wall time is the same, and the floor is given in the
same window. The mirror is filled first without API calls; N deprovisions are proposed and
approved through the store (`RINGSYNC_ACTIONS_MAX_PER_HOUR` set to N, or most would wait for a
later hour), then one real arq worker carries them out. Each action re-reads its user and their
roles (2 Light), suspends (1 Medium), then joins the account's delete queue (50 a Heavy call),
whose batch re-reads each user and their roles again just before the DELETE (2 Light: a user
reactivated or made protected while waiting is not deleted). The floor is the busiest group's: a
request per slot, each slot free again one window after use.

Measured on the 2-core machine, shared with other work (500 users, SQLite, `--window 6`): 500
done, 10 Heavy requests (goal 10), 500 Medium, 1,117 Light (1,000 needed; the rest are re-reads
by actions that came back after waiting out the Light budget), 155.6 s against a floor of 132 s
(114 s for the 1,000 Light reads needed), no 429. With RingCentral's 60-second windows (`python
-m bench.actions --users 500`), measured before deletes gathered for 5 minutes and before the
sweep left queued deletes alone: 500 done, 25 Heavy requests (half-full calls), 500 Medium,
1,294 Light, 1,529 s against a floor of 1,500 s (1,140 s for 1,000 Light reads), no 429.

Since the re-read before each DELETE (100 users, SQLite, `--window 6`, same machine and run of
the day): 100 done, 2 Heavy (goal 2), 100 Medium, 400 Light (was 263), 55.9 s against a floor of
42 s (was 37.8 s against 30 s), no 429. At 500 users the Light reads needed double to 2,000, so
the 60-second-window floor is about 40 minutes; a bulk re-check (one paged listing of Disabled
extensions and of role assignments per call) would bring it back near the old figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.resync import _forget, wait_for_sandbox
from bench.roles import fill_mirror, settings_for
from sandbox.tokens import Credentials
from scripts.connections import open_deps
from tests.fixtures.services import free_port
from workers.actions.decide import Kind
from workers.actions.protection import protection
from workers.actions.store import ActionStore
from workers.main import build_worker

# RingCentral's default requests per window, per group.
LIMITS = {"light": 50, "medium": 40, "heavy": 10, "auth": 5}


def floor_seconds(requests: int, limit: int, window: float) -> float:
    """A sliding window's floor: `limit` requests, then each slot free a window after its use."""
    return window * ((requests - 1) // limit) if requests else 0.0


def start_sandbox(port: int, users: int, window: float, directory: Path) -> Any:
    import subprocess
    import sys

    limits = directory / "limits.json"
    limits.write_bytes(orjson.dumps({**LIMITS, "window": window}))
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--users", str(users),
         "--rate-limits", str(limits)],
        env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def bench(users: int, window: float, database_url: str | None, redis_url: str) -> Any:
    credentials = Credentials.make()
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="ringsync-bench-"))
    os.environ.update(
        RC_APP_CLIENT_ID=credentials.client_id,
        RC_APP_CLIENT_SECRET=credentials.client_secret,
        RC_USER_JWT=credentials.jwt,
        RINGSYNC_LOG_LEVEL="WARNING",
    )
    sandbox = start_sandbox(port, users, window, directory)
    url = f"http://127.0.0.1:{port}"
    namespace = f"bench-actions-{secrets.token_hex(4)}"
    database_url = database_url or f"sqlite+aiosqlite:///{directory / 'ringsync.db'}"
    settings = settings_for(url, database_url, redis_url, namespace).model_copy(
        update={"actions_max_per_hour": users}
    )
    try:
        await wait_for_sandbox(url, sandbox)
        await fill_mirror(settings, url)
        async with open_deps(settings) as d:
            account_id = await d.account_id()
            facts = await protection(d)
            book = ActionStore(d.store)
            ids = []
            for user in await d.store.list_users(account_id=account_id):
                moved = await book.propose(
                    account_id, user.extension_id, Kind.DEPROVISION,
                    reason="bench", by="bench", protection=facts,
                )  # fmt: skip
                ids.append((await book.approve(moved.action.id, "approver")).action.id)
        async with httpx.AsyncClient(base_url=url) as http:
            before = (await http.get("/sandbox/counters")).json()
        worker = build_worker(settings, handle_signals=False)
        running = asyncio.create_task(worker.async_run())
        started = time.perf_counter()
        async with open_deps(settings) as d:
            from workers.actions.gate import queue_run

            book = ActionStore(d.store)
            for action_id in ids:
                found = await book.get(action_id)
                assert found is not None
                await queue_run(d, found)
            while True:
                counts = await book.counts(users, account_id)
                if counts["done"] + counts["failed"] >= len(ids):
                    break
                await asyncio.sleep(0.5)
            wall = time.perf_counter() - started
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()
        async with httpx.AsyncClient(base_url=url) as http:
            after = (await http.get("/sandbox/counters")).json()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        await _forget(redis_url, namespace)

    def used(group: str) -> int:
        return int(after["requests"].get(group, 0)) - int(before["requests"].get(group, 0))

    requests = {group: used(group) for group in ("light", "medium", "heavy")}
    floors = {g: floor_seconds(n, LIMITS[g], window) for g, n in requests.items()}
    return {
        "users": users,
        "done": counts["done"],
        "failed": counts["failed"],
        "heavy_requests": requests["heavy"],
        "heavy_goal": math.ceil(users / 50),
        "medium_requests": requests["medium"],
        "light_requests": requests["light"],
        "throttled": {
            g: int(after["throttled"].get(g, 0)) - int(before["throttled"].get(g, 0))
            for g in set(after["throttled"]) | set(before["throttled"])
        },
        "window_seconds": window,
        "wall_seconds": round(wall, 1),
        "floor_seconds": max(floors.values()),
        "floor_by_group": floors,
        "database": settings.database_url.split(":", 1)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--window", type=float, default=60.0, help="the limits' window, seconds")
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    result = asyncio.run(bench(args.users, args.window, args.database_url, args.redis_url))
    print(
        f"{result['users']:,} deprovisions ({result['done']} done, {result['failed']} failed): "
        f"{result['heavy_requests']} Heavy requests (goal {result['heavy_goal']}), "
        f"{result['medium_requests']} Medium, {result['light_requests']} Light; "
        f"{result['wall_seconds']} s against a floor of {result['floor_seconds']:.0f} s "
        f"({result['window_seconds']:.0f} s windows); throttled: {result['throttled'] or 0}"
    )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
