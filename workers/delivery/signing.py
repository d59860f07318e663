"""What downstream receives: a Standard Webhooks message and its signature headers.

The body is fixed per outbox row (the same bytes on every attempt), `webhook-id` is the row's
stable event id so receivers can drop repeats, and every attempt is signed afresh with its own
`webhook-timestamp` (receivers refuse stale timestamps, so an old signature must not be reused).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from standardwebhooks.webhooks import Webhook

from workers.store.mirror import OutboxRow


class LifecycleData(BaseModel):
    """A lifecycle event as the outbox stores it (`workers.decide.event_payload`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    event_id: str
    occurred_at: datetime
    sequence: int
    cause: str | None
    account_id: str
    extension_id: str
    state: str
    previous_state: str | None
    user: dict[str, Any]
    diffs: dict[str, list[Any]]


class LifecycleEvent(BaseModel):
    """The message: Standard Webhooks' `type`/`timestamp`/`data`, plus the event id.

    The in-process hook receives this same object.
    """

    model_config = ConfigDict(frozen=True)

    type: str
    id: str
    timestamp: datetime
    data: LifecycleData


def event_for(row: OutboxRow) -> LifecycleEvent:
    return LifecycleEvent(
        type=row.type,
        id=row.event_id,
        timestamp=row.occurred_at,
        data=LifecycleData.model_validate(row.payload),
    )


def body_of(event: LifecycleEvent) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))


def signed_headers(
    secret: str, event_id: str, body: bytes, now: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, timestamped `now`."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    signature = Webhook(secret).sign(event_id, now, body.decode())
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
