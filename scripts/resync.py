"""`ringsync resync [--dry-run | --approve PLAN_ID] [--json]`: a full reconciliation, now, in this
process; or, with `--approve`, the deprovisionings of one held plan and nothing else.

A progress bar on a terminal (stderr), a summary table at the end (stdout). Exit 1 with one
clear line when the safeguard held deprovisionings back (the line names the plan to approve),
when reading RingCentral failed part-way (nobody was deprovisioned then), or when the plan named
by `--approve` is unknown, already approved or stale (nothing was applied then).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from events.settings import Settings
from scripts.cli import Failure
from scripts.connections import account_argument, open_account_deps
from workers.context import LISTING_WAIT
from workers.resync.run import PlanRefused, Summary, approve_plan, run_resync
from workers.ringcentral.errors import RingCentralError

# What a plan id may look like (a resync's id); anything else is a usage error, not a lookup.
_PLAN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("resync", help="reconcile every user now (full listing)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="compute and print the changes, write nothing"
    )
    mode.add_argument(
        "--approve",
        metavar="PLAN_ID",
        type=_plan_id,
        help="apply exactly the deprovisionings of this held plan (see `ringsync status`), "
        "each confirmed again by a single read",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON document"
    )
    account_argument(parser)
    parser.set_defaults(run=run)


def _plan_id(value: str) -> str:
    if not _PLAN_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a plan id (see `ringsync status`)")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    summary = asyncio.run(
        _resync(settings, dry_run=args.dry_run, approve=args.approve, account=args.account)
    )
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary.as_dict(), option=orjson.OPT_APPEND_NEWLINE))
        sys.stdout.flush()
    else:
        print_summary(summary, output_console())
    if summary.plan_id is not None:
        raise Failure(safeguard_message(summary))
    return 0


def safeguard_message(summary: Summary) -> str:
    return (
        f"safeguard: {summary.held} of {summary.live_before} users would be deprovisioned "
        f"({summary.ratio:.0%} > {summary.limit:.0%}); none was deprovisioned. "
        f"Check them (`ringsync status`), then approve exactly this plan: "
        f"`ringsync resync --approve {summary.plan_id}`"
    )


async def _resync(
    settings: Settings, *, dry_run: bool, approve: str | None, account: str | None = None
) -> Summary:
    errors = Console(stderr=True)

    def waiting() -> None:
        errors.print("another resync is running: waiting for it to finish", style="yellow")

    async with open_account_deps(settings, account, max_wait=LISTING_WAIT) as d:
        try:
            if approve is not None:
                return await approve_plan(d, approve, on_wait=waiting)
            with _progress(errors) as bar:
                task = bar.add_task("listing users", total=None)

                def advance(count: int) -> None:
                    bar.advance(task, count)

                def expect(total: int) -> None:
                    bar.update(task, total=total)

                return await run_resync(
                    d, progress=advance, expected=expect, dry_run=dry_run, on_wait=waiting
                )
        except PlanRefused as exc:
            raise Failure(str(exc)) from None
        except RingCentralError as exc:
            raise Failure(
                f"reading RingCentral failed ({exc}); what was read so far was applied, "
                "nobody was deprovisioned; run it again"
            ) from None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def output_console() -> Console:
    console = Console()
    # Piped into a file or another program: never squeeze or cut a cell.
    return console if console.is_terminal else Console(width=200)


def print_summary(summary: Summary, console: Console) -> None:
    """The changes (dry run, or deprovisionings held back), then the figures."""
    if summary.changes and (summary.dry_run or summary.plan_id is not None):
        title = "changes this resync would make" if summary.dry_run else "held for approval"
        changes = Table(title=title, title_justify="left")
        for heading in ("extension", "name", "before", "after", "events", "fields"):
            changes.add_column(heading)
        for change in summary.changes:
            changes.add_row(
                change.extension_id,
                change.name,
                change.before or "",
                change.after or "",
                ", ".join(change.events),
                ", ".join(change.fields),
            )
        if summary.more_changes:
            changes.caption = f"… and {summary.more_changes} more"
        console.print(changes)
    if summary.approved_plan is not None:
        title = f"approval of plan {summary.approved_plan}"
    else:
        title = f"{'dry run' if summary.dry_run else 'resync'} {summary.resync_id}"
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("account", summary.account_id)
    if summary.approved_plan is None:
        table.add_row("listed users", str(summary.listed))
        table.add_row("pages", str(summary.pages))
        table.add_row("baseline", "yes" if summary.baseline else "no")
    table.add_row("users changed" if not summary.dry_run else "would change", str(summary.changed))
    for name, count in sorted(summary.events.items()):
        table.add_row(f"  {name}", str(count))
    table.add_row(
        "deprovisionings found",
        f"{summary.planned_deprovisions} of {summary.live_before} ({summary.ratio:.1%})",
    )
    if summary.plan_id is not None:
        table.add_row("held for approval", f"{summary.held} (plan {summary.plan_id})")
    elif summary.would_hold:
        table.add_row(
            "safeguard", f"would hold them (> {summary.limit:.0%}, at least {summary.floor})"
        )
    if summary.absent:
        table.add_row("absent from the listing", f"{summary.absent} (each read on its own)")
    if summary.found_live:
        table.add_row("  found live, kept", str(summary.found_live))
    if summary.settled:
        verdict = "approved" if summary.approved_plan else "superseded"
        table.add_row(f"pending plans {verdict}", str(summary.settled))
    console.print(table)
