"""`ringsync activity [--account ID] [--json]`: scan the account's call log now, in this process.

Transient failures (timeouts, 5xx, a 429 penalty) are retried for at most a minute, each try
resuming where the last stopped; then it stops with exit 1, keeping every page it read (the next
scan, or the daily cron, goes on from there). Waiting for rate-limit budget is not a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from events.settings import Settings
from scripts.cli import Failure
from scripts.connections import account_argument, open_account_deps
from workers.activity.scan import ScanRunning, Summary, scan
from workers.context import LISTING_WAIT
from workers.ringcentral.errors import RingCentralError, TransientError

RETRY_FOR = 60.0
PAUSE = 2.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("activity", help="scan the call log for activity now")
    parser.add_argument("--json", action="store_true", help="print the summary as one object")
    account_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    summary = asyncio.run(_scan(settings, args.account))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary.as_dict(), option=orjson.OPT_APPEND_NEWLINE))
        sys.stdout.flush()
        return 0
    resumed = summary.resumed_at_page
    print(
        f"account {summary.account_id}: {summary.records} calls on {summary.pages} pages "
        f"from {summary.date_from:%Y-%m-%d %H:%M} to {summary.date_to:%Y-%m-%d %H:%M} UTC"
        + (f" (resumed at page {resumed})" if resumed else "")
        + f"; {summary.users_moved} users' last activity moved"
    )
    return 0


async def _scan(settings: Settings, account: str | None) -> Summary:
    loop = asyncio.get_running_loop()
    async with open_account_deps(settings, account, max_wait=LISTING_WAIT) as d:
        deadline = loop.time() + RETRY_FOR
        while True:
            try:
                return await scan(d)
            except ScanRunning as exc:
                raise Failure(str(exc)) from None
            except TransientError as exc:
                if loop.time() + PAUSE > deadline:
                    raise Failure(_stopped(exc)) from None
                await asyncio.sleep(PAUSE)
            except RingCentralError as exc:
                raise Failure(_stopped(exc)) from None


def _stopped(exc: RingCentralError) -> str:
    return (
        f"reading the call log failed ({exc}); every page read so far was kept and the next "
        "scan goes on from there"
    )
