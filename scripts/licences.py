"""`ringsync licences [--inactive-for 30d] [--propose suspend --by NAME] [--json]`: live users who
made or answered no call in the window (never-active ones created before it, with their creation
date), every account.

`--json` prints one object per line and nothing else on stdout; how many licences could be
reclaimed goes to stderr then, and under the table otherwise. `--propose suspend` turns each into
a proposed action (its line gains `action_id`, or `refused` with the gate's reason); approving
and running them is the actions' business (`ringsync actions approve`), never this command's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from events.settings import Settings
from scripts.cli import BadSettings, Failure
from scripts.connections import open_deps
from scripts.db import run_against_store
from workers.accounts.registry import acting_for
from workers.activity.reclaim import Proposal, propose_suspensions
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
    parser.add_argument(
        "--propose",
        choices=["suspend"],
        help="propose an action for each (approval rules apply; nothing runs without one)",
    )
    parser.add_argument("--by", metavar="NAME", help="who proposes (with --propose)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def span(value: str) -> timedelta:
    try:
        return parse_span(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.propose and not (args.by or "").strip():
        raise BadSettings("--propose needs --by NAME: who proposes")
    cutoff = datetime.now(UTC) - args.inactive_for
    found = run_against_store(settings.database_url, _load(settings.database_url, cutoff))
    per_account = Counter(c.account_id for c in found)
    tally = f"{len(found)} licences could be reclaimed" + "".join(
        f"; account {account}: {count}" for account, count in sorted(per_account.items())
    )
    proposals: dict[tuple[str, str], Proposal] = {}
    if args.propose and found:
        made = asyncio.run(_propose(settings, found, args.by.strip(), args.inactive_for.days))
        proposals = {(p.candidate.account_id, p.candidate.extension_id): p for p in made}
        refused = sum(1 for p in made if p.refused)
        tally += f"; {len(made) - refused} suspensions proposed, {refused} refused"
    if args.json:
        out = sys.stdout.buffer
        for candidate in found:
            line = candidate_json(candidate)
            made_for = proposals.get((candidate.account_id, candidate.extension_id))
            if made_for is not None:
                line.update(action_id=made_for.action_id, refused=made_for.refused)
            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        out.flush()
        print(tally, file=sys.stderr)
        return 0
    _print_table(found, args.inactive_for.days)
    for made_for in proposals.values():
        if made_for.refused:
            print(f"not proposed: {made_for.candidate.extension_id}: {made_for.refused}")
    print(tally)
    return 0


async def _propose(
    settings: Settings, found: list[Candidate], by: str, days: int
) -> list[Proposal]:
    made: list[Proposal] = []
    async with open_deps(settings) as base:
        for account in sorted({c.account_id for c in found}):
            mine = [c for c in found if c.account_id == account]
            async with acting_for(base, account) as d:
                if d is None:
                    raise Failure(f"no account {account}; `ringsync accounts list` shows them")
                made += await propose_suspensions(d, mine, by=by, days=days)
    return made


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
