"""Reconcile jobs: read an extension's current state and write it through the pure decision.

`reconcile` reads one extension (Light group); `reconcile_batch` reads list pages (Medium group,
1,000 users a request) when many are dirty at once, and queues single jobs for what it missed.
Both go through the same decision and the same one-transaction write, and both record what they
covered (see `workers.coalesce`).

A reconcile that must wait (a listing under way, another worker reading the user) hands over to
a fresh job rather than raising arq's `Retry`: every `Retry` counts a try, and tries are the
failure budget (`workers.failures`), so a long burst of waits followed by one 429 would
dead-letter a reconcile that never failed. The fresh job carries the count of real failures.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from events.queue import RECONCILE, ROLES_READ, ROLES_SWEEP
from workers import stages
from workers.context import Deps, deps, listing_deps
from workers.decide import Policy
from workers.delivery.outbox import announce
from workers.failures import guarded
from workers.observe import observe

log = logging.getLogger(__name__)
T = TypeVar("T")


def policy(d: Deps, *, baseline: bool = False) -> Policy:
    return Policy(
        user_types=frozenset(d.settings.user_types),
        baseline=baseline,
        announce_first_roles=d.settings.emit_baseline,
    )


async def read_roles_soon(d: Deps, extension_ids: list[str], cause: str | None) -> None:
    """Queue a read of each user's roles (see `workers.roles`): RingCentral says nothing when
    they change, so a hint that permissions moved, or a user never seen, is the moment to ask."""
    for extension_id in extension_ids:
        job_id = d.settings.key("roles", extension_id, cause or "")
        await d.queue.enqueue(ROLES_READ, extension_id, cause, job_id=job_id)


async def reconcile(
    ctx: dict[str, Any],
    extension_id: str,
    generation: int = 0,
    cause: str | None = None,
    *,
    waited: int = 0,
    failed: int = 0,
) -> str:
    """Bring one extension up to date, unless a read already covered `generation`.

    `waited` and `failed`: how often the jobs before this one waited and failed (see above).
    """
    arguments = {"extension_id": extension_id, "generation": generation, "cause": cause}
    job = Job(extension_id, generation, cause, waited, failed + ctx.get("job_try", 1) - 1)
    return await guarded(ctx, "reconcile", arguments, lambda: _reconcile(ctx, job), failed=failed)


@dataclass(frozen=True, slots=True)
class Job:
    """A reconcile job's arguments, with the waits and real failures behind it so far."""

    extension_id: str
    generation: int
    cause: str | None
    waited: int
    failed: int


async def _reconcile(ctx: dict[str, Any], job: Job) -> str:
    d = deps(ctx)
    extra = {"job_id": ctx.get("job_id"), "job_try": ctx.get("job_try")}
    outcome = await reconcile_now(d, job.extension_id, job.generation, job.cause, **extra)
    if outcome == "batch":
        # A listing under way will most likely cover this one: look again soon, then less often.
        await _wait(d, job, min(0.25 * (job.waited + 1), 5.0))
    elif outcome == "locked":
        await _wait(d, job, 0.05 + random.uniform(0, 0.1))  # another worker is reading it
    return outcome


async def _wait(d: Deps, job: Job, seconds: float) -> None:
    """Hand the reconcile to a fresh job due in `seconds`: this one ends without using a try.

    Queued before this job ends, so nothing is lost meanwhile; its id names the wait, so a
    re-run of this job (after a crash) queues no second one while the first is pending.
    """
    waited = job.waited + 1
    await d.queue.enqueue(
        RECONCILE,
        job.extension_id,
        job.generation,
        job.cause,
        waited=waited,
        failed=job.failed,
        job_id=d.settings.key("reconcile", job.extension_id, str(job.generation), f"w{waited}"),
        defer_by=seconds,
    )


async def reconcile_now(
    d: Deps, extension_id: str, generation: int, cause: str | None, **log_extra: Any
) -> str:
    """Read one extension and write it through, if that can start at once.

    Returns `covered` (a read since `generation` did it), `changed` or `unchanged`; or, having
    done nothing, `batch` (a listing is under way) or `locked` (another worker is reading it).
    """
    coalescer = d.coalescer
    claim = await coalescer.claim(extension_id, generation)
    if claim.outcome != "read":
        return claim.outcome
    finished = False
    try:
        stages.passed("read", [extension_id])
        found = await d.client.get_extension(extension_id)
        stages.passed("answered", [extension_id])
        decision, rows = await d.store.reconcile(
            await d.account_id(), extension_id, observe(found), cause, policy(d)
        )
        stages.passed("committed", [extension_id])
        await coalescer.finish(extension_id, claim.reading, claim.token)
        finished = True
    finally:
        if not finished:
            await coalescer.unlock(extension_id, claim.token)
    await announce(d, rows)
    stages.passed("outbox", [extension_id])
    if decision.stored is None and decision.row is not None:
        await read_roles_soon(d, [extension_id], cause)
    log.info(
        "extension reconciled",
        extra={
            "extension_id": extension_id,
            "uuid": cause,
            **log_extra,
            "state": decision.new_state.value if decision.new_state else None,
            "events": [event.value for event in decision.events],
        },
    )
    return "changed" if decision.row is not None else "unchanged"


