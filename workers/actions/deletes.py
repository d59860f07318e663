"""Deprovisions' last step: the account's delete queue, sent up to 50 extensions a Heavy call.

A running deprovision whose user is suspended joins the queue (a Redis sorted set per account,
scored by when it joined). `delete_batch` sends full calls, or a partial one once no more of the
account's deprovisions are on their way or the oldest has waited `GATHER` seconds: Heavy calls are
10 a minute, one per extension would spend them 50 times faster. Each extension's outcome is
recorded on its own action (RingCentral's `errorCode` when refused). Each extension is re-read
just before its call (still suspended, unprotected, not reactivated meanwhile; an id whose call
went out before a crash reads gone), and one the answer does not report deleted is re-read
again: gone is done, live is failed.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from events.queue import ACTIONS_DELETE
from workers.actions.action import Action
from workers.actions.decide import ActionState, Kind, Refuse, Run, Step, Subject, execution
from workers.actions.outcome import finish, mirror, reread
from workers.actions.protection import protection
from workers.actions.store import ActionStore
from workers.context import Deps, deps
from workers.decide import Gone
from workers.failures import guarded
from workers.lock import RedisLock
from workers.ringcentral.client import DELETE_CHUNK
from workers.ringcentral.errors import ApiError, AuthError

log = logging.getLogger(__name__)

# How long a queued delete may wait for others to fill its call (see `_gathering`): at the
# default limits 50 deprovisions take about two minutes to re-read (2 Light requests each, 50 a
# minute), so a shorter wait would send half-full calls.
GATHER: Final = 300.0
# A batch holds the account's delete lock this long, kept alive while it runs.
LOCK_TTL: Final = 10.0
# How long a deprovision's "suspend sent" note is kept (a week: far beyond any wait).
SUSPEND_KEPT: Final = 7 * 24 * 3600


def _deleting(d: Deps) -> str:
    return d.settings.key("actions", "deleting")


async def queue_delete(d: Deps, action: Action) -> None:
    """Put a running deprovision in the account's delete queue and make sure a batch runs."""
    await d.redis.zadd(_deleting(d), {action.id: time.time()}, nx=True)
    await _queue_batch(d)


async def _queue_batch(d: Deps, defer_by: float = 0.0) -> None:
    """Queue a delete batch due in `defer_by` seconds. One job id per second it is due: a batch
    that is running (its own id still taken) or queued for that second already is enough, and
    a later id is never swallowed by an earlier job that has already looked at the queue."""
    due = int(time.time() + defer_by)
    await d.queue.enqueue(
        ACTIONS_DELETE, job_id=d.settings.key("actions", "delete", str(due)), defer_by=defer_by
    )


async def delete_batch(ctx: dict[str, Any]) -> str:
    """Send the account's queued deletes, up to 50 extensions a call, until none is left."""
    return await guarded(ctx, "delete_batch", {}, lambda: _delete_all(deps(ctx)))


async def _delete_all(d: Deps) -> str:
    lock = RedisLock(d.redis, d.settings.key("actions", "deleting", "lock"), ttl=LOCK_TTL, wait=0)
    if not await lock.acquire():
        # Another batch is under way; look again shortly in case it ended before our ids came.
        await _queue_batch(d, defer_by=1.0)
        return "busy"
    book = ActionStore(d.store)
    sent = 0
    try:
        while True:
            due = [a for a in await book.due(await d.account_id()) if a.kind is Kind.DEPROVISION]
            running = {a.id for a in due if a.state is ActionState.RUNNING}
            found = await d.redis.zrange(_deleting(d), 0, -1, withscores=True)
            # An id queued again by a late re-read after its action was recorded takes no slot.
            stale = [member for member, _ in found if member.decode() not in running]
            if stale:
                await d.redis.zrem(_deleting(d), *stale)
            found = [(m, at) for m, at in found if m.decode() in running]
            if not found:
                return f"{sent} deleted"
            if len(found) < DELETE_CHUNK and _gathering(len(due), len(found), oldest=found[0][1]):
                await _queue_batch(d, defer_by=1.0)
                return f"{sent} deleted; gathering"
            queued = [member.decode() for member, _ in found[:DELETE_CHUNK]]
            sent += await _delete_chunk(d, book, queued)
            await d.redis.zrem(_deleting(d), *queued)
    except AuthError:
        # Our credentials, not the users: the account makes no calls until `accounts update`,
        # and the queued deletes wait for it (the sweep queues a batch again then).
        log.warning("credentials refused; queued deletes wait", extra={"sent": sent})
        return f"{sent} deleted; credentials refused"
    finally:
        await lock.release()


