"""`ringsync worker [--burst]`: run the arq worker (ingest, reconcile, delivery, crons)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Final

from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from events.settings import Settings
from workers.context import shutdown
from workers.main import build_worker

log = logging.getLogger(__name__)

REDIS_LOST: Final = (RedisConnectionError, RedisTimeoutError, OSError)
# Seconds before running again after Redis went away (the last value repeats).
RESTART_DELAYS: Final = (0.5, 1.0, 2.0, 5.0)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("worker", help="run the job worker")
    parser.add_argument(
        "--burst", action="store_true", help="stop once the queue is empty instead of waiting"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(_main(settings, burst=args.burst))
    return 0


async def _main(settings: Settings, *, burst: bool) -> None:
    """Run the worker; when Redis goes away after it started, run it again once Redis is back.

    arq's worker ends on the first Redis connection error. Queued jobs stay in Redis (AOF), so
    nothing is lost meanwhile, but a worker that exits leaves them waiting for a supervisor. A
    Redis unreachable from the very start is a configuration error: exit with one clear line.
    """
    connected = False
    restarts = 0
    while True:
        # arq's Worker keeps the event loop current at construction and schedules every job on
        # it: it must be built inside the loop that runs it.
        worker = build_worker(settings, burst=burst)
        try:
            # async_run, not main: arq's SIGTERM/SIGINT handler stops the task it started.
            await worker.async_run()
            return
        except asyncio.CancelledError:
            return  # stopped by a signal
        except REDIS_LOST as exc:
            connected = connected or "deps" in worker.ctx
            if burst or not connected:
                raise
            delay = RESTART_DELAYS[min(restarts, len(RESTART_DELAYS) - 1)]
            log.warning(
                "lost Redis (%s); the worker starts again in %.1f s", type(exc).__name__, delay
            )
        finally:
            await _close(worker)
        # arq's signal handlers belonged to the closed worker: let SIGTERM end the wait.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await asyncio.sleep(delay)
        restarts += 1


async def _close(worker: Worker) -> None:
    """Close the worker; with Redis gone, still release the store and the HTTP client."""
    try:
        await worker.close()
    except REDIS_LOST:
        with contextlib.suppress(*REDIS_LOST):
            await shutdown(worker.ctx)
