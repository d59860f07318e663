"""`ringsync replay (--since T [--until T] | --extension ID | --dead-letters | --outbox)
[--type T] [--dry-run]`: re-run stored work.

- `--since T [--until T]`: re-expand the notifications received in that range and schedule
  reconciles for their users (`--extension ID` keeps only that user; `--type` one kind of
  notification: extension-list, extension-info, directory, ...).
- `--extension ID` alone: schedule that user's reconcile.
- `--dead-letters`: re-run dead-lettered jobs (`--type` one job name) and mark them replayed.
- `--outbox`: send every delivery not yet done now (`--since`, `--extension`, `--type` narrow).

This command only queues the work: a running `ringsync worker` carries it out.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from events.settings import Settings
from scripts.connections import open_deps
from workers.context import Deps
from workers.outbox import replay_outbox
from workers.replay import replay_dead_letters, replay_users, stored_notifications

WORKER_NOTE = "queued: a running `ringsync worker` carries them out"


def timestamp(value: str) -> datetime:
    """ISO 8601 with `Z` or an offset; anything else is bad usage."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-11-23T10:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs Z or an offset such as +00:00")
    return parsed


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-run stored notifications, dead letters or deliveries",
        description="Queues the work; a running `ringsync worker` carries it out.",
    )
    parser.add_argument("--since", type=timestamp, metavar="T", help="notifications from T")
    parser.add_argument("--until", type=timestamp, metavar="T", help="... received before T")
    parser.add_argument("--extension", metavar="ID", help="only this user (or: just this user)")
    parser.add_argument("--dead-letters", action="store_true", help="re-run dead-lettered jobs")
    parser.add_argument("--outbox", action="store_true", help="send undelivered events now")
    parser.add_argument(
        "--type",
        metavar="T",
        help="--since: notification kind (extension_list, extension_info, directory); "
        "--dead-letters: job name; --outbox: event type (user.deprovisioned)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count, queue nothing")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace, settings: Settings) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.until is not None and args.since is None:
        parser.error("--until needs --since")
    if args.dead_letters and (args.outbox or args.since or args.extension):
        parser.error("--dead-letters is used alone (with --type and --dry-run)")
    if not (args.since or args.extension or args.dead_letters or args.outbox):
        parser.error("one of --since, --extension, --dead-letters or --outbox is required")
    if args.since and args.until and args.until <= args.since:
        parser.error("--until must be later than --since")
    print(asyncio.run(_replay(args, settings)))
    return 0


async def _replay(args: argparse.Namespace, settings: Settings) -> str:
    async with open_deps(settings) as d:
        if args.outbox:
            return await _outbox(d, args)
        if args.dead_letters:
            done = await replay_dead_letters(d, job=args.type, dry_run=args.dry_run)
            verb = "would re-run" if args.dry_run else "re-ran"
            line = f"{verb} {done.dead_letters} dead-lettered jobs"
            if done.skipped:
                line += f" ({len(done.skipped)} skipped: {'; '.join(done.skipped[:5])})"
            return line if args.dry_run else f"{line}; {WORKER_NOTE}"
        notifications = 0
        if args.since is not None:
            notifications, ids = await stored_notifications(d, args.since, args.until, args.type)
            if args.extension is not None:
                ids = [i for i in ids if i == args.extension]
        else:
            ids = [args.extension]
        source = f"from {notifications} stored notifications" if args.since else "by request"
        if args.dry_run:
            return f"would schedule reconciles for {len(ids)} users {source}"
        cause = f"replay:{args.since.isoformat() if args.since else args.extension}"
        scheduled = await replay_users(d, ids, cause)
        return f"scheduled reconciles for {scheduled} users {source}; {WORKER_NOTE}"


async def _outbox(d: Deps, args: argparse.Namespace) -> str:
    count = await replay_outbox(
        d, since=args.since, type=args.type, extension_id=args.extension, dry_run=args.dry_run
    )
    if args.dry_run:
        return f"would send {count} undelivered events"
    return f"sending {count} undelivered events; {WORKER_NOTE}"
