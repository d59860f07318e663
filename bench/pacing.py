"""Pacing and pinning for the pipeline benchmark, and its baseline: arq jobs that do nothing.

The baseline runs the same arq machinery as ringsync (`Queue`, real arq workers polling every
10 ms) with jobs that only record how long after their enqueue they ran: a burst, then paced at
each rate the pipeline is measured at.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from arq.connections import RedisSettings
from arq.worker import Worker, func

from bench.cpu import CpuMeter
from bench.pipeline_stages import p50_p99
from bench.stack import REDIS_URL
from events.queue import Queue

# The cores of `--pin`: the load generator and sandbox, and ringsync's processes.
LOAD_CPU, RINGSYNC_CPU = 0, 1


@dataclass
class Row:
    name: str
    database: str
    workers: int
    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    count: int = 0
    rate: float | None = None  # the paced rate, changes/s (None: a burst or lone changes)
    stages: dict[str, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU a change, by part (bench.cpu)
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)


def pin(pids: list[int], cpu: int, pinned: bool) -> None:
    if pinned and hasattr(os, "sched_setaffinity"):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(pid, {cpu})


async def pace(rate: float, index: int, started: float) -> None:
    """Sleep until the `index`-th tick of `rate`/s after `started` (no drift)."""
    delay = started + index / rate - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


# --- the arq no-op baseline ----------------------------------------------------------------


async def _noop(ctx: dict[str, Any], enqueued: float) -> None:
    # Latency from enqueue to run, and a counter the conductor watches: one round trip.
    await ctx["redis"].rpush(ctx["latencies"], repr(time.time() - enqueued))


async def noop_worker(queue: str) -> None:
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


async def noop_baseline(
    workers: int, jobs: int, rates: tuple[float, ...], seconds: float, pinned: bool
) -> list[Row]:
    queue_name = f"bench-noop-{uuid.uuid4().hex[:8]}"
    redis = aioredis.Redis.from_url(REDIS_URL)
    latencies_key = f"{queue_name}:latencies"
    processes = _spawn_noop_workers(queue_name, workers)
    pin([p.pid for p in processes], RINGSYNC_CPU, pinned)
    rows: list[Row] = []
    try:
        await asyncio.sleep(2.0)  # the workers start polling
        queue = Queue(redis, queue_name)

        async def wait(total: int) -> list[float]:
            deadline = time.perf_counter() + 300
            while await redis.llen(latencies_key) < total:
                if time.perf_counter() > deadline:
                    raise TimeoutError("the no-op jobs did not all run")
                await asyncio.sleep(0.01)
            found = [float(v) * 1000 for v in await redis.lrange(latencies_key, 0, -1)]
            await redis.delete(latencies_key)
            return found

        started = time.perf_counter()
        await asyncio.gather(*(queue.enqueue("noop", time.time()) for _ in range(jobs)))
        latencies = await wait(jobs)
        burst = jobs / (time.perf_counter() - started)
        rows.append(Row("arq no-op job", "-", workers, burst, *p50_p99(latencies), jobs))
        for rate in rates:
            paced = int(rate * seconds)
            async with CpuMeter({"workers": [p.pid for p in processes]}, REDIS_URL) as meter:
                started = time.perf_counter()
                for index in range(paced):
                    await pace(rate, index, started)
                    await queue.enqueue("noop", time.time())
                latencies = await wait(paced)
            row = Row("arq no-op job", "-", workers, rate, *p50_p99(latencies), paced, rate)
            row.cpu_ms = meter.per_change_ms(paced)
            rows.append(row)
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
    return rows
