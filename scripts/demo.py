"""`ringsync demo [--no-interactive]`: the whole pipeline on this machine, against the sandbox.

Starts a sandbox account, the receiver, a worker and an offboarding sink (see
`scripts.demo_stack`), creates the subscription through the real handshake, takes the baseline,
then plays a short story through the sandbox's control API — hire, rename, suspend, reactivate,
delete, a bulk change, a notification lost on the way that the resync repairs, and a second
account in a 429 storm while the first one's change arrives at once (`scripts.demo_accounts`) —
waiting after each step until the mirror equals the sandbox and downstream heard the events.
Exit 1 with one line when a step does not converge.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from events.settings import Settings
from scripts.cli import Failure
from scripts.connections import open_deps
from scripts.demo_accounts import two_accounts
from scripts.demo_stack import Stack, running_stack
from workers.context import LISTING_WAIT, Deps
from workers.lifecycle import state_for
from workers.resync.run import run_resync
from workers.subscription.renewal import ensure_subscription

USERS = 20
STEP_WITHIN = 20.0
Expected = list[tuple[str, str]]  # (event type, extension id)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on this machine against the sandbox"
    )
    parser.add_argument(
        "--no-interactive", action="store_true", help="no pauses or prompts (for CI)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=110)
    if "log_level" not in settings.model_fields_set:
        logging.getLogger().setLevel(logging.WARNING)  # the story is on stdout; keep stderr quiet
    asyncio.run(_demo(settings, console, interactive=not args.no_interactive))
    return 0


async def _demo(settings: Settings, console: Console, *, interactive: bool) -> None:
    began = time.monotonic()
    console.rule("[bold]ringsync demo")
    console.print("starting two sandbox accounts, the receiver, a worker and an offboarding sink…")
    async with (
        running_stack(settings, users=USERS) as stack,
        httpx.AsyncClient(base_url=stack.sandbox_url, timeout=10) as http,
        open_deps(stack.settings, max_wait=LISTING_WAIT) as d,
    ):
        story = Story(stack, http, d, console, interactive)
        await story.setup()
        for step in STEPS:
            await story.play(step)
        await story.summary(time.monotonic() - began)


@dataclass(frozen=True)
class Step:
    title: str
    act: Callable[[Story], Awaitable[Expected]]


class Story:
    def __init__(
        self, stack: Stack, http: httpx.AsyncClient, d: Deps, console: Console, interactive: bool
    ) -> None:
        self.stack, self.http, self.d, self.console = stack, http, d, console
        self.interactive = interactive
        self.account_id = ""
        self.hired = ""
        self.shown = 0

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"/sandbox{path}", json=body)
        if response.status_code >= 400:
            raise Failure(f"sandbox {method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    async def setup(self) -> None:
        info = await self.control("GET", "/info")
        self.account_id = str(info["account_id"])
        self.console.print(
            f"sandbox account [bold]{self.account_id}[/] with {info['users']} users at "
            f"{self.stack.sandbox_url}; receiver {self.stack.settings.webhook_url}; "
            f"Redis namespace {self.stack.settings.redis_namespace}"
        )
        outcome = await ensure_subscription(self.d)
        sub = outcome.subscription
        if sub is None:
            raise Failure(f"no subscription could be made: {outcome.reason}")
        self.console.print(
            f"subscription [bold]{sub.id}[/] is {sub.status} (created through the "
            "Validation-Token handshake with the receiver)"
        )
        summary = await run_resync(self.d)
        self.console.print(
            f"baseline resync: {summary.listed} users mirrored from {summary.pages} list page(s), "
            "no events (a baseline is not news)"
        )

    async def play(self, step: Step) -> None:
        await self.pause()
        self.console.rule(f"[bold cyan]{step.title}")
        expected = await step.act(self)
        touched = [ext for _, ext in expected]
        await self.converge(step.title, expected)
        await self.show(touched)

    async def pause(self) -> None:
        if not self.interactive:
            return
        if sys.stdin.isatty():
            await asyncio.to_thread(input, "press Enter for the next step… ")
        else:
            await asyncio.sleep(1.0)

    async def differences(self) -> list[str]:
        truth = {u["extension_id"]: u for u in await self.control("GET", "/users")}
        users = await self.d.store.list_users(account_id=self.account_id)
        mirror = {u.extension_id: u.row for u in users}
        problems = []
        for ext, user in truth.items():
            state = state_for(user["status"])
            want = (state.value if state else None, user["last_name"], user["department"])
            row = mirror.get(ext)
            got = (row.state.value, row.last_name, row.department) if row else None
            if got != want and not (row is None and want[0] == "deprovisioned"):
                problems.append(f"{ext}: mirror {got} != sandbox {want}")
        for ext, row in mirror.items():
            if ext not in truth and row.state.value != "deprovisioned":
                problems.append(f"{ext}: deleted in the sandbox, {row.state.value} here")
        return problems

    async def converge(self, title: str, expected: Expected) -> None:
        started = time.monotonic()
        deadline = started + STEP_WITHIN
        missing: Expected = expected
        problems: list[str] = []
        while time.monotonic() < deadline:
            await self.control("POST", "/drain")
            problems = await self.differences()
            got = {(e.type, e.extension_id) for e in self.stack.sink.events}
            missing = [pair for pair in expected if pair not in got]
            if not problems and not missing:
                self.console.print(
                    f"[green]converged[/] in {time.monotonic() - started:.1f} s: the mirror "
                    "matches the sandbox and downstream heard every event"
                )
                return
            await asyncio.sleep(0.1)
        detail = "; ".join(problems[:3] + [f"no {t} for {e}" for t, e in missing[:3]])
        raise Failure(f"step '{title}' did not converge within {STEP_WITHIN:.0f} s: {detail}")

    async def show(self, touched: list[str]) -> None:
        wanted = set(touched)
        rows = Table(title="mirror", title_justify="left")
        for heading in ("extension", "name", "email", "department", "status", "state"):
            rows.add_column(heading)
        for user in await self.d.store.list_users(account_id=self.account_id):
            if user.extension_id not in wanted:
                continue
            r = user.row
            rows.add_row(
                user.extension_id,
                f"{r.first_name or ''} {r.last_name or ''}".strip(),
                r.email or "",
                r.department or "",
                r.status or "(gone)",
                f"[bold]{r.state.value}[/]",
            )
        self.console.print(rows)
        fresh = self.stack.sink.events[self.shown :]
        self.shown = len(self.stack.sink.events)
        events = Table(
            title="offboarding events received (signature verified)", title_justify="left"
        )
        for heading in ("event", "extension", "name", "state", "seq"):
            events.add_column(heading)
        for event in fresh:
            events.add_row(
                event.type, event.extension_id, event.name, event.state, str(event.sequence)
            )
        self.console.print(events)

    async def summary(self, seconds: float) -> None:
        counters = await self.control("GET", "/counters")
        requests = sum(counters.get("requests", {}).values())
        throttled = sum(counters.get("throttled", {}).values())
        table = Table(title="summary", title_justify="left", show_header=False)
        table.add_column("what")
        table.add_column("value", justify="right")
        table.add_row("events delivered", str(len(self.stack.sink.events)))
        table.add_row("signatures refused", str(self.stack.sink.rejected))
        table.add_row("API requests used", f"{requests} ({throttled} throttled)")
        table.add_row("time", f"{seconds:.1f} s")
        self.console.rule("[bold]done")
        self.console.print(table)
        self.console.print("[green]demo complete:[/] every step converged; stopping everything")


async def _hire(s: Story) -> Expected:
    user = await s.control(
        "POST", "/users",
        {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
         "department": "Engineering"},
    )  # fmt: skip
    s.hired = str(user["extension_id"])
    return [("user.created", s.hired)]


async def _rename(s: Story) -> Expected:
    await s.control("PATCH", f"/users/{s.hired}", {"last_name": "King"})
    return [("user.updated", s.hired)]


async def _suspend(s: Story) -> Expected:
    await s.control("POST", f"/users/{s.hired}/disable", {})
    return [("user.suspended", s.hired)]


async def _reactivate(s: Story) -> Expected:
    await s.control("POST", f"/users/{s.hired}/enable", {})
    return [("user.reactivated", s.hired)]


async def _delete(s: Story) -> Expected:
    await s.control("DELETE", f"/users/{s.hired}")
    return [("user.deprovisioned", s.hired)]


async def _bulk(s: Story) -> Expected:
    changed = await s.control(
        "POST", "/users/bulk", {"count": 10, "fields": {"department": "Research"}}
    )
    return [("user.updated", str(ext)) for ext in changed["ids"]]


async def _lost(s: Story) -> Expected:
    users = await s.control("GET", "/users")
    victim = str(users[-1]["extension_id"])
    await s.control("POST", "/faults", {"drop": 1.0})
    await s.control("POST", f"/users/{victim}/disable", {})
    await s.control("POST", "/drain")
    await s.control("POST", "/faults", {"drop": 0.0})
    row = await s.d.store.get_user(s.account_id, victim)
    state = row.state.value if row else "missing"
    s.console.print(
        f"user {victim} was suspended, but the notification was dropped on the way: the mirror "
        f"still says [bold]{state}[/]. A resync (daily, or after a gap) repairs it — run now:"
    )
    summary = await run_resync(s.d)
    s.console.print(
        f"resync {summary.resync_id}: {summary.listed} users listed, {summary.changed} changed, "
        f"events {summary.events}"
    )
    return [("user.suspended", victim)]


STEPS = (
    Step("1. hire: Ada Lovelace joins Engineering", _hire),
    Step("2. rename: Ada Lovelace becomes Ada King", _rename),
    Step("3. suspend: Ada's account is disabled", _suspend),
    Step("4. reactivate: Ada is back", _reactivate),
    Step("5. delete: Ada leaves the company", _delete),
    Step("6. bulk change: 10 users move to Research", _bulk),
    Step("7. a lost notification, repaired by a resync", _lost),
    Step("8. two accounts: one in a 429 storm, the other's change at once", two_accounts),
)
