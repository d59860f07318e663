"""`ringsync replay (--since T [--until T] | --extension ID | --dead-letters | --outbox
[--endpoint URL] [--skip ID]) [--type T] [--dry-run]`: re-run stored work.

- `--since T [--until T]`: re-expand the notifications received in that range and schedule
  reconciles for their users (`--extension ID` keeps only that user; `--type` one kind of
  notification: extension-list, extension-info, directory, ...).
- `--extension ID` alone: schedule that user's reconcile.
- `--dead-letters`: re-run dead-lettered jobs (`--type` one job name) and mark them replayed.
- `--outbox`: send every delivery not yet done now (`--since`, `--extension`, `--type` narrow).
  `--endpoint URL` narrows to one configured endpoint and subscribes it again if it answered
  410: what it missed since is sent too, in order. A dead delivery holds its user's later
  events for that endpoint back; replayed, it is sent before them.
- `--outbox --skip ID`: give up dead delivery ID (as `ringsync status` shows it) for good, so
  the events of that user waiting behind it flow.

This command only queues the work: a running `ringsync worker` carries it out.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from events.settings import Settings
from scripts.cli import Failure
from scripts.connections import account_argument, open_account_deps, open_deps
from workers.context import Deps
from workers.delivery.deliver import endpoints, label
from workers.delivery.holds import NotSkippable
from workers.delivery.outbox import replay_outbox, skip_delivery
from workers.delivery.store import DeliveryStore
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
    parser.add_argument(
        "--outbox",
        action="store_true",
        help="send undelivered events now (a dead one before those that waited behind it)",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="--outbox: only this endpoint; one that answered 410 is subscribed again",
    )
    parser.add_argument(
        "--skip",
        type=int,
        metavar="ID",
        help="--outbox: give up dead delivery ID (see `ringsync status`) so the later events "
        "of its user flow",
    )
    parser.add_argument(
        "--type",
        metavar="T",
        help="--since: notification kind (extension_list, extension_info, directory); "
        "--dead-letters: job name; --outbox: event type (user.deprovisioned)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count, queue nothing")
    account_argument(parser)
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
    if args.skip is not None and not args.outbox:
        parser.error("--skip goes with --outbox")
    if args.skip is not None and (args.since or args.extension or args.type or args.endpoint):
        parser.error("--outbox --skip ID is used alone (with --dry-run)")
    if args.endpoint is not None:
        if not args.outbox:
            parser.error("--endpoint goes with --outbox")
        if args.endpoint not in endpoints(settings):
            known = ", ".join(label(e) for e in endpoints(settings)) or "none configured"
            raise Failure(
                f"{label(args.endpoint)} is not a configured endpoint"
                f" (RINGSYNC_OFFBOARDING_URLS or the hook): {known}"
            )
    print(asyncio.run(_replay(args, settings)))
    return 0


async def _replay(args: argparse.Namespace, settings: Settings) -> str:
    # One user's reconcile reads RingCentral: it needs to know which account's.
    one_user = args.extension is not None and not (args.since or args.outbox or args.dead_letters)
    opened = open_account_deps(settings, args.account) if one_user else open_deps(settings)
    async with opened as d:
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
    if args.skip is not None:
        return await _skip(d, args.skip, dry_run=args.dry_run)
    endpoint: str | None = args.endpoint
    was_gone = bool(endpoint and await DeliveryStore(d.store.engine).unsubscribed([endpoint]))
    count = await replay_outbox(
        d,
        since=args.since,
        type=args.type,
        extension_id=args.extension,
        endpoint=args.endpoint,
        dry_run=args.dry_run,
    )
    to = f" to {label(endpoint)}" if endpoint else ""
    gone = " (it answered 410 Gone: unsubscribed)" if was_gone else ""
    if args.dry_run:
        return f"would send {count} undelivered events{to}{gone}"
    again = " (it had answered 410 Gone: it is subscribed again)" if was_gone else ""
    return f"sending {count} undelivered events{to}{again}; {WORKER_NOTE}"


async def _skip(d: Deps, delivery_id: int, *, dry_run: bool) -> str:
    try:
        hold = await skip_delivery(d, delivery_id, dry_run=dry_run)
    except NotSkippable as exc:
        raise Failure(str(exc)) from None
    what = (
        f"delivery {delivery_id} ({hold.type} of user {hold.extension_id} to "
        f"{label(hold.endpoint)})"
    )
    if dry_run:
        return f"would skip {what}; {hold.waiting} later events of that user would flow"
    waiting = f"its user's {hold.waiting} later events are {WORKER_NOTE}"
    return f"skipped {what}: it will never be sent; {waiting}"
