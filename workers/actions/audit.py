"""The audit trail: one signed `action.*` event per step of an action, written to the outbox in
the step's own transaction, with the user's next sequence number (the caller holds the user's
write lock), so each endpoint hears an action's steps and the `user.*` events they cause in one
order. A cancellation is an `action.rejected` whose state says `cancelled`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from workers.actions.action import Action
from workers.actions.decide import ActionState
from workers.store import tables
from workers.store.identity import OutboxRow

EVENT_FOR: Final = {
    ActionState.PROPOSED: "action.proposed",
    ActionState.APPROVED: "action.approved",
    ActionState.REJECTED: "action.rejected",
    ActionState.CANCELLED: "action.rejected",
    ActionState.DONE: "action.done",
    ActionState.FAILED: "action.failed",
}


async def write_event(
    conn: AsyncConnection, action: Action, previous: ActionState | None, now: datetime
) -> OutboxRow:
    """Write the `action.*` outbox row for the action's current state."""
    users, outbox = tables.users, tables.outbox
    key = and_(users.c.account_id == action.account_id, users.c.extension_id == action.extension_id)
    sequence = int((await conn.execute(select(users.c.sequence).where(key))).scalar_one()) + 1
    await conn.execute(update(users).where(key).values(sequence=sequence))
    event_id = str(uuid.uuid4())
    event_type = EVENT_FOR[action.state]
    # The shape of every outbox event (see `workers.decide.event_payload`): `state` and
    # `previous_state` are the action's, `user` the snapshot, and `action` the action itself.
    payload = {
        "type": event_type,
        "event_id": event_id,
        "occurred_at": now.isoformat(),
        "sequence": sequence,
        "cause": f"action:{action.id}",
        "account_id": action.account_id,
        "extension_id": action.extension_id,
        "state": str(action.state),
        "previous_state": str(previous) if previous is not None else None,
        "user": action.snapshot,
        "diffs": {},
        "action": action.as_json(),
    }
    await conn.execute(
        outbox.insert().values(
            event_id=event_id,
            account_id=action.account_id,
            extension_id=action.extension_id,
            type=event_type,
            sequence=sequence,
            occurred_at=now,
            payload=payload,
            cause=payload["cause"],
            created_at=now,
        )
    )
    row = (await conn.execute(select(outbox).where(outbox.c.event_id == event_id))).one()
    return OutboxRow(**row._mapping)
