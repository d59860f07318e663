"""The worker jobs that carry approved actions out against RingCentral.

`run_action` executes one action: take the action's lock, move it approved → running (the
compare-and-set that makes it run once, within the account's hourly cap), re-read the user
(with their roles and the account's protected extensions), ask `decide.execution`, then write.
A suspend or reactivate is one PUT; its answer is RingCentral's read of the user afterwards and
goes through the mirror's normal path (`user.suspended`, ...). A deprovision suspends first when
needed, then joins the account's delete queue (`workers.actions.deletes`).

A job that dies after its write and before its record leaves the action `running`; its retry
(or the sweep) finds the lock free and re-reads: the write's result is there, so the action is
done without writing again (`decide.execution(resumed=True)`).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from workers.actions.action import Action
from workers.actions.decide import FINISHED, ActionState, Refuse, Step, Subject, execution
from workers.actions.deletes import queue_delete, queue_pending_deletes, queued_deletes
from workers.actions.gate import queue_run
from workers.actions.outcome import finish, mirror
from workers.actions.protection import protection
from workers.actions.store import ActionStore
from workers.context import Deps, deps
from workers.failures import guarded
from workers.lock import RedisLock
from workers.ringcentral.errors import ApiError, RateLimited
from workers.ringcentral.resources import Extension
from workers.ringcentral.resources import Gone as ClientGone

log = logging.getLogger(__name__)

# An execution holds its action's lock this long, kept alive while it runs: a worker that died
# mid-action frees it this long after, and the action's retry resumes it.
LOCK_TTL: Final = 10.0
_STATUS_FOR: Final = {Step.SUSPEND: "Disabled", Step.REACTIVATE: "Enabled"}


async def run_action(ctx: dict[str, Any], action_id: str) -> str:
    """Execute one approved action (or resume a running one whose attempt died)."""
    return await guarded(ctx, "run_action", {"action_id": action_id}, lambda: _run(ctx, action_id))


async def _run(ctx: dict[str, Any], action_id: str) -> str:
    d = deps(ctx)
    book = ActionStore(d.store)
    action = await book.get(action_id)
    if action is None or action.state not in (ActionState.APPROVED, ActionState.RUNNING):
        return str(action.state) if action is not None else "unknown"
    lock = RedisLock(d.redis, _lock_key(d, action_id), ttl=LOCK_TTL, wait=0)
    if not await lock.acquire():
        # Another worker executes it, or one died holding the lock: look again once it is free.
        await queue_run(d, action, defer_by=LOCK_TTL)
        return "busy"
    try:
        return await _execute(d, book, action_id, ctx.get("job_id"))
    finally:
        await lock.release()


def _lock_key(d: Deps, action_id: str) -> str:
    return d.settings.root_key("action", action_id, "lock")


async def _execute(d: Deps, book: ActionStore, action_id: str, job_id: object) -> str:
    action = await book.get(action_id)  # again, under the lock
    if action is None or action.state in FINISHED or action.state is ActionState.PROPOSED:
        return "finished"
    resumed = action.state is ActionState.RUNNING
    if not resumed:
        claimed = await book.claim(action_id, d.settings.actions_max_per_hour)
        if claimed is None:
            log.info("action waits for the hourly cap", extra={"action": action_id})
            return "waiting"
        action = claimed
    extra = {"action": action.id, "extension_id": action.extension_id, "job_id": job_id}
    try:
        return await _carry_out(d, book, action, resumed)
    except RateLimited as exc:
        # The account's budget is spent for now: come back when it has room, without spending
        # one of the job's tries (a bulk of actions waits on the budget, it does not fail).
        await queue_run(d, action, defer_by=max(exc.retry_after or 1.0, 1.0))
        return "deferred"
    except ApiError as exc:  # RingCentral refused for good: the action fails with its code
        log.warning("action refused by RingCentral", extra={**extra, "error": exc.error_code})
        await finish(d, book, action, error=f"{exc.error_code or exc.status}: {exc}")
        return "failed"


async def _carry_out(d: Deps, book: ActionStore, action: Action, resumed: bool) -> str:
    ext = action.extension_id
    # The operator and the credential's owner, read at most `KEEP_SECONDS` ago (they rarely
    # move, and a bulk of actions would otherwise spend two reads each on them).
    facts = await protection(d)
    found = await d.client.get_extension(ext)
    fresh: Subject | None = None
    if isinstance(found, Extension):
        roles = await d.client.get_assigned_roles(ext)
        names = (
            ()
            if isinstance(roles, ClientGone)
            else tuple(r.display_name or "" for r in roles.records)
        )
        fresh = Subject(ext, found.type, found.status, names)
    snapshot = Subject.from_snapshot(ext, action.snapshot)
    verdict = execution(action.kind, snapshot, fresh, facts, resumed=resumed)
    # What we just read is RingCentral's own answer: the mirror takes it either way.
    await mirror(d, ext, found, action.id)
    if isinstance(verdict, Refuse):
        await finish(d, book, action, error=verdict.reason)
        return "failed"
    for step in verdict.steps:
        if step is Step.DELETE:
            await queue_delete(d, action)
            return "deleting"
        answer = await d.client.set_extension_status(
            ext,
            _STATUS_FOR[step],
            reason="Involuntarily" if step is Step.SUSPEND else None,
            comment=action.reason,
        )
        await mirror(d, ext, answer, action.id)
    await finish(d, book, action)
    return "done"


async def sweep_actions(ctx: dict[str, Any]) -> str:
    """Queue every approved action (those the hourly cap held back) and every running one (an
    attempt may have died: its lock decides) of the account."""
    d = deps(ctx)
    # Those waiting in the delete queue are the batch's: re-running them would only re-read.
    waiting = await queued_deletes(d)
    due = [a for a in await ActionStore(d.store).due(await d.account_id()) if a.id not in waiting]
    for action in due:
        await queue_run(d, action)
    await queue_pending_deletes(d)
    return f"{len(due)} due"