# Rows written a transaction while listing: a worker's other jobs (other accounts' changes among
# them) run between two, instead of waiting out a whole 1,000-user page's decisions and writes.
APPLY_CHUNK = 100


def _chunks(observations: dict[str, T]) -> list[dict[str, T]]:
    items = list(observations.items())
    return [dict(items[i : i + APPLY_CHUNK]) for i in range(0, len(items), APPLY_CHUNK)]


async def reconcile_batch(ctx: dict[str, Any], cause: str | None = None) -> str:
    """Reconcile from list pages, then queue single jobs for marked users the listing missed."""
    outcome = await guarded(ctx, "reconcile_batch", {"cause": cause}, lambda: _batch(ctx, cause))
    if outcome == "dead-lettered":
        # The listing is given up: every user it was to cover gets its single read after all.
        d = deps(ctx)
        generations = await d.coalescer.begin_many()
        await queue_singles(d, await d.coalescer.dirty(), generations, cause)
    return outcome


async def queue_singles(
    d: Deps, extension_ids: list[str], generations: dict[str, int], cause: str | None
) -> None:
    """A reconcile job for each extension, for the generation given (queued once per id; all
    at once, so they share the queue's round trips)."""

    def single(extension_id: str) -> Awaitable[bool]:
        generation = generations.get(extension_id, 0)
        job_id = d.settings.key("reconcile", extension_id, str(generation))
        return d.queue.enqueue(RECONCILE, extension_id, generation, cause, job_id=job_id)

    await asyncio.gather(*(single(extension_id) for extension_id in extension_ids))


async def _batch(ctx: dict[str, Any], cause: str | None) -> str:
    async with listing_deps(ctx) as d:
        return await _list_and_apply(d, cause)


# How often a listing queued behind another one of the same account looks whether it is done.
AFTER_LISTING_POLL = 0.25


async def _list_and_apply(d: Deps, cause: str | None) -> str:
    coalescer = d.coalescer
    account_id = await d.account_id()
    # Another listing of this account under way (its marker outlives it by at most its TTL):
    # list after it, asleep meanwhile, rather than take a second worker's CPU for the same pages
    # while other accounts' changes wait.
    while await coalescer.batch_active():  # noqa: ASYNC110 (the marker lives in Redis)
        await asyncio.sleep(AFTER_LISTING_POLL)
    await coalescer.set_batch_active(True)
    applied = created = 0
    listed: set[str] = set()
    try:
        # Taken before the first page is sent: every change recorded so far is covered by it.
        generations = await coalescer.begin_many()
        async for page in d.client.list_extensions(types=d.settings.user_types):
            observations = {r.id: observe(r, partial=True) for r in page.records}
            listed.update(observations)
            for chunk in _chunks(observations):
                decisions, rows = await d.store.apply_many(account_id, chunk, cause, policy(d))
                stages.passed("committed", chunk)
                created += sum(1 for i in decisions.values() if i.stored is None and i.row)
                await announce(d, rows)
                stages.passed("outbox", chunk)
            await coalescer.finish_many(
                {i: generations[i] for i in observations if i in generations}
            )
            applied += len(observations)
            await coalescer.set_batch_active(True)  # keep the marker alive on long listings
    finally:
        await coalescer.set_batch_active(False)
    # Marked before the listing began, yet not listed (deleted meanwhile, another type): each
    # gets its own read. Those marked since are left to the listing or jobs queued for them.
    missed = [i for i in await coalescer.dirty() if i in generations and i not in listed]
    await queue_singles(d, missed, generations, cause)
    if created:
        # Users never seen: one sweep reads all their roles for the price of a few requests.
        await d.queue.enqueue(ROLES_SWEEP, "new users", job_id=d.settings.key("roles", "sweep"))
    log.info("batch reconcile done", extra={"uuid": cause, "extensions": applied})
    return f"{applied} extensions"
