"""The pipeline end to end, beside an arq no-op job measured in the same run.

    python -m bench.pipeline [--quick] [--pin] [--rates 50,100,200] [--only postgres:2 ...]
                             [--json FILE]

For SQLite and PostgreSQL, with 1 and 2 `ringsync worker` processes, sandbox rate limits off:
- lone change: one update at a time, each timed from the change in the sandbox to the mirror
  row (polled every 5 ms), on an idle pipeline;
- latency at 50, 100 and 200 changes/s: updates to different users paced at R/s, each timed
  from the change to the mirror row (polled every 10 ms by `bench.watch`, a process of its own:
  the sandbox's work in this one would hold a poller here up), with where the time went per stage
  (`bench.pipeline_stages`, from the workers' stage logs);
- events/s: one update to each of U users (U notifications) until the mirror shows all of them;
- baseline: arq jobs that do nothing, through `Queue` and real arq workers, as a burst and
  paced at the same rates (enqueue -> run).
And a bulk change of 10,000 users reaching the mirror (PostgreSQL, 2 workers), in users/s.

`--pin` puts this process (the load and the sandbox) on the first core and the receiver and
workers on the second; Redis and PostgreSQL run where the system puts them. Every row carries
the load average when it was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.cpu import describe, stack_meter
from bench.pacing import LOAD_CPU, RINGSYNC_CPU, Row, noop_baseline, noop_worker, pace, pin
from bench.pipeline_stages import breakdown, p50_p99, print_breakdown
from bench.stack import Stack, postgres_available, running_stack

RATES = (50.0, 100.0, 200.0)


# --- the pipeline --------------------------------------------------------------------------


async def _burst(stack: Stack, users: list[str]) -> float:
    tag = f"burst{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    for ext in users:
        stack.sandbox.world.update_user(ext, last_name=tag)
    await stack.wait_for(tag, len(users), within=600)
    return len(users) / (time.perf_counter() - started)


async def _lone(stack: Stack, users: list[str]) -> list[float]:
    """Latencies (ms) of one change at a time, each on an idle pipeline."""
    tag = f"lone{uuid.uuid4().hex[:6]}"
    latencies = []
    for ext in users:
        await asyncio.sleep(0.3)  # what the last change set going settles (roles, delivery)
        started = time.perf_counter()
        stack.sandbox.world.update_user(ext, last_name=tag)
        deadline = started + 60
        while (await stack.last_names([ext])).get(ext) != tag:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"lone change of {ext} not mirrored")
            await asyncio.sleep(0.005)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def _paced(
    stack: Stack, users: list[str], rate: float, pinned: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Changes to `users` paced at `rate`/s: when each was made and when its mirror row showed
    it (unix times), the latter seen by `bench.watch` in a process of its own."""
    tag = f"paced{uuid.uuid4().hex[:6]}"
    sent: dict[str, float] = {}
    within = len(users) / rate + 120
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.watch", stack.settings.database_url,
        stack.sandbox.account_id, tag, str(len(users)), str(within),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        pin([watcher.pid], LOAD_CPU, pinned)
        assert watcher.stdout is not None
        if (await watcher.stdout.readline()).strip() != b"ready":
            raise RuntimeError("bench.watch did not start")
        started = time.perf_counter()
        for index, ext in enumerate(users):
            await pace(rate, index, started)
            sent[ext] = time.time()
            stack.sandbox.world.update_user(ext, last_name=tag)
        out, _ = await watcher.communicate()
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.wait()
    seen = {ext: float(at) for ext, at in (line.split() for line in out.decode().splitlines())}
    return sent, seen


@contextlib.contextmanager
def _stage_logs() -> Iterator[Path]:
    """A directory the workers started meanwhile log their stages to (`workers.stages`)."""
    with tempfile.TemporaryDirectory(prefix="ringsync-stages-") as directory:
        before = os.environ.get("RINGSYNC_STAGE_LOG")
        os.environ["RINGSYNC_STAGE_LOG"] = directory
        try:
            yield Path(directory)
        finally:
            if before is None:
                del os.environ["RINGSYNC_STAGE_LOG"]
            else:
                os.environ["RINGSYNC_STAGE_LOG"] = before


@dataclass(frozen=True)
class Plan:
    users: int
    rates: tuple[float, ...]
    seconds: float  # paced at each rate this long
    lone: int
    pinned: bool


