"""`ringsync worker` as a process: it stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_the_worker_stops_on_a_signal(
    redis_url: str, namespace: str, tmp_path: Path, signum: int
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RINGSYNC_REDIS_NAMESPACE": namespace,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
        "RINGSYNC_METRICS_PORT": "0",
        "RINGSYNC_LOG_FORMAT": "json",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.cli", "worker",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert worker.stderr is not None
    async with asyncio.timeout(20):
        while b"worker started" not in await worker.stderr.readline():
            pass
    worker.send_signal(signum)
    async with asyncio.timeout(15):
        await worker.communicate()
    assert worker.returncode == 0
