"""`ringsync actions propose|approve|reject|cancel|list`: act on RingCentral users — suspend,
deprovision, reactivate — with a person's approval (or, for suspends, a written policy).

`propose` prints the new action's id (`--json`: the action); `--dry-run` prints what would
happen (the preflight) and records nothing. A protected or non-User extension, or one not in the
kind's starting state, is refused at once (exit 1). `approve` by the proposer exits 1 and changes
nothing; so does a decision on an action already decided. A running `ringsync worker` carries
approved actions out. `list` covers every account (`--json`: one object per line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from events.settings import Settings
from scripts.cli import Failure
from scripts.connections import account_argument, open_account_deps, open_deps
from scripts.db import run_against_store
from workers.accounts.registry import acting_for
from workers.actions import gate
from workers.actions.action import Action
from workers.actions.decide import ActionState, Kind, reserved
from workers.actions.store import ActionError, ActionStore
from workers.context import Deps
from workers.store.identity import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("actions", help="suspend, deprovision or reactivate users")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    propose = verbs.add_parser("propose", help="propose an action; prints its id")
    propose.add_argument("kind", choices=[k.value for k in Kind])
    who = propose.add_mutually_exclusive_group(required=True)
    who.add_argument("--extension", metavar="ID", help="the user's extension id")
    who.add_argument("--email", metavar="E", help="the mirrored user with this email")
    propose.add_argument("--reason", metavar="TEXT", required=True, type=_text("--reason"))
    propose.add_argument("--by", metavar="NAME", required=True, type=_text("--by"))
    propose.add_argument(
        "--dry-run", action="store_true", help="show what would happen, record nothing"
    )
    propose.add_argument("--json", action="store_true", help="print the action as JSON")
    account_argument(propose)
    propose.set_defaults(run=run_propose)

    for verb, does in (("approve", "approve"), ("reject", "reject"), ("cancel", "withdraw")):
        decide = verbs.add_parser(verb, help=f"{does} a proposed action")
        decide.add_argument("action_id", metavar="ID")
        decide.add_argument("--by", metavar="NAME", required=True, type=_text("--by"))
        decide.add_argument("--json", action="store_true", help="print the action as JSON")
        decide.set_defaults(run=run_decide)

    listing = verbs.add_parser("list", help="actions, oldest first (every account)")
    listing.add_argument("--state", choices=[s.value for s in ActionState])
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=run_list)


def _text(flag: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{flag} must not be empty")
        if flag == "--by" and reserved(value):
            raise argparse.ArgumentTypeError(f"--by {value.strip()}: reserved for the policy")
        return value.strip()

    return check


def _write_json(document: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))
    sys.stdout.flush()


def run_propose(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_propose(args, settings))


async def _propose(args: argparse.Namespace, settings: Settings) -> int:
    kind = Kind(args.kind)
    async with open_account_deps(settings, args.account) as d:
        try:
            extension_id = args.extension or await gate.find_extension(
                d, await d.account_id(), args.email
            )
            if args.dry_run:
                preview = await gate.preview(d, kind, extension_id)
            else:
                action = await gate.propose(d, kind, extension_id, reason=args.reason, by=args.by)
        except ActionError as exc:
            raise Failure(str(exc)) from None
    if args.dry_run:
        if args.json:
            _write_json(preview.as_json())
        else:
            steps = " then ".join(preview.steps) or "nothing"
            print(f"would {kind} extension {extension_id}: {steps} (dry run: nothing recorded)")
        if preview.refused is not None:
            raise Failure(f"extension {extension_id}: {preview.refused}")
        return 0
    if args.json:
        _write_json(action.as_json())
    else:
        print(action.id)
        if action.state is ActionState.APPROVED:
            print(f"approved by {action.approved_by}; a worker will carry it out", file=sys.stderr)
    return 0


def run_decide(args: argparse.Namespace, settings: Settings) -> int:
    verbs: dict[str, Callable[[Deps, str, str], Awaitable[Action]]] = {
        "approve": gate.approve,
        "reject": gate.reject,
        "cancel": gate.cancel,
    }
    action = asyncio.run(_decide(settings, args.action_id, args.by, verbs[args.verb]))
    if args.json:
        _write_json(action.as_json())
    else:
        print(f"action {action.id}: {action.state}")
    return 0


async def _decide(
    settings: Settings, action_id: str, by: str, verb: Callable[[Deps, str, str], Awaitable[Action]]
) -> Action:
    async with _acting_for(settings, action_id) as d:
        try:
            return await verb(d, action_id, by)
        except ActionError as exc:
            raise Failure(str(exc)) from None


@contextlib.asynccontextmanager
async def _acting_for(settings: Settings, action_id: str) -> AsyncIterator[Deps]:
    """The Deps of the account the action belongs to."""
    async with open_deps(settings) as base:
        action = await ActionStore(base.store).get(action_id)
        if action is None:
            raise Failure(f"no action {action_id}; `ringsync actions list` shows them")
        async with acting_for(base, action.account_id) as d:
            if d is None:
                raise Failure(f"action {action_id}: account {action.account_id} is not mirrored")
            yield d


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    state = ActionState(args.state) if args.state else None
    actions = run_against_store(settings.database_url, _load(settings.database_url, state))
    if args.json:
        for action in actions:
            _write_json(action.as_json())
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(actions)} actions", title_justify="left")
    table.add_column("id", no_wrap=True)  # ids are what the other commands take: never cut
    for heading in ("account", "extension", "kind", "state", "by", "approved", "error"):
        table.add_column(heading)
    for a in actions:
        table.add_row(
            a.id, a.account_id, a.extension_id, str(a.kind), str(a.state), a.proposed_by,
            a.approved_by or "", a.error or "",
        )  # fmt: skip
    Console().print(table)
    return 0


async def _load(database_url: str, state: ActionState | None) -> list[Action]:
    store = await Store.open(database_url)
    try:
        return await ActionStore(store).list(state=state)
    finally:
        await store.close()
