"""One pass of a resync over an account (see `workers.resync.run`): pages through the decision,
absences confirmed by single reads, deprovisionings held until the safeguard has spoken."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from workers.context import Deps
from workers.decide import Gone, Observation, Policy, UserRow, decide
from workers.delivery.outbox import announce
from workers.lifecycle import LIVE, EventType
from workers.observe import observe
from workers.reconcile import policy
from workers.resync.report import Summary
from workers.resync.safeguard import holds, ratio
from workers.resync.store import (
    APPROVED,
    SUPERSEDED,
    Plan,
    absent_users,
    count_live,
    record_plan,
    settle_plans,
    stored_users,
)

log = logging.getLogger(__name__)

# Deprovisionings are written this many at a time once the safeguard lets them through.
_WRITE_CHUNK = 1000
# Absent users are confirmed this many at a time: one read of their stored rows, then one
# single read each, then one write for those found live.
_CONFIRM_CHUNK = 100

Progress = Callable[[int], None]
Expected = Callable[[int], None]


class ResyncPass:
    """One resync's state: what it saw (ids only) and what it holds back until the end."""

    def __init__(
        self,
        d: Deps,
        summary: Summary,
        progress: Progress | None = None,
        expected: Expected | None = None,
        per_page: int = 1000,
    ) -> None:
        self.d = d
        self.summary = summary
        self.progress = progress
        self.expected = expected
        self.per_page = per_page
        self.cause = f"resync:{summary.resync_id}"
        self.seen: set[str] = set()
        # Confirmed deprovisionings (Unassigned, a type we do not mirror, gone), kept compact.
        self.held: dict[str, Observation | Gone] = {}
        self.generations: dict[str, int] = {}

    async def execute(self) -> None:
        """List the account, confirm absences, then apply or hold the deprovisionings."""
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
        absent = await absent_users(d.store, account_id, self.seen, started)
        self.seen.clear()
        summary.absent = len(absent)
        await self._confirm(
            account_id, absent, rules, remark="absent from the listing, confirmed by a read"
        )
        await self._deprovisionings(account_id, rules)
        log.info(
            "resync done",
            extra={
                "resync_id": summary.resync_id,
                "listed": summary.listed,
                "absent": summary.absent,
                "found_live": summary.found_live,
                "events": summary.events,
                "held": summary.held,
                "dry_run": summary.dry_run,
            },
        )

    async def approve(self, plan: Plan) -> None:
        """Confirm each of the plan's users again, then apply what is confirmed."""
        d, summary = self.d, self.summary
        summary.account_id = plan.account_id
        summary.live_before = await count_live(d.store, plan.account_id)
        summary.complete = True
        self.generations = await d.coalescer.begin_many()
        rules = policy(d)
        await self._confirm(
            plan.account_id, plan.deprovision_ids, rules, remark=f"approved in plan {plan.id}"
        )
        self._measure()
        await self._apply_held(plan.account_id, rules)
        summary.settled = await settle_plans(d.store, plan.account_id, APPROVED, only=plan.id)
        log.info(
            "resync plan approved",
            extra={
                "resync_id": summary.resync_id,
                "plan_id": plan.id,
                "deprovisioned": summary.deprovisioned,
                "found_live": summary.found_live,
            },
        )

    async def _page(
        self, account_id: str, observations: dict[str, Observation | Gone], rules: Policy
    ) -> None:
        self.seen.update(observations)
        self.summary.listed += len(observations)
        stored = await stored_users(self.d.store, account_id, list(observations))
        await self._sort(account_id, observations, stored, rules)

    async def _confirm(
        self, account_id: str, ids: Sequence[str], rules: Policy, *, remark: str
    ) -> None:
        """Read each of `ids` on its own: RingCentral's answer, never an absence, decides."""
        d = self.d
        for start in range(0, len(ids), _CONFIRM_CHUNK):
            chunk = ids[start : start + _CONFIRM_CHUNK]
            stored = await stored_users(d.store, account_id, chunk)
            observations = {i: observe(await d.client.get_extension(i)) for i in chunk}
            await self._sort(account_id, observations, stored, rules, remark=remark)

    async def _sort(
        self,
        account_id: str,
        observations: Mapping[str, Observation | Gone],
        stored: Mapping[str, UserRow],
        rules: Policy,
        *,
        remark: str | None = None,
    ) -> None:
        """Hold the deprovisionings among `observations` until the end; write (or, dry, count)
        the rest now. With a `remark`, these are single reads of users someone asked about."""
        summary = self.summary
        decisions = {i: decide(o, stored.get(i), rules) for i, o in observations.items()}
        now: dict[str, Observation | Gone] = {}
        for extension_id, decision in decisions.items():
            if EventType.DEPROVISIONED in decision.events:
                self.held[extension_id] = _compact(observations[extension_id])
                summary.note(extension_id, decision, deprovisioning=True, remark=remark)
                continue
            now[extension_id] = observations[extension_id]
            if remark is not None and decision.new_state in LIVE:
                summary.found_live += 1
        if summary.dry_run:
            for extension_id in now:
                summary.tally(decisions[extension_id])
                summary.note(extension_id, decisions[extension_id])
            return
        await self._write(account_id, now, rules, report=True)

    def _measure(self) -> None:
        summary = self.summary
        summary.planned_deprovisions = len(self.held)
        summary.ratio = ratio(len(self.held), summary.live_before)
        summary.limit = self.d.settings.max_deprovision_ratio
        summary.floor = self.d.settings.max_deprovision_min

    async def _deprovisionings(self, account_id: str, rules: Policy) -> None:
        d, summary = self.d, self.summary
        self._measure()
        planned = summary.planned_deprovisions
        tripped = holds(planned, summary.live_before, d.settings)
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
                    "plan_id": summary.plan_id,
                    "deprovisions": planned,
                    "ratio": round(summary.ratio, 4),
                    "limit": summary.limit,
                    "floor": summary.floor,
                },
            )
            return
        await self._apply_held(account_id, rules)
        summary.settled = await settle_plans(d.store, account_id, SUPERSEDED)

    async def _apply_held(self, account_id: str, rules: Policy) -> None:
        ids = sorted(self.held)
        for start in range(0, len(ids), _WRITE_CHUNK):
            chunk = {i: self.held[i] for i in ids[start : start + _WRITE_CHUNK]}
            await self._write(account_id, chunk, rules, report=True)
        self.held.clear()

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
