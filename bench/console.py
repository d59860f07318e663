"""Server time of the console's dashboard with many accounts, beside a bare Starlette endpoint
serving a page of the same size, in the same run.

    python -m bench.console [--accounts 200] [--users 50] [--requests 400]
                            [--database sqlite|postgres]

A deployment of `--accounts` accounts is written straight into a fresh database (each with its
users, a subscription, notifications and changes over the last three hours, transitions, and a
held plan in every tenth), then `ringsync api` runs on uvicorn in this process. A logged-in
client asks for dashboard pages one after another (every page of accounts, and searches), as
people keeping the page open do. Server time is measured around the ASGI app, from the request's
arrival to the last byte of the response: neither the client nor the network counts. The goal:
p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import create_app
from api.console.facts import PAGE_SIZE
from bench.stack import REDIS_URL, _forget, database
from events.settings import Settings
from tests.fixtures.receiver import serve_app
from workers.accounts.store import AccountStore
from workers.resync.store import record_plan
from workers.store import tables
from workers.store.identity import Store

TOKEN = "bench-console-token-0123456789abcdefghijklmnopqrstuvwxyz"
FIRST_ACCOUNT = 300_000_000
_STATES = ["active"] * 6 + ["suspended", "pending", "deprovisioned"]
_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]


class Timed:
    """Wraps an ASGI app; records each HTTP request's server time (ms) and the CPU time this
    process spent meanwhile (ms; requests come one at a time, so it is the request's own, and
    unlike the wall time it hardly moves with the machine's load)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.times: list[float] = []
        self.cpu: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, cpu = time.perf_counter(), time.process_time()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.times.append((time.perf_counter() - began) * 1000)
                self.cpu.append((time.process_time() - cpu) * 1000)

        await self.app(scope, receive, timed_send)


def settings_for(database_url: str, namespace: str) -> Settings:
    return Settings(
        _env_file=None,
        redis_url=REDIS_URL,
        redis_namespace=namespace,
        database_url=database_url,
        api_token=SecretStr(TOKEN),
        metrics_port=0,
        log_level="WARNING",
    )


async def seed(settings: Settings, accounts: int, users: int, now: datetime) -> list[str]:
    """`accounts` accounts (the first one the default), each with `users` users and three
    hours of notifications and changes; returns their ids."""
    ids = [str(FIRST_ACCOUNT + n) for n in range(accounts)]
    store = await Store.open(settings.database_url)
    try:
        await seed_accounts(store, ids, users, now, default=ids[0])
    finally:
        await store.close()
    redis = Redis.from_url(settings.redis_url)
    await redis.set(settings.key("account_id"), ids[0])
    await redis.aclose()
    return ids


async def seed_accounts(
    store: Store, ids: list[str], users: int, now: datetime, *, default: str | None = None
) -> None:
    """Accounts `ids` (all stored ones but `default`) with their users, subscription, three
    hours of notifications and changes, transitions, and a held plan in every tenth."""
    book = AccountStore(store)
    for n, account in enumerate(ids):
        if account != default:
            await book.add(account, f"{_NAMES[n % len(_NAMES)]} & Co {n}", "https://rc", "x")
    rows: dict[str, list[dict[str, Any]]] = {
        "users": [],
        "user_changes": [],
        "events": [],
        "subscriptions": [],
        "state": [],
    }
    for n, account in enumerate(ids):
        _account_rows(rows, n, account, users, now, scope="" if account == default else account)
    async with store.engine.begin() as conn:
        for name, values in rows.items():
            for start in range(0, len(values), 2000):
                await conn.execute(insert(tables.metadata.tables[name]), values[start:][:2000])
    for account in ids[::10]:
        await record_plan(store, f"plan-{account}", account, [f"{account}-0", f"{account}-1"], 0.3)


def _account_rows(
    rows: dict[str, list[dict[str, Any]]],
    n: int,
    account: str,
    users: int,
    now: datetime,
    *,
    scope: str,
) -> None:
    for u in range(users):
        state = _STATES[(n + u) % len(_STATES)]
        at = now - timedelta(days=30, minutes=u)
        extension = f"{account}-{u}"
        rows["users"].append(
            {
                "account_id": account,
                "extension_id": extension,
                "extension_number": str(100 + u),
                "first_name": _NAMES[u % len(_NAMES)],
                "last_name": f"User{u}",
                "email": f"user{u}@a{n}.example.com",
                "type": "User",
                "status": "Enabled",
                "state": state,
                "observed_at": at,
                "first_seen_at": at,
                "updated_at": at,
                "sequence": 2,
            }
        )
        if state != "active":
            rows["user_changes"].append(
                {
                    "account_id": account,
                    "extension_id": extension,
                    "changed_at": now - timedelta(minutes=u * 3),
                    "old_state": "active",
                    "new_state": state,
                    "diffs": {"state": ["active", state]},
                    "cause": f"event-{account}-{u}",
                }
            )
    for e in range(60):
        uuid_ = f"event-{account}-{e}"
        # Bursts and quiet spells, the same in every run.
        minute = (e * e * 7 + e * 13 + n * 29) % 180
        rows["events"].append(
            {
                "uuid": uuid_,
                "account_id": account,
                "received_at": now - timedelta(minutes=minute, seconds=5),
                "event": f"/restapi/v1.0/account/{account}/extension",
                "subscription_id": f"sub-{account}",
                "body": "{}",
                "outcome": "scheduled",
            }
        )
    rows["subscriptions"].append(
        {
            "id": f"sub-{account}",
            "account_id": account,
            "address": "https://ringsync.example.com/webhook",
            "event_filters": [f"/restapi/v1.0/account/{account}/extension"],
            "status": "Active",
            "expiration_time": now + timedelta(days=6, hours=n % 24),
            "created_at": now - timedelta(days=1),
        }
    )
    rows["state"].append(
        {
            "account_id": scope,
            "key": "last_event_at",
            "value": (now - timedelta(seconds=n * 13)).isoformat(),
            "updated_at": now,
        }
    )


@contextlib.asynccontextmanager
async def logged_in(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        answer = await http.post("/login", data={"token": TOKEN})
        if answer.status_code != 303:
            raise RuntimeError(f"login failed: {answer.status_code}")
        yield http


async def ask(http: httpx.AsyncClient, requests: int, pages: int) -> None:
    """Dashboard pages one after another: every page in turn, and a search every tenth time."""
    for n in range(requests):
        params = {"q": "co 1"} if n % 10 == 9 else {"page": str(n % pages + 1)}
        answer = await http.get("/", params=params)
        if answer.status_code != 200:
            raise RuntimeError(f"dashboard answered {answer.status_code}")


def figures(name: str, timed: Timed) -> dict[str, Any]:
    # The login and the first requests (which warm caches and connections) are left out.
    times, cpu = sorted(timed.times[6:]), sorted(timed.cpu[6:])
    return {
        "server": name,
        "requests": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[max(int(len(times) * 0.9) - 1, 0)], 2),
        "p99_ms": round(times[max(int(len(times) * 0.99) - 1, 0)], 2),
        "mean_ms": round(statistics.fmean(times), 2),
        "slowest_ms": [round(t, 1) for t in times[-5:]],
        "cpu_p50_ms": round(statistics.median(cpu), 2),
        "cpu_p99_ms": round(cpu[max(int(len(cpu) * 0.99) - 1, 0)], 2),
    }


async def bench(accounts: int, users: int, requests: int, kind: str) -> list[dict[str, Any]]:
    namespace = f"bench-console-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="ringsync-bench-") as tmp:
        async with database(kind, Path(tmp)) as database_url:
            settings = settings_for(database_url, namespace)
            try:
                await seed(settings, accounts, users, datetime.now(UTC))
                console = Timed(create_app(settings))
                async with serve_app(console) as url, logged_in(url) as http:
                    page = (await http.get("/")).content
                    await ask(http, requests, pages=-(-accounts // PAGE_SIZE))

                async def same_page(request: Request) -> Response:
                    return HTMLResponse(page)

                bare = Timed(Starlette(routes=[Route("/", same_page)]))
                async with serve_app(bare) as url, httpx.AsyncClient(base_url=url) as http:
                    for _ in range(requests):
                        await http.get("/")
            finally:
                await _forget(namespace)
    return [
        figures(f"console dashboard ({accounts} accounts, {kind})", console),
        figures("bare Starlette, same page", bare),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--users", type=int, default=50, help="per account")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    results = asyncio.run(bench(args.accounts, args.users, args.requests, args.database))
    # Other work on the machine shows in server time: say how busy it was.
    load = f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    for result in results:
        print(
            f"{result['server']:<44} p50 {result['p50_ms']:>6.2f} ms  "
            f"p90 {result['p90_ms']:>6.2f} ms  p99 {result['p99_ms']:>6.2f} ms  "
            f"mean {result['mean_ms']:>6.2f} ms  ({result['requests']} requests; CPU "
            f"p50 {result['cpu_p50_ms']:.2f} ms, p99 {result['cpu_p99_ms']:.2f} ms)"
        )
    print(load)
    print(orjson.dumps(results).decode())


if __name__ == "__main__":
    main()
