"""`ringsync status [--json]`: is the mirror healthy, and does a person need to look?

Shows the queue (depth, age of the oldest waiting job, jobs in progress), the last notification
received, our subscription and its remaining life, the last gap, dead letters, resync plans
waiting for approval, the rate-limit budget per group, the deliveries, and which users'
deliveries are blocked behind a dead one (`blocked`: user, endpoint, the dead delivery's id and
its reason). Exit 1 when a human should look (subscription missing or not Active, dead letters,
a blocked delivery, an approval pending, a job waiting longer than 5 minutes); the report is
printed either way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from events.settings import Settings
from scripts.connections import open_redis, open_store
from workers.status import build_report


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status", help="health of the mirror; exit 1 if a human should look"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    report = asyncio.run(collect(settings))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_APPEND_NEWLINE))
        sys.stdout.flush()
    else:
        from scripts.status_view import print_report

        print_report(report)
    return 1 if report["attention"] else 0


async def collect(settings: Settings) -> dict[str, Any]:
    """Everything `status` shows (see `workers.status`)."""
    async with open_redis(settings) as redis:
        store = await open_store(settings)
        try:
            return await build_report(settings, redis, store)
        finally:
            await store.close()