async def pipeline_rows(database: str, workers: int, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    with _stage_logs() as directory:
        running = running_stack(database_kind=database, users=plan.users, workers=workers)
        async with running as stack:
            pin([p.pid for p in stack.processes], RINGSYNC_CPU, plan.pinned)
            ids = [user.id for user in stack.sandbox.world.ordered()]
            lone = await _lone(stack, ids[: plan.lone])
            rows.append(Row("lone change", database, workers, 0.0, *p50_p99(lone), len(lone)))
            _print(rows[-1])
            # Paced runs before the burst, on a quiet pipeline: after a burst, its covered single
            # jobs are still queued (deferred behind the batch) and would be measured instead.
            for rate in plan.rates:
                async with stack_meter(stack) as meter:
                    users = ids[: int(rate * plan.seconds)]
                    sent, seen = await _paced(stack, users, rate, plan.pinned)
                latencies = [(seen[ext] - sent[ext]) * 1000 for ext in seen]
                row = Row("ringsync event -> mirror", database, workers, rate, count=len(seen))
                row.p50_ms, row.p99_ms = p50_p99(latencies)
                row.rate, row.stages = rate, breakdown(directory, sent, seen)
                row.cpu_ms = meter.per_change_ms(len(users))
                rows.append(row)
                _print(row)
            rate_burst = await _burst(stack, ids)
    rows.append(Row("ringsync events, burst", database, workers, rate_burst, count=len(ids)))
    _print(rows[-1])
    return rows


async def bulk_row(users: int, pinned: bool) -> Row:
    """A bulk change of `users` users (the sandbox batches the notifications)."""
    async with running_stack(database_kind="postgres", users=users, workers=2) as stack:
        pin([p.pid for p in stack.processes], RINGSYNC_CPU, pinned)
        tag = f"bulk{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        stack.sandbox.world.bulk_update(users, last_name=tag)
        await stack.wait_for(tag, users, within=900)
        elapsed = time.perf_counter() - started
    return Row(f"bulk change of {users:,} users", "postgres", 2, users / elapsed, count=users)


@dataclass(frozen=True)
class Selection:
    """Which runs: `--only postgres:2 --rates 200` measures PostgreSQL with 2 workers at 200/s."""

    quick: bool = False
    pinned: bool = False
    rates: tuple[float, ...] = RATES
    only: tuple[str, ...] = ()  # "database:workers" pairs (empty: every one)

    def wanted(self, database: str, workers: int) -> bool:
        return not self.only or f"{database}:{workers}" in self.only


async def run(selection: Selection) -> dict[str, Any]:
    # Each paced run changes distinct users: at most `users` changes.
    quick, pinned = selection.quick, selection.pinned
    plan = Plan(
        users=600 if quick else 2000,
        rates=selection.rates,
        seconds=3.0 if quick else 10.0,
        lone=10 if quick else 20,
        pinned=pinned,
    )
    pin([os.getpid()], LOAD_CPU, pinned)
    databases = ["sqlite"]
    if await postgres_available():
        databases.append("postgres")
    rows: list[Row] = []
    for workers in (1, 2):
        chosen = [database for database in databases if selection.wanted(database, workers)]
        if not chosen:
            continue
        baseline = await noop_baseline(workers, 3000, plan.rates, plan.seconds / 2, pinned)
        for row in baseline:
            _print(row)
        rows += baseline
        for database in chosen:
            rows += await pipeline_rows(database, workers, plan)
    if "postgres" in databases and not quick and not selection.only:
        rows.append(await bulk_row(10_000, pinned))
        _print(rows[-1])
    return {
        "rows": [asdict(r) for r in rows],
        "users": plan.users,
        "pinned": pinned,
        "cores": os.cpu_count(),
    }


def _print(row: Row) -> None:
    p50 = "-" if row.p50_ms is None else f"{row.p50_ms:.0f}"
    p99 = "-" if row.p99_ms is None else f"{row.p99_ms:.0f}"
    load = " ".join(f"{value:.2f}" for value in row.load)
    print(
        f"{row.name:<26} {row.database:<9} {row.workers} worker(s) {row.per_second:>7.0f}/s "
        f"p50 {p50:>5} ms p99 {p99:>5} ms  (load {load})",
        flush=True,
    )
    if row.stages:
        print_breakdown(row.stages)
    if row.cpu_ms and row.rate:
        print(f"    {describe(row.cpu_ms, row.rate)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a few minutes)")
    parser.add_argument("--pin", action="store_true", help="load and ringsync on separate cores")
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES), help="changes/s")
    parser.add_argument("--only", nargs="*", default=[], metavar="DATABASE:WORKERS")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--noop-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop_worker:
        asyncio.run(noop_worker(args.noop_worker))
        return
    rates = tuple(float(rate) for rate in args.rates.split(","))
    result = asyncio.run(run(Selection(args.quick, args.pin, rates, tuple(args.only))))
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
