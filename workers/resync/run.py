"""Full reconciliation: list every extension, reconcile each, infer deletions from a complete list.

Used after a gap (missed notifications), on a schedule, and by `ringsync resync`. Pages stream
through the same decision and transaction as single reconciles, one page at a time; only the
ids seen are kept, so memory does not grow with the raw records. The first resync of an account
is its baseline: no `user.created` unless RINGSYNC_EMIT_BASELINE.

Nobody is deprovisioned on hearsay. A paged listing skips a user whenever another is deleted
mid-read (everyone after it moves up one place, one of them onto a page already read), so an
absence is only a reason to ask. Once the listing has completed, each live stored user it did
not show is read on its own (a Light call, budgeted like any other): a 404 `CMN-102`, an
`Unassigned` status or a type we do not mirror confirms the deprovisioning, and a live answer is
reconciled like any read. Users a page shows as Unassigned need no read: that is RingCentral's
own answer. So only absent users cost a read, and only their ids are kept. If the listing or a
confirming read fails, what was read so far is applied and nobody is deprovisioned. A dry run
confirms too (reads are not writes), so it reports what a real run would do.

Deprovisionings wait until the end, for the safeguard: when the confirmed deprovisionings exceed
RINGSYNC_MAX_DEPROVISION_RATIO of the account's users that are not already deprovisioned and
number at least RINGSYNC_MAX_DEPROVISION_MIN, none of them is applied or announced; the plan is
stored (`resync_plans`, pending). A mass deletion is more often a broken upstream or a wrong
account than a real layoff; one absence in a small account is not worth a person's time.
`approve_plan` (`ringsync resync --approve PLAN_ID`) applies exactly that plan's deprovisionings,
each confirmed again by a single read, unless a later complete listing superseded the plan.

Only one resync writes at a time per deployment (a Redis lock); a second one waits, then runs.
A dry run takes no lock and writes nothing: it decides against the stored rows and reports.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

from events.queue import ROLES_SWEEP
from workers.context import Deps, listing_deps
from workers.failures import guarded
from workers.lock import RedisLock
from workers.resync.report import Change, Summary
from workers.resync.safeguard import PlanRefused, approvable
from workers.resync.store import find_plan, pending_plans
from workers.resync.sweep import Expected, Progress, ResyncPass
from workers.store.engine import refresh_statistics

__all__ = ["Change", "PlanRefused", "Summary", "approve_plan", "resync", "run_resync"]

log = logging.getLogger(__name__)

LOCK_TTL = 120.0


async def run_resync(
    d: Deps,
    *,
    progress: Progress | None = None,
    expected: Expected | None = None,
    dry_run: bool = False,
    per_page: int = 1000,
    on_wait: Callable[[], None] | None = None,
) -> Summary:
    """Reconcile the whole account now (waiting for any resync already running).

    `progress(n)` is called after each page with its record count, `expected(total)` once when
    the first page tells the account's size. Raises the client's error when the listing or a
    confirming read fails (after applying what was read so far, and no deprovisioning).
    """
    summary = Summary(resync_id=_new_id(), dry_run=dry_run)
    run = ResyncPass(d, summary, progress, expected, per_page)
    if dry_run:
        await run.execute()
    else:
        async with _exclusive(d, on_wait):
            await run.execute()
        # The mirror may have just grown from nothing: let SQLite plan with its new shape.
        await refresh_statistics(d.store.engine)
        # No notification says roles changed, so whatever a resync catches up on, so do roles.
        job_id = d.settings.key("roles", "sweep")
        await d.queue.enqueue(ROLES_SWEEP, "resync", job_id=job_id)
    return summary


async def approve_plan(
    d: Deps, plan_id: str, *, on_wait: Callable[[], None] | None = None
) -> Summary:
    """Apply exactly the deprovisionings of held plan `plan_id`, each confirmed again by a single
    read (someone live again is reconciled, not deprovisioned); no listing is read.

    Raises PlanRefused, having applied nothing, when the plan is unknown, of another account,
    already approved, or superseded by a later listing.
    """
    summary = Summary(resync_id=_new_id(), approved_plan=plan_id)
    account_id = await d.account_id()
    async with _exclusive(d, on_wait):
        # Judged under the lock: a resync that ran while this waited may have superseded it.
        found = await find_plan(d.store, plan_id)
        plan = approvable(plan_id, found, account_id, await pending_plans(d.store, account_id))
        await ResyncPass(d, summary).approve(plan)
    return summary


def _exclusive(d: Deps, on_wait: Callable[[], None] | None) -> RedisLock:
    """The deployment-wide resync lock, waited for as long as the other resync runs."""
    key = d.settings.key("lock", "resync")
    return RedisLock(d.redis, key, ttl=LOCK_TTL, wait=math.inf, on_wait=on_wait)


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


async def resync(ctx: dict[str, Any], reason: str = "schedule", approve: str | None = None) -> str:
    """The worker's resync job (cron, gaps, the API): a full reconciliation, safeguard included;
    with `approve`, the deprovisionings of that held plan only."""

    async def work() -> str:
        async with listing_deps(ctx) as d:
            if approve is not None:
                summary = await approve_plan(d, approve)
                return f"plan {approve} approved: {summary.events}"
            summary = await run_resync(d)
        if summary.plan_id is not None:
            return f"held for approval: plan {summary.plan_id}, {summary.held} deprovisionings"
        return f"{summary.listed} listed, {summary.events}"

    log.info("resync starting", extra={"reason": reason, "job_id": ctx.get("job_id")})
    arguments = {"reason": reason, **({"approve": approve} if approve else {})}
    return await guarded(ctx, "resync", arguments, work)
