"""Dead deliveries hold their user's later events back: what is held, and giving one up.

Downstream hears a user's events for an endpoint in order, always: a later event waits while an
earlier one is in backoff, and also once it is dead, so an offboarding pipeline never acts on
`user.reactivated` before it heard `user.suspended`. A hold ends when the dead delivery is
replayed (`ringsync replay --outbox`: re-opened, it goes first) or skipped (`--skip ID`: given
up for good, its dead letter closed). Either way the events that waited behind it start a fresh
`RINGSYNC_DELIVERY_MAX_AGE`: their wait was not theirs. Those waiting are never attempted, so
they do not age out meanwhile; only the one at the head of a line can die.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.delivery.store import OPEN
from workers.store import tables
from workers.store.engine import write_transaction

# Holds listed by `status` (all are counted).
SHOWN: Final = 100

_d = tables.deliveries
_o = tables.outbox


class NotSkippable(Exception):
    """The delivery named to be skipped does not exist or is not dead (the message says which)."""


@dataclass(frozen=True)
class Hold:
    """A dead delivery and the user's events for the same endpoint waiting behind it."""

    delivery_id: int
    outbox_id: int
    account_id: str
    extension_id: str
    endpoint: str
    type: str
    event_id: str
    reason: str | None
    dead_since: datetime
    waiting: int


async def holds(engine: AsyncEngine, *, limit: int = SHOWN) -> tuple[int, list[Hold]]:
    """How many dead deliveries hold a line, and the oldest `limit` of them."""
    dead = _d.c.status == "dead"
    async with engine.connect() as conn:
        count = int((await conn.execute(select(func.count()).where(dead))).scalar_one())
        query = _held().where(dead).order_by(_d.c.updated_at, _d.c.id).limit(limit)
        found = [_hold(row) for row in (await conn.execute(query)).mappings()]
    return count, found


async def skip(engine: AsyncEngine, delivery_id: int, *, dry_run: bool = False) -> Hold:
    """Give up dead delivery `delivery_id` so its user's later events flow; returns its hold.

    In one transaction: the delivery becomes `skipped`, its dead letter is closed, and the
    events that waited behind it are due now with a fresh max age. Raises `NotSkippable`.
    """
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        row = (await conn.execute(_held().where(_d.c.id == delivery_id))).mappings().first()
        if row is None:
            raise NotSkippable(f"there is no delivery {delivery_id}")
        if row["status"] != "dead":
            raise NotSkippable(
                f"delivery {delivery_id} is {row['status']}, not dead: only a dead delivery "
                "holds later events back"
            )
        hold = _hold(row)
        if dry_run:
            return hold
        given_up = await conn.execute(
            _d.update()
            .where(_d.c.id == delivery_id, _d.c.status == "dead")  # not replayed meanwhile
            .values(status="skipped", updated_at=now)
        )
        if given_up.rowcount != 1:
            raise NotSkippable(f"delivery {delivery_id} changed meanwhile; look again")
        if row["dead_letter_id"] is not None:
            letters = tables.dead_letters
            await conn.execute(
                letters.update()
                .where(letters.c.id == row["dead_letter_id"], letters.c.replayed_at.is_(None))
                .values(replayed_at=now)
            )
        await conn.execute(
            _d.update()
            .where(
                _d.c.endpoint == hold.endpoint,
                _d.c.account_id == hold.account_id,
                _d.c.extension_id == hold.extension_id,
                _d.c.sequence > row["sequence"],
                _d.c.status.in_(OPEN),
            )
            .values(next_attempt_at=now, replayed_at=now, updated_at=now)
        )
    return hold


def _held() -> Select[Any]:
    """Deliveries with their event and the count of the user's open ones behind each."""
    later = _d.alias("later")
    waiting = (
        select(func.count())
        .where(
            later.c.endpoint == _d.c.endpoint,
            later.c.account_id == _d.c.account_id,
            later.c.extension_id == _d.c.extension_id,
            later.c.sequence > _d.c.sequence,
            later.c.status.in_(OPEN),
        )
        .scalar_subquery()
    )
    return select(
        _d.c.id,
        _d.c.outbox_id,
        _d.c.account_id,
        _d.c.extension_id,
        _d.c.endpoint,
        _d.c.status,
        _d.c.sequence,
        _d.c.last_error,
        _d.c.dead_letter_id,
        _d.c.updated_at,
        _o.c.type,
        _o.c.event_id,
        waiting.label("waiting"),
    ).join(_o, _o.c.id == _d.c.outbox_id)


def _hold(row: Any) -> Hold:
    return Hold(
        delivery_id=int(row["id"]),
        outbox_id=int(row["outbox_id"]),
        account_id=row["account_id"],
        extension_id=row["extension_id"],
        endpoint=row["endpoint"],
        type=row["type"],
        event_id=row["event_id"],
        reason=row["last_error"],
        dead_since=row["updated_at"],
        waiting=int(row["waiting"]),
    )
