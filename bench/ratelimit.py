"""Two worker-like processes hammer reads through the client at RingCentral's default limits.

    python -m bench.ratelimit [--seconds 120] [--users 100] [--tasks 4]

Starts the sandbox in its own process (`python -m sandbox --rate-limits default`), then
two processes that each run `--tasks` Light readers (`get_extension`) and as many Medium readers
(one extension list page) as fast as the shared budget lets them. At the end it reads the
sandbox's call log and prints the 429s received (goal: 0) and, per group, the requests answered
against what the limit allows over the run (goal: at least 90%). Needs the Redis in REDIS_URL;
uses its own key namespace and removes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis

from events.settings import Settings
from workers.ringcentral.budget import DEFAULT_LIMITS
from workers.ringcentral.client import RingCentral
from workers.ringcentral.errors import RateLimited, TransientError

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-value"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.bench-signature"


def _settings(url: str, namespace: str) -> Settings:
    return Settings(
        _env_file=None,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        redis_namespace=namespace,
        rc_server_url=url,
        rc_client_id=CLIENT_ID,
        rc_client_secret=CLIENT_SECRET,
        rc_jwt=JWT,
    )


# --- one worker process ---------------------------------------------------------------------


async def _work(
    url: str, namespace: str, until: float, tasks: int, ids: list[str]
) -> dict[str, Any]:
    settings = _settings(url, namespace)
    redis = aioredis.Redis.from_url(settings.redis_url)
    counts = {"light": 0, "medium": 0, "rate_limited": 0, "transient": 0}

    async def back_off(exc: RateLimited) -> None:
        # What an arq job does with RateLimited: come back when the budget says so.
        counts["rate_limited"] += 1
        await asyncio.sleep(min(exc.retry_after or 1.0, max(until - time.time(), 0.0)))

    async def light() -> None:
        while True:
            try:
                await rc.get_extension(random.choice(ids))
                counts["light"] += 1
            except RateLimited as exc:  # only when the wait would pass the end of the run
                await back_off(exc)
            except TransientError:
                counts["transient"] += 1

    async def medium() -> None:
        while True:
            try:
                async for _ in rc.list_extensions(per_page=100):
                    counts["medium"] += 1
            except RateLimited as exc:
                await back_off(exc)
            except TransientError:
                counts["transient"] += 1

    async with RingCentral(settings, redis, max_wait=max(until - time.time(), 0.0)) as rc:
        readers = [*(light() for _ in range(tasks)), *(medium() for _ in range(tasks))]
        try:
            async with asyncio.timeout(max(until - time.time(), 0.0)):
                await asyncio.gather(*readers)
        except TimeoutError:
            pass  # the run is over; readers waiting for budget are cancelled
    await redis.aclose()
    return counts


# --- the conductor ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_sandbox(port: int, users: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(RC_APP_CLIENT_ID=CLIENT_ID, RC_APP_CLIENT_SECRET=CLIENT_SECRET, RC_USER_JWT=JWT)
    command = [sys.executable, "-m", "sandbox", "--port", str(port)]
    command += ["--users", str(users), "--rate-limits", "default"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/sandbox/info", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            if process.poll() is not None:
                raise SystemExit("the sandbox did not start") from None
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not answer within 30 s")


def _report(calls: list[dict[str, Any]], started: float, ended: float, workers: list[Any]) -> None:
    duration = ended - started
    refused = [c for c in calls if c["status"] == 429]
    print(f"run: {duration:.1f} s, 2 processes, sandbox at default limits")
    print(f"{'group':8} {'answered':>8} {'allowed':>8} {'achieved':>9}")
    shares = []
    for group in ("light", "medium"):
        limit, window = DEFAULT_LIMITS[group]
        answered = sum(
            1
            for c in calls
            if c["group"].lower() == group and c["status"] < 400 and started <= c["time"] <= ended
        )
        allowed = limit * duration / window
        shares.append(answered / allowed)
        print(f"{group:8} {answered:8d} {allowed:8.1f} {answered / allowed:9.1%}")
    logins = sum(1 for c in calls if c["path"] == "/restapi/oauth/token")
    print(f"logins: {logins} (goal 1)")
    print(f"workers: {json.dumps(workers)}")
    print(f"429 responses received: {len(refused)} (goal 0)")
    print(f"achieved rate vs allowed: {min(shares):.1%} at worst (goal >= 90%)")


async def _cleanup(namespace: str) -> None:
    redis = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    keys = [key async for key in redis.scan_iter(match=f"{namespace}*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=4, help="readers per group per process")
    parser.add_argument("--worker", nargs=4, metavar=("URL", "NS", "UNTIL", "IDS"))
    args = parser.parse_args()
    if args.worker:
        url, namespace, until, ids = args.worker
        counts = asyncio.run(_work(url, namespace, float(until), args.tasks, ids.split(",")))
        print(json.dumps(counts))
        return 0

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    namespace = f"bench-ratelimit-{uuid.uuid4().hex[:8]}"
    sandbox = _start_sandbox(port, args.users)
    try:
        ids = ",".join(u["id"] for u in httpx.get(f"{url}/sandbox/users", timeout=10).json())
        started = time.time()
        until = started + args.seconds
        command = [sys.executable, "-m", "bench.ratelimit", "--tasks", str(args.tasks)]
        command += ["--worker", url, namespace, repr(until), ids]
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE) for _ in range(2)]
        outputs = [proc.communicate()[0] for proc in procs]
        ended = time.time()
        workers = [json.loads(out.decode().strip().splitlines()[-1]) for out in outputs]
        calls = httpx.get(f"{url}/sandbox/calls", timeout=30).json()
        _report(calls, started, min(ended, until), workers)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        asyncio.run(_cleanup(namespace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
