"""Roles: who may do what. RingCentral sends no notification when a role is assigned, so roles are
read on their own: a sweep of the account's assignments (a few Medium requests for the whole
account) after every resync and every RINGSYNC_ROLES_EVERY seconds, and one user's roles (a Light
request) when a notification hints `Permissions` or names a user we had never seen.

The sweep lists only extensions that hold a role, so only a listing read to its end says who holds
none: nothing is written until the last page has arrived, and a sweep that fails half-way changes
nothing. Both go through the shared budget like every other call; a sweep waits for budget (a 429
penalty included) rather than spending into it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from workers.context import Deps, deps, listing_deps
from workers.decide import Role, Roles
from workers.delivery.outbox import announce
from workers.failures import guarded
from workers.observe import observe_roles
from workers.reconcile import policy
from workers.ringcentral.resources import Gone

log = logging.getLogger(__name__)

# Users written per transaction once a sweep has completed.
_WRITE_CHUNK = 1000


async def sweep_roles(ctx: dict[str, Any], reason: str = "schedule") -> str:
    """The worker's roles sweep job (cron, after a resync)."""

    async def work() -> str:
        async with listing_deps(ctx) as d:
            listed, changed = await sweep(d, cause=f"roles:{reason}")
        return f"{listed} users with roles listed, {changed} changed"

    return await guarded(ctx, "sweep_roles", {"reason": reason}, work)


async def sweep(d: Deps, *, cause: str, per_page: int = 1000) -> tuple[int, int]:
    """Read every page of the account's role assignments, then write them for every live user
    (a user the listing lacks holds no role). Returns (users listed, users whose roles changed)."""
    account_id = await d.account_id()
    found: dict[str, Roles] = {}
    shared: dict[tuple[tuple[str, str], ...], tuple[Role, ...]] = {}
    started: datetime | None = None
    async for page in d.client.list_assigned_roles(per_page=per_page):
        started = started or page.read_at
        for record in page.records:
            roles = observe_roles(record.roles, page.read_at)
            # 100,000 users hold a handful of distinct role sets: keep one copy of each.
            key = tuple((role["id"], role["name"]) for role in roles.roles)
            found[record.extension_id] = Roles(page.read_at, shared.setdefault(key, roles.roles))
    if started is None:
        return 0, 0
    none = Roles(started, ())
    ids = sorted(await d.store.live_user_ids(account_id))
    changed = 0
    for start in range(0, len(ids), _WRITE_CHUNK):
        chunk = {i: found.get(i, none) for i in ids[start : start + _WRITE_CHUNK]}
        decisions, rows = await d.store.apply_many(account_id, chunk, cause, policy(d))
        changed += sum(1 for decision in decisions.values() if decision.diffs)
        await announce(d, rows)
    log.info("roles swept", extra={"uuid": cause, "listed": len(found), "changed": changed})
    return len(found), changed


async def read_roles(ctx: dict[str, Any], extension_id: str, cause: str | None = None) -> str:
    """The worker's job for one user's roles (a `Permissions` hint, a user never seen)."""
    arguments = {"extension_id": extension_id, "cause": cause}
    return await guarded(ctx, "read_roles", arguments, lambda: read(deps(ctx), extension_id, cause))


async def read(d: Deps, extension_id: str, cause: str | None) -> str:
    found = await d.client.get_assigned_roles(extension_id)
    if isinstance(found, Gone):
        return "gone"  # the extension's own reconcile says what became of it
    observation = observe_roles(found.records, found.read_at)
    account_id = await d.account_id()
    decision, rows = await d.store.reconcile(
        account_id, extension_id, observation, cause, policy(d)
    )
    await announce(d, rows)
    log.info(
        "roles read",
        extra={
            "extension_id": extension_id,
            "uuid": cause,
            "events": [event.value for event in decision.events],
        },
    )
    return "changed" if decision.diffs else "unchanged"
