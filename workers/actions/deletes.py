"""Deprovisions' last step: the account's delete queue, sent up to 50 extensions a Heavy call.

A running deprovision whose user is suspended joins the queue (a Redis sorted set per account,
scored by when it joined). `delete_batch` sends full calls, or a partial one once no more of the
account's deprovisions are on their way or the oldest has waited `GATHER` seconds: Heavy calls are
10 a minute, one per extension would spend them 50 times faster. Each extension's outcome is
recorded on its own action (RingCentral's `errorCode` when refused). Ids whose call went out
before a crash, unrecorded, are re-read before they are sent again.
"""

from __future__ import annotations

import time
from typing import Any, Final

from events.queue import ACTIONS_DELETE
from workers.actions.action import Action
from workers.actions.decide import ActionState, Kind
from workers.actions.outcome import finish, mirror
from workers.actions.store import ActionStore
from workers.context import Deps, deps
from workers.decide import Gone
from workers.failures import guarded
from workers.lock import RedisLock
from workers.ringcentral.client import DELETE_CHUNK
from workers.ringcentral.errors import ApiError
from workers.ringcentral.resources import Gone as ClientGone

# How long a queued delete may wait for others to fill its call (see `_gathering`): at the
# default limits 50 deprovisions take about two minutes to re-read (2 Light requests each, 50 a
# minute), so a shorter wait would send half-full calls.
GATHER: Final = 300.0
# A batch holds the account's delete lock this long, kept alive while it runs.
LOCK_TTL: Final = 10.0


def _deleting(d: Deps) -> str:
    return d.settings.key("actions", "deleting")


def _sent(d: Deps) -> str:
    return d.settings.key("actions", "deleting", "sent")


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
                await d.redis.srem(_sent(d), *stale)  # type: ignore[misc]
            found = [(m, at) for m, at in found if m.decode() in running]
            if not found:
                return f"{sent} deleted"
            if len(found) < DELETE_CHUNK and _gathering(len(due), len(found), oldest=found[0][1]):
                await _queue_batch(d, defer_by=1.0)
                return f"{sent} deleted; gathering"
            queued = [member.decode() for member, _ in found[:DELETE_CHUNK]]
            sent += await _delete_chunk(d, book, queued)
            await d.redis.zrem(_deleting(d), *queued)
            await d.redis.srem(_sent(d), *queued)  # type: ignore[misc]
    finally:
        await lock.release()


def _gathering(coming: int, queued: int, *, oldest: float) -> bool:
    """Whether to wait for a fuller call: more of the account's deprovisions are on their way
    (approved, or still suspending) and the oldest queued one has waited less than `GATHER`.
    Heavy calls are 10 a minute: one per extension would spend them 50 times faster."""
    return coming > queued and time.time() - oldest < GATHER


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
                await mirror(d, action.extension_id, found, action.id)
                await finish(d, book, action)
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
            await finish(d, book, action, error=f"{exc.error_code or exc.status}: {exc}")
        return 0
    outcomes = {item.id: item for item in result.records}
    deleted = 0
    for action in ready:
        item = outcomes.get(action.extension_id)
        if item is not None and item.bulk_item_successful:
            # RingCentral's own answer to our request: the extension is gone.
            await mirror(d, action.extension_id, Gone(read_at=result.read_at), action.id)
            await finish(d, book, action)
            deleted += 1
        else:
            code = item.error_code if item is not None else None
            await finish(
                d, book, action, error=f"{code or 'no outcome'}: RingCentral did not delete it"
            )
    return deleted


async def queue_pending_deletes(d: Deps) -> None:
    """Queue a batch when the account's delete queue holds anything (the sweep's check)."""
    if await d.redis.zcard(_deleting(d)):
        await _queue_batch(d)


async def queued_deletes(d: Deps) -> set[str]:
    """The ids of the account's actions waiting in the delete queue."""
    return {member.decode() for member in await d.redis.zrange(_deleting(d), 0, -1)}
