"""`ringsync licences [--inactive-for 30d] [--json]`: live users who made or answered no call in
the window (never-active ones created before it, with their creation date), every account.

`--json` prints one object per line and nothing else on stdout; how many licences could be
reclaimed goes to stderr then, and under the table otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from events.settings import Settings
from scripts.db import run_against_store
from workers.activity.report import candidate_json, candidates, parse_span
from workers.activity.store import Candidate
from workers.store.identity import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("licences", help="live users with no recent activity")
    parser.add_argument(
        "--inactive-for",
        type=span,
        default=timedelta(days=30),
        metavar="30d",
        help="no call made or answered for this many days (default 30d)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def span(value: str) -> timedelta:
    try:
        return parse_span(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    cutoff = datetime.now(UTC) - args.inactive_for
    found = run_against_store(settings.database_url, _load(settings.database_url, cutoff))
    per_account = Counter(c.account_id for c in found)
    tally = f"{len(found)} licences could be reclaimed" + "".join(
        f"; account {account}: {count}" for account, count in sorted(per_account.items())
    )
    if args.json:
        out = sys.stdout.buffer
        for candidate in found:
            out.write(orjson.dumps(candidate_json(candidate), option=orjson.OPT_APPEND_NEWLINE))
        out.flush()
        print(tally, file=sys.stderr)
        return 0
    _print_table(found, args.inactive_for.days)
    print(tally)
    return 0


async def _load(database_url: str, cutoff: datetime) -> list[Candidate]:
    store = await Store.open(database_url)
    try:
        return await candidates(store, cutoff)
    finally:
        await store.close()


def _print_table(found: list[Candidate], days: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"no activity for {days} days", title_justify="left")
    for heading in ("account", "extension", "email", "state", "last activity", "created"):
        table.add_column(heading)
    for c in found:
        last = "never" if c.last_activity_at is None else f"{c.last_activity_at:%Y-%m-%d %H:%M}Z"
        table.add_row(
            c.account_id, c.extension_id, c.email or "", c.state, last, f"{c.created_at:%Y-%m-%d}"
        )
    console = Console()
    if not console.is_terminal:
        # Piped into a file or another program: never squeeze or cut a cell.
        console = Console(width=1_000)
    console.print(table)
