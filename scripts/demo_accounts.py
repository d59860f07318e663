"""The demo's two-account step: a second sandbox account is added with `ringsync accounts add`,
put in a 429 storm, and bulk-changed; the first account's change is mirrored at once all the
same, because each account has its own rate-limit budget and accounts take turns in the queue."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from scripts.cli import Failure
from workers.ringcentral.budget import Budget

if TYPE_CHECKING:
    from scripts.demo import Expected, Story

# Every read of a user or of the user list in the stormy account is answered 429.
STORM = {
    "GET /restapi/v1.0/account/*/extension/*": 429,
    "GET /restapi/v1.0/account/*/extension": 429,
}
BULK = 20
# Only how long to wait before calling it a failure: on a busy machine the steps take longer.
WITHIN = 60.0


async def two_accounts(s: Story) -> Expected:
    second = await _add_second_account(s)
    query = f"?account={second}"
    await s.control("POST", f"/faults{query}", {"refuse": STORM})
    await s.control(
        "POST", f"/users/bulk{query}", {"count": BULK, "fields": {"department": "Storm"}}
    )
    await s.control("POST", f"/drain{query}")
    penalty = await _penalised(s, second)
    s.console.print(
        f"account [bold]{second}[/] is in a 429 storm: RingCentral answers every read with 429, "
        f"so its {BULK} changed users wait out their account's own penalty "
        f"({penalty:.0f} s left), holding no worker and no other account's budget"
    )
    heard = {event.extension_id for event in s.stack.sink.events}
    users = await s.control("GET", "/users")
    target = next(str(u["extension_id"]) for u in users if str(u["extension_id"]) not in heard)
    started = time.monotonic()
    await s.control("PATCH", f"/users/{target}", {"department": "Sales"})
    await _mirrored(s, target, "Sales")
    s.console.print(
        f"meanwhile account [bold]{s.account_id}[/]'s change of user {target} was mirrored in "
        f"[bold]{time.monotonic() - started:.2f} s[/]"
    )
    storm = await s.d.store.list_users(account_id=second)
    waiting = sum(1 for user in storm if user.row.department != "Storm")
    s.console.print(
        f"account {second}: {waiting} of {BULK} changes still wait for RingCentral, none lost "
        "(they are marked dirty and land once its penalty is over)"
    )
    await s.control("POST", f"/faults{query}", {"refuse": {}})
    return [("user.updated", target)]


async def _add_second_account(s: Story) -> str:
    listed = await s.control("GET", "/accounts")
    if len(listed) < 2:
        raise Failure("the demo's sandbox serves one account only")
    second = listed[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.cli", "accounts", "add", "--jwt-stdin",
        "--name", "Second Co", "--server-url", s.stack.sandbox_url, "--json",
        env=s.stack.env, cwd=s.stack.directory,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(second["jwt"].encode())
    if process.returncode != 0:
        raise Failure(f"ringsync accounts add failed: {err.decode().strip()}")
    account_id = str(orjson.loads(out)["account_id"])
    s.console.print(
        f"`ringsync accounts add --jwt-stdin` registered account [bold]{account_id}[/] "
        "(its JWT stored encrypted; its own subscription and verification token)"
    )
    info = await s.control("GET", f"/info?account={account_id}")
    await _until(
        lambda: _count(s, account_id, int(info["users"])), f"account {account_id}'s baseline"
    )
    s.console.print(f"account {account_id}: baseline of {info['users']} users mirrored")
    return account_id


async def _count(s: Story, account_id: str, wanted: int) -> bool:
    return await s.d.store.count_users(account_id) >= wanted


async def _penalised(s: Story, account_id: str) -> float:
    """Seconds of penalty the stormy account has left, once its first 429 came back (single
    reads are Light requests, a listing a Medium one)."""
    settings = s.d.settings.for_account(account_id, server_url=s.stack.sandbox_url, jwt="")
    budget = Budget(settings, s.d.redis)
    left = 0.0

    async def paused() -> bool:
        nonlocal left
        groups = (await budget.snapshot()).values()
        penalised = [group for group in groups if group.penalty_until is not None]
        left = max((group.available_in for group in penalised), default=0.0)
        return bool(penalised)

    await _until(paused, f"account {account_id}'s first 429")
    return left


async def _mirrored(s: Story, extension_id: str, department: str) -> bool:
    async def done() -> bool:
        user = await s.d.store.get_user(s.account_id, extension_id)
        return user is not None and user.department == department

    await _until(done, f"user {extension_id}'s change")
    return True


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise Failure(f"{what} did not happen within {WITHIN:.0f} s")
