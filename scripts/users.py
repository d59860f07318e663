"""`ringsync users [--state S] [--inactive-for 30d] [--json]`: the mirror, every known user
(deprovisioned included); `--inactive-for` keeps those with no call made or answered in the window
(never-active ones only when created before it)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import orjson

from events.settings import Settings
from scripts.db import run_against_store
from scripts.licences import span
from workers.activity.report import idle
from workers.activity.store import created_at
from workers.lifecycle import State
from workers.store.identity import MirroredUser, Store
from workers.store.listing import user_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("users", help="list the mirrored users")
    parser.add_argument(
        "--state", choices=[s.value for s in State], help="only users in this state"
    )
    parser.add_argument(
        "--inactive-for",
        type=span,
        metavar="30d",
        help="only users with no call made or answered for this many days",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    users = run_against_store(settings.database_url, _load(settings.database_url, args.state))
    if args.inactive_for is not None:
        cutoff = datetime.now(UTC) - args.inactive_for
        users = [
            user
            for user in users
            if idle(user.last_activity_at, created_at(user.row.raw, user.row.first_seen_at), cutoff)
        ]
    if args.json:
        out = sys.stdout.buffer
        for user in users:
            out.write(orjson.dumps(user_json(user), option=orjson.OPT_APPEND_NEWLINE))
        out.flush()
    else:
        _print_table(users)
    return 0


async def _load(database_url: str, state: str | None) -> list[MirroredUser]:
    store = await Store.open(database_url)
    try:
        return await store.list_users(state=state)
    finally:
        await store.close()


def _print_table(users: list[MirroredUser]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(users)} users", title_justify="left")
    headings = ("extension", "number", "name", "email", "status", "state", "updated", "activity")
    for heading in headings:
        table.add_column(heading)
    for user in users:
        row = user.row
        name = " ".join(part for part in (row.first_name, row.last_name) if part)
        table.add_row(
            user.extension_id,
            row.extension_number or "",
            name,
            row.email or "",
            row.status or "",
            str(row.state),
            row.updated_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            "" if user.last_activity_at is None else f"{user.last_activity_at:%Y-%m-%d %H:%M}Z",
        )
    console = Console()
    if not console.is_terminal:
        # Piped into a file or another program: never squeeze or cut a cell.
        console = Console(width=1_000)
    console.print(table)
