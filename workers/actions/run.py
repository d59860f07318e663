"""The worker jobs that carry approved actions out against RingCentral.

`run_action` executes one action: take the action's lock, move it approved → running (the
compare-and-set that makes it run once, within the account's hourly cap), re-read the user
(with their roles and the account's protected extensions), ask `decide.execution`, then write.
A suspend or reactivate is one PUT; its answer is RingCentral's read of the user afterwards and
goes through the mirror's normal path (`user.suspended`, ...). A deprovision suspends first when
needed, then joins the account's delete queue: `delete_batch` sends up to 50 extensions a call
(Heavy) and records each one's outcome.

A job that dies after its write and before its record leaves the action `running`; its retry
(or the sweep) finds the lock free and re-reads: the write's result is there, so the action is
done without writing again (`decide.execution(resumed=True)`). Ids whose bulk delete went out
unrecorded are re-read before they are sent again.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from events.queue import ACTIONS_DELETE
from workers.actions.decide import FINISHED, ActionState, Kind, Refuse, Step, Subject, execution
from workers.actions.gate import queue_run
from workers.actions.protection import protection
from workers.actions.store import Action, ActionStore
from workers.context import Deps, deps
from workers.decide import Gone
from workers.delivery.outbox import announce
from workers.failures import guarded
from workers.lock import RedisLock
from workers.observe import observe
from workers.reconcile import policy
from workers.ringcentral.client import DELETE_CHUNK
from workers.ringcentral.errors import ApiError
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
    except ApiError as exc:  # RingCentral refused for good: the action fails with its code
        log.warning("action refused by RingCentral", extra={**extra, "error": exc.error_code})
        await _finish(d, book, action, error=f"{exc.error_code or exc.status}: {exc}")
        return "failed"


async def _carry_out(d: Deps, book: ActionStore, action: Action, resumed: bool) -> str:
    ext = action.extension_id
    facts = await protection(d, fresh=True)
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
    await _mirror(d, ext, found, action.id)
    if isinstance(verdict, Refuse):
        await _finish(d, book, action, error=verdict.reason)
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
        await _mirror(d, ext, answer, action.id)
    await _finish(d, book, action)
    return "done"


async def _mirror(
    d: Deps, extension_id: str, found: Extension | ClientGone, action_id: str
) -> None:
    """Write RingCentral's answer through the mirror's normal path (and announce its events)."""
    _, rows = await d.store.reconcile(
        await d.account_id(), extension_id, observe(found), f"action:{action_id}", policy(d)
    )
    await announce(d, rows)


async def _finish(d: Deps, book: ActionStore, action: Action, *, error: str | None = None) -> None:
    moved = await book.finish(action.id, error=error)
    if moved is not None:
        await announce(d, moved.rows)
        log.info(
            "action finished",
            extra={
                "action": action.id,
                "extension_id": action.extension_id,
                "state": str(moved.action.state),
                "error": error,
            },
        )


# --- deprovisions: the account's delete queue, sent 50 extensions a call ----------------------


def _deleting(d: Deps) -> str:
    return d.settings.key("actions", "deleting")


def _sent(d: Deps) -> str:
    return d.settings.key("actions", "deleting", "sent")


async def queue_delete(d: Deps, action: Action) -> None:
    """Put a running deprovision in the account's delete queue and make sure a batch runs."""
    await d.redis.zadd(_deleting(d), {action.id: 0}, nx=True)
    await d.queue.enqueue(ACTIONS_DELETE, job_id=d.settings.key("actions", "delete", "now"))


async def delete_batch(ctx: dict[str, Any]) -> str:
    """Send the account's queued deletes, up to 50 extensions a call, until none is left."""
    return await guarded(ctx, "delete_batch", {}, lambda: _delete_all(deps(ctx)))


async def _delete_all(d: Deps) -> str:
    lock = RedisLock(d.redis, d.settings.key("actions", "deleting", "lock"), ttl=LOCK_TTL, wait=0)
    if not await lock.acquire():
        # Another batch is under way; look again shortly in case it ended before our ids came.
        await d.queue.enqueue(
            ACTIONS_DELETE, job_id=d.settings.key("actions", "delete", "later"), defer_by=1.0
        )
        return "busy"
    book = ActionStore(d.store)
    sent = 0
    try:
        while True:
            queued = [i.decode() for i in await d.redis.zrange(_deleting(d), 0, DELETE_CHUNK - 1)]
            if not queued:
                return f"{sent} deleted"
            sent += await _delete_chunk(d, book, queued)
            await d.redis.zrem(_deleting(d), *queued)
            await d.redis.srem(_sent(d), *queued)  # type: ignore[misc]
    finally:
        await lock.release()


async def _delete_chunk(d: Deps, book: ActionStore, queued: list[str]) -> int:
    resent = {i.decode() for i in await d.redis.smembers(_sent(d))}  # type: ignore[misc]
    ready: list[Action] = []
    for action_id in queued:
        action = await book.get(action_id)
        if (
            action is None
            or action.state is not ActionState.RUNNING
            or action.kind is not Kind.DEPROVISION
        ):
            continue
        if action_id in resent:
            # Its delete went out before a crash, unrecorded: RingCentral's read says what is left.
            found = await d.client.get_extension(action.extension_id)
            if isinstance(found, ClientGone) or found.status == "Unassigned":
                await _mirror(d, action.extension_id, found, action.id)
                await _finish(d, book, action)
                continue
        ready.append(action)
    if not ready:
        return 0
    await d.redis.sadd(_sent(d), *(a.id for a in ready))  # type: ignore[misc]
    account_id = await d.account_id()
    try:
        result = await d.client.delete_extensions(account_id, [a.extension_id for a in ready])
    except ApiError as exc:  # the whole call refused: every action in it fails with the code
        for action in ready:
            await _finish(d, book, action, error=f"{exc.error_code or exc.status}: {exc}")
        return 0
    outcomes = {item.id: item for item in result.records}
    deleted = 0
    for action in ready:
        item = outcomes.get(action.extension_id)
        if item is not None and item.bulk_item_successful:
            # RingCentral's own answer to our request: the extension is gone.
            _, rows = await d.store.reconcile(
                account_id,
                action.extension_id,
                Gone(read_at=result.read_at),
                f"action:{action.id}",
                policy(d),
            )
            await announce(d, rows)
            await _finish(d, book, action)
            deleted += 1
        else:
            code = item.error_code if item is not None else None
            await _finish(
                d, book, action, error=f"{code or 'no outcome'}: RingCentral did not delete it"
            )
    return deleted


async def sweep_actions(ctx: dict[str, Any]) -> str:
    """Queue every approved action (those the hourly cap held back) and every running one (an
    attempt may have died: its lock decides) of the account."""
    d = deps(ctx)
    due = await ActionStore(d.store).due(await d.account_id())
    for action in due:
        await queue_run(d, action)
    if await d.redis.zcard(_deleting(d)):
        await d.queue.enqueue(ACTIONS_DELETE, job_id=d.settings.key("actions", "delete", "now"))
    return f"{len(due)} due"
