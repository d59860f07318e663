"""What a listing costs a worker beside single reads: the ratio behind
`workers.batching.LISTED_PER_READ`.

    python -m bench.listing [--users 2000] [--reads 200] [--json FILE]

The sandbox serves one account of --users users from a process of its own (limits off). This
process does a worker's part, for SQLite and PostgreSQL: (a) read --reads users one at a time
and reconcile each into the mirror; (b) list the whole account and reconcile every page. Both
against a mirror that already holds every user as it is, so nothing changes: a listing's common
case under a steady stream of changes to a few users. Measured: this process's CPU time per
single read, per listed user, and their ratio (how many listed users cost as much as one read).
A single read here leaves out the job around it (claim, coalescing marks, the ingest), so the
ratio is a floor of what a change read on its own costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis

from bench.stack import REDIS_URL, TOKEN, _forget, database, free_port, postgres_available
from events.settings import Settings
from workers.observe import observe
from workers.ringcentral.client import RingCentral
from workers.store.identity import Store


@contextlib.asynccontextmanager
async def sandbox(users: int) -> AsyncIterator[dict[str, str]]:
    """`ringsync sandbox` in a process of its own; the settings that point at it."""
    port = free_port()
    credentials = {
        "RC_APP_CLIENT_ID": f"bench-{uuid.uuid4().hex[:8]}",
        "RC_APP_CLIENT_SECRET": uuid.uuid4().hex,
        "RC_USER_JWT": f"bench.{uuid.uuid4().hex}.jwt",
    }
    command = [sys.executable, "-m", "sandbox", "--port", str(port), "--users", str(users)]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--rate-limits",
        "off",
        env=os.environ | credentials,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=1) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/restapi/v1.0")).status_code < 500:
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start")
                await asyncio.sleep(0.1)
        yield {
            "rc_server_url": url,
            "rc_client_id": credentials["RC_APP_CLIENT_ID"],
            "rc_client_secret": credentials["RC_APP_CLIENT_SECRET"],
            "rc_jwt": credentials["RC_USER_JWT"],
        }
    finally:
        process.terminate()
        await process.wait()


async def _listing(client: RingCentral, store: Store, account_id: str) -> int:
    listed = 0
    async for page in client.list_extensions():
        observations = {r.id: observe(r, partial=True) for r in page.records}
        await store.apply_many(account_id, observations, "bench")
        listed += len(observations)
    return listed


async def measure(kind: str, rc: dict[str, str], reads: int) -> dict[str, Any]:
    namespace = f"bench-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="ringsync-bench-") as tmp:
        async with database(kind, Path(tmp)) as database_url:
            values: dict[str, Any] = {
                "redis_url": REDIS_URL,
                "redis_namespace": namespace,
                "database_url": database_url,
                "verification_token": TOKEN,
                "webhook_url": "http://127.0.0.1:9/webhook",
                **rc,
            }
            settings = Settings(_env_file=None, **values)
            redis = aioredis.Redis.from_url(REDIS_URL)
            store = await Store.open(database_url)
            try:
                async with RingCentral(settings, redis) as client:
                    account_id = (await client.account()).id
                    users = await _listing(client, store, account_id)  # the mirror, filled
                    ids = [u.extension_id for u in await store.list_users()][:reads]
                    started = time.process_time()
                    for extension_id in ids:
                        found = observe(await client.get_extension(extension_id))
                        await store.reconcile(account_id, extension_id, found, "bench")
                    per_read = (time.process_time() - started) / len(ids)
                    started = time.process_time()
                    listed = await _listing(client, store, account_id)
                    per_listed = (time.process_time() - started) / listed
            finally:
                await store.close()
                await redis.aclose()
                await _forget(namespace)
    return {
        "database": kind,
        "users": users,
        "reads": len(ids),
        "read_ms": per_read * 1000,
        "listed_user_ms": per_listed * 1000,
        "listed_per_read": per_read / per_listed,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = ["sqlite", "postgres"] if await postgres_available() else ["sqlite"]
    found = []
    async with sandbox(args.users) as rc:
        for kind in kinds:
            row = await measure(kind, rc, args.reads)
            print(
                f"{kind:8} a single read {row['read_ms']:.2f} ms CPU, a listed user "
                f"{row['listed_user_ms'] * 1000:.0f} us: one read costs as much as "
                f"{row['listed_per_read']:.0f} listed users ({row['users']:,} users)",
                flush=True,
            )
            found.append(row)
    return {"results": found}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.listing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.users < 1 or not 0 < args.reads <= args.users:
        parser.error("--users must be positive and --reads between 1 and --users")
    result = asyncio.run(run(args))
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