def _gathering(coming: int, queued: int, *, oldest: float) -> bool:
    """Whether to wait for a fuller call: more of the account's deprovisions are on their way
    (approved, or still suspending) and the oldest queued one has waited less than `GATHER`.
    Heavy calls are 10 a minute: one per extension would spend them 50 times faster."""
    return coming > queued and time.time() - oldest < GATHER


async def _delete_chunk(d: Deps, book: ActionStore, queued: list[str]) -> int:
    account_id = await d.account_id()
    facts = await protection(d)
    ready: dict[str, Action] = {}  # by extension id: an extension is sent once a call
    for action_id in queued:
        action = await book.get(action_id)
        if (
            action is None
            or action.state is not ActionState.RUNNING
            or action.kind is not Kind.DEPROVISION
            or action.account_id != account_id
        ):
            continue
        if action.extension_id in ready:
            other = ready[action.extension_id].id
            await finish(d, book, action, error=f"duplicate: action {other} deletes this extension")
            continue
        # Just before the DELETE, RingCentral's read decides: still suspended, unprotected, of
        # type User (a person may have reactivated them while they waited), or already gone.
        found, fresh = await reread(d, action.extension_id)
        snapshot = Subject.from_snapshot(action.extension_id, action.snapshot)
        verdict = execution(Kind.DEPROVISION, snapshot, fresh, facts, resumed=True, suspended=True)
        if verdict == Run((Step.DELETE,)):
            ready[action.extension_id] = action
            continue
        await mirror(d, action.extension_id, found, action.id)
        await finish(d, book, action, error=verdict.reason if isinstance(verdict, Refuse) else None)
    if not ready:
        return 0
    try:
        result = await d.client.delete_extensions(account_id, list(ready))
    except AuthError:
        raise  # our credentials, not the users (see `_delete_all`)
    except ApiError as exc:  # the whole call refused: each extension's own read settles it
        error = f"{exc.error_code or exc.status}: {exc}"
        return sum([await _settle(d, book, action, error) for action in ready.values()])
    outcomes = {item.id: item for item in result.records}
    deleted = 0
    for ext, action in ready.items():
        item = outcomes.get(ext)
        if item is not None and item.bulk_item_successful:
            # RingCentral's own answer to our request: the extension is gone.
            await mirror(d, ext, Gone(read_at=result.read_at), action.id)
            await finish(d, book, action)
            deleted += 1
        else:
            code = (item.error_code if item is not None else None) or "no outcome"
            deleted += await _settle(d, book, action, f"{code}: RingCentral did not delete it")
    return deleted


async def _settle(d: Deps, book: ActionStore, action: Action, error: str) -> int:
    """An extension the DELETE did not report deleted: RingCentral's read says whether it is
    gone anyway (a retried call whose first attempt landed answers not-found), else it fails."""
    found, fresh = await reread(d, action.extension_id)
    await mirror(d, action.extension_id, found, action.id)
    if fresh is None or fresh.status == "Unassigned":
        await finish(d, book, action)
        return 1
    await finish(d, book, action, error=error)
    return 0


async def queued_deletes(d: Deps) -> set[str]:
    """The ids of the account's actions waiting in the delete queue."""
    return {m.decode() for m in await d.redis.zrange(_deleting(d), 0, -1)}


def _suspend_key(d: Deps, action: Action) -> str:
    return d.settings.root_key("action", action.id, "suspend")


async def mark_suspend_sent(d: Deps, action: Action) -> None:
    """Note that this deprovision's suspend is about to go out (kept longer than any action
    waits for its delete)."""
    await d.redis.set(_suspend_key(d, action), "1", ex=SUSPEND_KEPT)


async def forget_suspend_sent(d: Deps, action: Action) -> None:
    await d.redis.delete(_suspend_key(d, action))


async def suspend_sent(d: Deps, action: Action) -> bool:
    """Whether this deprovision's suspend went out (or waits in the delete queue)."""
    if await d.redis.exists(_suspend_key(d, action)):
        return True
    return await d.redis.zscore(_deleting(d), action.id) is not None


async def queue_pending_deletes(d: Deps) -> None:
    """Queue a batch when the account's delete queue holds anything (the sweep's check)."""
    if await d.redis.zcard(_deleting(d)):
        await _queue_batch(d)
