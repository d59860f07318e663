"""The delivery sweep (cron, every minute): rows are durable, jobs are not.

It creates the delivery rows a lost `deliver` job never made and re-queues every delivery that
is due with no job, so a lost job or a crashed worker delays a delivery by a minute, never
forever. Job ids are the deliver job's own, so a delivery already queued is not queued twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from events.queue import DELIVER
from workers.context import deps
from workers.delivery.deliver import endpoints, job_id
from workers.delivery.store import DeliveryStore

log = logging.getLogger(__name__)

SWEEP_LIMIT: Final = 1000


async def sweep_deliveries(ctx: dict[str, Any]) -> str:
    """Create missing delivery rows and queue every delivery that is due (see module doc)."""
    d = deps(ctx)
    targets = endpoints(d.settings)
    if not targets:
        return "no endpoints"
    store = DeliveryStore(d.store.engine)
    gone = await store.unsubscribed(targets)
    since = datetime.now(UTC) - timedelta(seconds=d.settings.delivery_max_age)
    # The outbox of every account of this deployment (a database may be shared with others).
    created, due = 0, []
    for account_id in [await d.account_id(), *await store.stored_accounts()]:
        created += await store.materialize(
            targets, since=since, account_id=account_id, unsubscribed=gone, limit=SWEEP_LIMIT
        )
        due += await store.due(targets, account_id=account_id, limit=SWEEP_LIMIT)
    queued = await asyncio.gather(
        *(
            d.queue.enqueue(
                DELIVER,
                item.delivery.outbox_id,
                endpoint=item.delivery.endpoint,
                attempt=item.delivery.attempts,
                job_id=job_id(
                    d.settings, item.event_id, item.delivery.endpoint, item.delivery.attempts
                ),
            )
            for item in due
        )
    )
    if created or any(queued):
        log.info(
            "delivery sweep",
            extra={
                "rows_created": created,
                "due": len(due),
                "queued": sum(queued),
                "job_id": ctx.get("job_id"),
                "job_try": ctx.get("job_try"),
            },
        )
    return f"{created} created, {sum(queued)} queued"
