"""Where a change's CPU goes: the CPU time of each process behind a measurement, per change.

    async with CpuMeter(parts, database_url) as meter:
        ...                                    # the paced changes
    meter.per_change_ms(changes)               # {"receiver": 1.4, "workers": 9.8, ...}

`parts` names processes by role (`{"receiver": [pid], "workers": [pid, pid]}`); besides them the
meter counts PostgreSQL's backends serving the benchmark's database (from `pg_stat_activity`,
leaving out `bench.watch`'s and its own) and Redis (its `INFO cpu`: the whole server, so run
nothing else against it meanwhile). Read from `/proc`: Linux only; elsewhere the meter is empty.
On a machine with fewer cores than the CPU a rate needs, latency is queueing: this is the figure
that says how many cores a rate needs (`cores_needed`).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import redis.asyncio as aioredis
import sqlalchemy as sa

from bench.stack import REDIS_URL, Stack
from workers.store.engine import create_engine, reading

_PROC = Path("/proc/self/stat").exists()
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# What `bench.watch` names its PostgreSQL connection: its polls are the load's, not ringsync's.
WATCH_APPLICATION = "bench.watch"
_BACKENDS = sa.text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND application_name <> :watch"
)
# The parts that are ringsync (the rest is the load generator and the sandbox).
RINGSYNC_PARTS = ("receiver", "workers", "postgres", "redis")


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _redis_seconds(redis_url: str) -> float:
    client = aioredis.Redis.from_url(redis_url)
    try:
        info = await client.info("cpu")
    finally:
        await client.aclose()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class CpuMeter:
    """CPU seconds per part between entering and leaving (see the module's docstring)."""

    def __init__(self, parts: dict[str, list[int]], redis_url: str, database_url: str = "") -> None:
        self._parts = parts
        self._redis_url = redis_url
        self._postgres = database_url.startswith("postgresql")
        self._engine = create_engine(database_url) if self._postgres else None
        self._before: dict[str, float] = {}
        self._backends: dict[int, float] = {}
        self.seconds: dict[str, float] = {}

    async def _postgres_pids(self) -> list[int]:
        if self._engine is None:
            return []
        async with reading(self._engine) as conn:
            found = await conn.execute(_BACKENDS, {"watch": WATCH_APPLICATION})
            return [int(pid) for (pid,) in found]

    async def _read(self) -> tuple[dict[str, float], dict[int, float]]:
        if not _PROC:
            return {}, {}
        now = {
            part: sum(process_seconds(pid) for pid in pids) for part, pids in self._parts.items()
        }
        now["redis"] = await _redis_seconds(self._redis_url)
        return now, {pid: process_seconds(pid) for pid in await self._postgres_pids()}

    async def __aenter__(self) -> CpuMeter:
        self._before, self._backends = await self._read()
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        try:
            after, backends = await self._read()
        finally:
            if self._engine is not None:
                await self._engine.dispose()
        self.seconds = {part: after[part] - self._before.get(part, 0.0) for part in after}
        if self._postgres:
            # Backends opened meanwhile count from zero; one closed meanwhile is lost (pools
            # keep theirs open).
            self.seconds["postgres"] = sum(
                seconds - self._backends.get(pid, 0.0) for pid, seconds in backends.items()
            )

    def per_change_ms(self, changes: int) -> dict[str, float]:
        return {part: s * 1000 / changes for part, s in self.seconds.items()} if changes else {}


def ringsync_ms(per_change: dict[str, float]) -> float:
    """ringsync's own CPU per change: receiver, workers, PostgreSQL and Redis."""
    return sum(per_change.get(part, 0.0) for part in RINGSYNC_PARTS)


def cores_needed(per_change_ms: float, rate: float) -> float:
    """Cores kept busy by `rate` changes/s at `per_change_ms` of CPU each."""
    return per_change_ms * rate / 1000


def stack_meter(stack: Stack) -> CpuMeter:
    """A meter for a `bench.stack` stack: its receiver, its workers, their database and Redis,
    and this process as the load (the sandbox and the changes; `bench.watch` is left out)."""
    receivers = [pid for pid, name in stack.names.items() if name == "receiver"]
    workers = [pid for pid, name in stack.names.items() if name.startswith("worker")]
    parts = {"receiver": receivers, "workers": workers, "load": [os.getpid()]}
    return CpuMeter(parts, REDIS_URL, stack.settings.database_url)


def describe(per_change: dict[str, float], rate: float) -> str:
    """One line: the CPU a change by part, and the cores ringsync needs at `rate`."""
    parts = "  ".join(f"{part} {ms:.2f}" for part, ms in per_change.items())
    cores = cores_needed(ringsync_ms(per_change), rate)
    return f"CPU a change, ms: {parts}; ringsync's cores at {rate:.0f}/s: {cores:.2f}"
