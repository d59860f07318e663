"""Full reconciliation: list every extension, reconcile each, infer deletions from a complete list.

Used after a gap (missed notifications), on a schedule, and by `ringsync resync`. Pages stream
through the same decision and transaction as single reconciles, one page at a time; only the
ids seen are kept, so memory does not grow with the raw records. The first resync of an account
is its baseline: no `user.created` unless RINGSYNC_EMIT_BASELINE.

Deprovisionings wait until the end. A user is deprovisioned for being absent only when the
listing completed; if paging fails part-way, the other changes of the pages read so far are
applied and nobody is deprovisioned. And the safeguard: when the deprovisionings a complete
listing implies (users absent from it and users now Unassigned) exceed
RINGSYNC_MAX_DEPROVISION_RATIO of the account's users that are not already deprovisioned, none
of them is applied or announced; the plan is stored (`resync_plans`, pending) until
`ringsync resync --approve` runs afresh and applies whatever it then finds. A mass deletion is
more often a broken upstream or a wrong account than a real layoff.

Only one resync writes at a time per deployment (a Redis lock); a second one waits, then runs.
A dry run takes no lock and writes nothing: it decides against the stored rows and reports.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from workers.context import Deps, listing_deps
from workers.failures import guarded
from workers.lifecycle import EventType
from workers.observe import observe
from workers.outbox import announce
from workers.reconcile import Gone, Observation, Policy, decide
from workers.refresh import policy
from workers.resync_report import Change, Summary
from workers.resync_store import (
    APPROVED,
    SUPERSEDED,
    absent_users,
    count_live,
    record_plan,
    settle_plans,
    stored_users,
)

__all__ = ["Change", "Summary", "resync", "run_resync"]

log = logging.getLogger(__name__)

LOCK_TTL = 120.0
# A listing past the first window's worth of pages waits up to a whole window (60 s) for each
# page's budget: longer than a job's usual cap, which would make it start over and never end.
# Deprovisionings are written this many at a time once the safeguard lets them through.
_WRITE_CHUNK = 1000

Progress = Callable[[int], None]
Expected = Callable[[int], None]


async def run_resync(
    d: Deps,
    *,
    progress: Progress | None = None,
    expected: Expected | None = None,
    dry_run: bool = False,
    approve: bool = False,
    per_page: int = 1000,
    on_wait: Callable[[], None] | None = None,
) -> Summary:
    """Reconcile the whole account now (waiting for any resync already running).

    `progress(n)` is called after each page with its record count, `expected(total)` once when
    the first page tells the account's size. Raises the client's error when the listing fails
    (after applying the pages read so far, and no deprovisioning).
    """
    summary = Summary(resync_id=uuid.uuid4().hex[:12], dry_run=dry_run, approve=approve)
    run = _Run(d, summary, progress, expected, per_page)
    if dry_run:
        await run.execute()
    else:
        async with _exclusive(d, on_wait):
            await run.execute()
    return summary


class _Run:
    """One resync's state: what it saw (ids only) and what it holds back until the end."""

    def __init__(
        self,
        d: Deps,
        summary: Summary,
        progress: Progress | None,
        expected: Expected | None,
        per_page: int,
    ) -> None:
        self.d = d
        self.summary = summary
        self.progress = progress
        self.expected = expected
        self.per_page = per_page
        self.cause = f"resync:{summary.resync_id}"
        self.seen: set[str] = set()
        # Deprovisionings found on pages (Unassigned, a type we do not mirror), kept compact.
        self.held: dict[str, Observation | Gone] = {}
        self.generations: dict[str, int] = {}

    async def execute(self) -> None:
        d, summary = self.d, self.summary
        account_id = await d.account_id()
        summary.account_id = account_id
        baseline = not d.settings.emit_baseline and not await d.store.account_has_users(account_id)
        summary.baseline = baseline
        rules = policy(d, baseline=baseline)
        summary.live_before = await count_live(d.store, account_id)
        if not summary.dry_run:
            self.generations = await d.coalescer.begin_many()
        started: datetime | None = None
        listing = d.client.list_extensions(types=d.settings.user_types, per_page=self.per_page)
        async for page in listing:
            if started is None:
                started = page.read_at
                total = page.paging.total_elements
                if self.expected is not None and total is not None:
                    self.expected(total)
            await self._page(
                account_id, {r.id: observe(r, partial=True) for r in page.records}, rules
            )
            summary.pages += 1
            if self.progress is not None:
                self.progress(len(page.records))
        summary.complete = True
        if started is None:
            return
        await self._deprovisionings(account_id, started, rules)
        log.info(
            "resync done",
            extra={
                "resync_id": summary.resync_id,
                "listed": summary.listed,
                "events": summary.events,
                "held": summary.held,
                "dry_run": summary.dry_run,
            },
        )

    async def _page(
        self, account_id: str, observations: dict[str, Observation | Gone], rules: Policy
    ) -> None:
        d, summary = self.d, self.summary
        self.seen.update(observations)
        summary.listed += len(observations)
        stored = await stored_users(d.store, account_id, list(observations))
        decisions = {i: decide(o, stored.get(i), rules) for i, o in observations.items()}
        now: dict[str, Observation | Gone] = {}
        for extension_id, decision in decisions.items():
            if EventType.DEPROVISIONED in decision.events:
                self.held[extension_id] = _compact(observations[extension_id])
                summary.note(extension_id, decision, deprovisioning=True)
            else:
                now[extension_id] = observations[extension_id]
        if summary.dry_run:
            for extension_id in now:
                summary.tally(decisions[extension_id])
                summary.note(extension_id, decisions[extension_id])
            return
        await self._write(account_id, now, rules, report=True)

    async def _deprovisionings(self, account_id: str, started: datetime, rules: Policy) -> None:
        d, summary = self.d, self.summary
        absent = await absent_users(d.store, account_id, self.seen, started)
        self.seen.clear()
        for user in absent:
            summary.note_absent(user)
            self.held[user.extension_id] = Gone(read_at=started)
        planned = len(self.held)
        summary.planned_deprovisions = planned
        live = summary.live_before
        summary.ratio = planned / live if live else (1.0 if planned else 0.0)
        limit = d.settings.max_deprovision_ratio
        summary.limit = limit
        tripped = planned > 0 and summary.ratio > limit and not summary.approve
        if summary.dry_run:
            summary.would_hold = tripped
            if not tripped:
                summary.dry_deprovisions()
            return
        if tripped:
            summary.held = planned
            summary.plan_id = summary.resync_id
            await record_plan(
                d.store, summary.plan_id, account_id, sorted(self.held), summary.ratio
            )
            log.warning(
                "resync safeguard: deprovisionings held for approval",
                extra={
                    "resync_id": summary.resync_id,
                    "deprovisions": planned,
                    "ratio": round(summary.ratio, 4),
                    "limit": limit,
                },
            )
            return
        ids = sorted(self.held)
        for start in range(0, len(ids), _WRITE_CHUNK):
            chunk = {i: self.held[i] for i in ids[start : start + _WRITE_CHUNK]}
            await self._write(account_id, chunk, rules, report=True)
        self.held.clear()
        summary.settled = await settle_plans(
            d.store, account_id, APPROVED if summary.approve else SUPERSEDED
        )

    async def _write(
        self,
        account_id: str,
        observations: Mapping[str, Observation | Gone],
        rules: Policy,
        *,
        report: bool,
    ) -> None:
        if not observations:
            return
        d = self.d
        decisions, rows = await d.store.apply_many(account_id, observations, self.cause, rules)
        covered = {i: self.generations[i] for i in observations if i in self.generations}
        await d.coalescer.finish_many(covered)
        await announce(d, rows)
        if report:
            for decision in decisions.values():
                self.summary.tally(decision)


