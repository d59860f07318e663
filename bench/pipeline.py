"""The pipeline end to end, beside an arq no-op job measured in the same run.

    python -m bench.pipeline [--quick] [--json FILE]

For SQLite and PostgreSQL, with 1 and 2 `ringsync worker` processes, sandbox rate limits off:
- events/s: one update to each of U users (U notifications) until the mirror shows all of them;
- latency: updates paced at R/s, each timed from the change in the sandbox to the mirror row
  (polled every 10 ms);
- baseline: the same count of arq jobs that do nothing, through `Queue` and real arq workers.
And a bulk change of 10,000 users reaching the mirror (PostgreSQL, 2 workers), in users/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from arq.connections import RedisSettings
from arq.worker import Worker, func

from bench.stack import REDIS_URL, Stack, postgres_available, running_stack
from events.queue import Queue


@dataclass
class Row:
    name: str
    database: str
    workers: int
    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    count: int = 0


def _quantiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


# --- the arq no-op baseline ----------------------------------------------------------------


async def _noop(ctx: dict[str, Any], enqueued: float) -> None:
    # Latency from enqueue to run, and a counter the conductor watches: one round trip.
    await ctx["redis"].rpush(ctx["latencies"], repr(time.time() - enqueued))


async def _noop_worker(queue: str) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    worker = Worker(
        functions=[func(_noop, name="noop", keep_result=0)],
        redis_settings=RedisSettings.from_dsn(REDIS_URL),
        queue_name=queue,
        poll_delay=0.01,  # as ringsync's worker (arq's default 0.5 s caps it at ~1,000 jobs/s)
        max_jobs=20,
        handle_signals=True,
        ctx={"redis": redis, "latencies": f"{queue}:latencies"},
    )
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass  # SIGTERM: arq cancelled its main task
    finally:
        await worker.close()


def _spawn_noop_workers(queue_name: str, count: int) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "bench.pipeline", "--noop-worker", queue_name]
    return [subprocess.Popen(command) for _ in range(count)]


async def noop_baseline(workers: int, jobs: int, rate: float, seconds: float) -> list[Row]:
    queue_name = f"bench-noop-{uuid.uuid4().hex[:8]}"
    redis = aioredis.Redis.from_url(REDIS_URL)
    latencies_key = f"{queue_name}:latencies"
    processes = _spawn_noop_workers(queue_name, workers)
    try:
        await asyncio.sleep(2.0)  # the workers start polling
        queue = Queue(redis, queue_name)

        async def wait(total: int) -> None:
            deadline = time.perf_counter() + 300
            while time.perf_counter() < deadline:
                if await redis.llen(latencies_key) >= total:
                    return
                await asyncio.sleep(0.01)
            raise TimeoutError("the no-op jobs did not all run")

        started = time.perf_counter()
        await asyncio.gather(*(queue.enqueue("noop", time.time()) for _ in range(jobs)))
        await wait(jobs)
        burst = jobs / (time.perf_counter() - started)
        await redis.delete(latencies_key)
        paced = int(rate * seconds)
        for _ in range(paced):
            await queue.enqueue("noop", time.time())
            await asyncio.sleep(1 / rate)
        await wait(paced)
        lat = [float(v) * 1000 for v in await redis.lrange(latencies_key, 0, -1)]
        p50, p99 = _quantiles(lat)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        keys = [k async for k in redis.scan_iter(match=f"*{queue_name}*", count=5000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    return [Row("arq no-op job", "-", workers, burst, p50, p99, jobs)]


# --- the pipeline --------------------------------------------------------------------------


async def _burst(stack: Stack, users: list[str]) -> float:
    tag = f"burst{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    for ext in users:
        stack.sandbox.world.update_user(ext, last_name=tag)
    await stack.wait_for(tag, len(users), within=600)
    return len(users) / (time.perf_counter() - started)


async def _paced(stack: Stack, users: list[str], rate: float) -> list[float]:
    """Latencies (ms) of `len(users)` changes paced at `rate`/s, change → mirror row."""
    tag = f"paced{uuid.uuid4().hex[:6]}"
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}

    async def send() -> None:
        for ext in users:
            sent[ext] = time.perf_counter()
            stack.sandbox.world.update_user(ext, last_name=tag)
            await asyncio.sleep(1 / rate)

    async def watch() -> None:
        deadline = time.perf_counter() + len(users) / rate + 120
        while len(seen) < len(users) and time.perf_counter() < deadline:
            waiting = [ext for ext in sent if ext not in seen]
            if waiting:
                now = time.perf_counter()
                for ext, name in (await stack.last_names(waiting)).items():
                    if name == tag:
                        seen[ext] = now
            await asyncio.sleep(0.01)

    await asyncio.gather(send(), watch())
    return [(seen[ext] - sent[ext]) * 1000 for ext in seen]


async def pipeline_rows(
    database: str, workers: int, users: int, rate: float, paced: int
) -> list[Row]:
    async with running_stack(database_kind=database, users=users, workers=workers) as stack:
        ids = [user.id for user in stack.sandbox.world.ordered()]
        # Latency first, on a quiet pipeline: after a burst, its covered single jobs are still
        # queued (deferred behind the batch) and would be measured instead.
        latencies = await _paced(stack, ids[:paced], rate)
        rate_burst = await _burst(stack, ids)
    p50, p99 = _quantiles(latencies)
    return [Row("ringsync event -> mirror", database, workers, rate_burst, p50, p99, users)]


async def bulk_row(users: int) -> Row:
    """A bulk change of `users` users (the sandbox batches the notifications)."""
    async with running_stack(database_kind="postgres", users=users, workers=2) as stack:
        tag = f"bulk{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        stack.sandbox.world.bulk_update(users, last_name=tag)
        await stack.wait_for(tag, users, within=900)
        elapsed = time.perf_counter() - started
    return Row(f"bulk change of {users:,} users", "postgres", 2, users / elapsed, count=users)


async def run(quick: bool) -> dict[str, Any]:
    users = 300 if quick else 2000
    rate, paced = (50.0, 150) if quick else (200.0, 2000)
    bulk = 10_000
    databases = ["sqlite"]
    if await postgres_available():
        databases.append("postgres")
    rows: list[Row] = []
    for workers in (1, 2):
        rows += await noop_baseline(workers, max(users, 3000), rate, paced / rate)
        for database in databases:
            rows += await pipeline_rows(database, workers, users, rate, paced)
            _print(rows[-1])
    if "postgres" in databases:
        rows.append(await bulk_row(bulk))
        _print(rows[-1])
    return {"rows": [asdict(r) for r in rows], "users": users, "paced_rate": rate}


def _print(row: Row) -> None:
    p50 = "-" if row.p50_ms is None else f"{row.p50_ms:.0f}"
    p99 = "-" if row.p99_ms is None else f"{row.p99_ms:.0f}"
    print(
        f"{row.name:<28} {row.database:<9} {row.workers} worker(s) {row.per_second:>8.0f}/s "
        f"p50 {p50:>5} ms p99 {p99:>5} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--noop-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop_worker:
        asyncio.run(_noop_worker(args.noop_worker))
        return
    result = asyncio.run(run(args.quick))
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
