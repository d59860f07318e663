"""Outbox delivery: lifecycle events written beside the user change are sent downstream.

`announce` is called after a reconcile's transaction committed, with the outbox rows it wrote; it
queues their delivery. Rows are durable before this point, so a crash here loses nothing: the
delivery sweep (and `ringsync replay --outbox`) picks up whatever was never queued. How a row
is delivered (order, retries, signing, the hook) is `workers.delivery.deliver`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime

from events.queue import DELIVER
from workers.context import Deps
from workers.delivery.deliver import hand_over, job_id
from workers.delivery.holds import Hold, skip
from workers.delivery.store import DeliveryStore
from workers.store.identity import OutboxRow, Store


def delivers(d: Deps) -> bool:
    """Whether anything downstream listens: URLs or an in-process hook."""
    return bool(d.settings.offboarding_urls or d.settings.offboarding_hook)


async def announce(d: Deps, rows: Sequence[OutboxRow]) -> None:
    """Queue delivery of freshly written outbox rows."""
    if not rows or not delivers(d):
        return
    for row in rows:
        await d.queue.enqueue(DELIVER, row.id, job_id=d.settings.key("deliver", row.event_id))


async def replay_outbox(
    d: Deps,
    *,
    since: datetime | None = None,
    type: str | None = None,
    extension_id: str | None = None,
    account_id: str | None = None,
    endpoint: str | None = None,
    dry_run: bool = False,
) -> int:
    """Send at once every matching delivery not yet done (pending, in backoff or dead).

    Dead ones are re-opened with a fresh `RINGSYNC_DELIVERY_MAX_AGE` of retries, and their dead
    letters marked replayed. Order per endpoint and user still holds: a re-opened dead event
    goes before the later ones that waited behind it. Returns how many.

    Naming an `endpoint` narrows to it and is the operator's word that it listens again: one
    that answered 410 is subscribed again, and what it missed since is sent too.
    """
    store = DeliveryStore(d.store.engine)
    found = await store.reopen(
        since=since,
        type=type,
        extension_id=extension_id,
        account_id=account_id,
        endpoint=endpoint,
        resubscribe=endpoint is not None,
        dry_run=dry_run,
    )
    if dry_run:
        return len(found)
    # A fresh job id per replay: a retry already queued for later must not swallow this one.
    stamp = str(time.time_ns())
    await asyncio.gather(
        *(
            d.queue.enqueue(
                DELIVER,
                due.delivery.outbox_id,
                endpoint=due.delivery.endpoint,
                attempt=due.delivery.attempts,
                job_id=job_id(
                    d.settings, due.event_id, due.delivery.endpoint, due.delivery.attempts
                )
                + f":replay:{stamp}",
            )
            for due in found
        )
    )
    return len(found)


async def skip_delivery(d: Deps, delivery_id: int, *, dry_run: bool = False) -> Hold:
    """Give up a dead delivery for good and send what waited behind it (see
    `workers.delivery.holds`); raises `NotSkippable` for one that is not dead."""
    store = DeliveryStore(d.store.engine)
    hold = await skip(store.engine, delivery_id, dry_run=dry_run)
    if not dry_run:
        await hand_over(d, store, hold.endpoint, hold.account_id, hold.extension_id)
    return hold


async def delivery_counts(store: Store, account_id: str | None = None) -> dict[str, int]:
    """Deliveries by status: pending, failed (in backoff), dead, skipped, delivered,
    unsubscribed."""
    return await DeliveryStore(store.engine).counts(account_id)