def _compact(observation: Observation | Gone) -> Observation | Gone:
    """What a held deprovisioning needs later (status and type), not the whole record."""
    if isinstance(observation, Gone):
        return observation
    raw = {k: observation.raw[k] for k in ("id", "status", "type") if k in observation.raw}
    return Observation(
        read_at=observation.read_at,
        status=observation.status,
        type=observation.type,
        raw=raw,
        present=frozenset(),
    )


class _exclusive:
    """The deployment-wide resync lock: wait for it, keep it alive while running."""

    def __init__(self, d: Deps, on_wait: Callable[[], None] | None = None) -> None:
        self._d = d
        self._key = d.settings.key("lock", "resync")
        self._token = uuid.uuid4().hex
        self._keeper: asyncio.Task[None] | None = None
        self._on_wait = on_wait

    async def __aenter__(self) -> None:
        redis = self._d.redis
        # The holder may be another process: poll the lock.
        ttl_ms = int(LOCK_TTL * 1000)
        waited = False
        while not await redis.set(self._key, self._token, nx=True, px=ttl_ms):
            if not waited and self._on_wait is not None:
                self._on_wait()
            waited = True
            await asyncio.sleep(0.25)
        self._keeper = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(LOCK_TTL / 3)
            await self._d.redis.pexpire(self._key, int(LOCK_TTL * 1000))

    async def __aexit__(self, *exc: object) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
        if await self._d.redis.get(self._key) == self._token.encode():
            await self._d.redis.delete(self._key)


async def resync(ctx: dict[str, Any], reason: str = "schedule") -> str:
    """The worker's resync job (cron, gaps): a full reconciliation, safeguard included."""

    async def work() -> str:
        async with listing_deps(ctx) as d:
            summary = await run_resync(d)
        if summary.plan_id is not None:
            return f"held for approval: plan {summary.plan_id}, {summary.held} deprovisionings"
        return f"{summary.listed} listed, {summary.events}"

    log.info("resync starting", extra={"reason": reason, "job_id": ctx.get("job_id")})
    return await guarded(ctx, "resync", {"reason": reason}, work)
