"""SQL for outbox deliveries: one row per outbox row and endpoint, with its status and retry clock.

Statuses: `pending` (due at `next_attempt_at`: never tried, waiting for an earlier event, or
replayed), `failed` (in backoff after a failed attempt), `delivered`, `dead` (given up; a dead
letter holds the last error), `skipped` (a dead one an operator gave up on, so later ones flow)
and `unsubscribed` (the endpoint answered 410). Delivery rows copy their outbox row's user key
and sequence, so "an earlier event of this user for this endpoint that holds this one back" is
one indexed query: that is what keeps each endpoint's events in order. Pending, failed and dead
ones hold later ones back: a later event never overtakes a dead one, until that is replayed
(re-opened, and sent first) or skipped.

It is longer than most modules on purpose: every query here filters the same table by the same
statuses and user key, and reading them side by side is how the ordering rule is checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.store import tables
from workers.store.engine import write_transaction
from workers.store.mirror import OutboxRow, insert_for
from workers.store.tables import UtcDateTime

OPEN: Final = ("pending", "failed")
# What holds a user's later events for the same endpoint back.
HOLDING: Final = (*OPEN, "dead")
STATUSES: Final = ("pending", "failed", "dead", "skipped", "delivered", "unsubscribed")

_d = tables.deliveries
_o = tables.outbox
_COLUMNS: Final = (
    "outbox_id", "endpoint", "account_id", "extension_id", "sequence",
    "status", "attempts", "next_attempt_at", "created_at", "updated_at",
)  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    id: int
    outbox_id: int
    endpoint: str
    account_id: str
    extension_id: str
    sequence: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status: int | None
    delivered_at: datetime | None
    replayed_at: datetime | None
    dead_letter_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Due:
    """A delivery and the stable event id of its outbox row (the job id and `webhook-id`)."""

    delivery: Delivery
    event_id: str


def _now() -> datetime:
    return datetime.now(UTC)


def _unsubscribed_key(endpoint: str) -> str:
    # Endpoints may be long URLs; the state table's key is short.
    return "delivery.unsubscribed:" + hashlib.sha256(endpoint.encode()).hexdigest()[:32]


def _held_back(row: Any) -> ColumnElement[bool]:
    """An unfinished or dead delivery to the same endpoint for the same user, earlier in
    sequence."""
    earlier = _d.alias("earlier")
    return exists().where(
        earlier.c.endpoint == row.c.endpoint,
        earlier.c.account_id == row.c.account_id,
        earlier.c.extension_id == row.c.extension_id,
        earlier.c.sequence < row.c.sequence,
        earlier.c.status.in_(HOLDING),
    )


class DeliveryStore:
    """Delivery rows in the identity store (built on the store's engine)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def outbox_row(self, outbox_id: int) -> OutboxRow | None:
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(_o).where(_o.c.id == outbox_id))).mappings().first()
            return OutboxRow(**found) if found is not None else None

    async def materialize(
        self,
        endpoints: Sequence[str],
        *,
        since: datetime,
        upto: OutboxRow | None = None,
        account_id: str | None = None,
        unsubscribed: frozenset[str] = frozenset(),
        limit: int = 5000,
    ) -> int:
        """Create delivery rows for outbox rows written since `since` that have none (their
        announcement was lost, or nothing listened then); returns how many.

        With `upto`: that row, and its user's earlier rows that have none, so a later event
        never starts while an earlier one of the same user has no delivery row yet. A row that
        already has deliveries is never offered to an endpoint added later.
        """
        never = and_(_o.c.created_at >= since, ~exists().where(_d.c.outbox_id == _o.c.id))
        if upto is not None:
            query = select(_o.c.id).where(
                _o.c.account_id == upto.account_id,
                _o.c.extension_id == upto.extension_id,
                _o.c.sequence <= upto.sequence,
                or_(_o.c.id == upto.id, never),
            )
        else:
            query = select(_o.c.id).where(never).order_by(_o.c.id).limit(limit)
            if account_id is not None:
                query = query.where(_o.c.account_id == account_id)
        now = _now()
        created = 0
        async with write_transaction(self.engine) as conn:
            # Chosen once, before any insert: the "has none" test must not see this call's rows.
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return 0
            for endpoint in endpoints:
                status = "unsubscribed" if endpoint in unsubscribed else "pending"
                missing = ~exists().where(_d.c.outbox_id == _o.c.id, _d.c.endpoint == endpoint)
                rows = select(
                    _o.c.id,
                    literal(endpoint),
                    _o.c.account_id,
                    _o.c.extension_id,
                    _o.c.sequence,
                    literal(status),
                    literal(0),
                    literal(now, UtcDateTime()),
                    literal(now, UtcDateTime()),
                    literal(now, UtcDateTime()),
                ).where(_o.c.id.in_(ids), missing)
                insert = insert_for(conn, _d).from_select(_COLUMNS, rows).on_conflict_do_nothing()
                result = await conn.execute(insert)
                created += max(result.rowcount or 0, 0)
        return created

    async def get(self, outbox_id: int, endpoint: str) -> Delivery | None:
        query = select(_d).where(_d.c.outbox_id == outbox_id, _d.c.endpoint == endpoint)
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).mappings().first()
            return Delivery(**found) if found is not None else None

    async def waits(self, delivery: Delivery) -> bool:
        """Whether an earlier event of the same user is unfinished or dead for this endpoint."""
        query = select(_d.c.id).where(_d.c.id == delivery.id, _held_back(_d))
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def next_open(self, endpoint: str, account_id: str, extension_id: str) -> Due | None:
        """The earliest unfinished delivery of one user to one endpoint."""
        query = (
            select(_d, _o.c.event_id)
            .join(_o, _o.c.id == _d.c.outbox_id)
            .where(
                _d.c.endpoint == endpoint,
                _d.c.account_id == account_id,
                _d.c.extension_id == extension_id,
                _d.c.status.in_(OPEN),
            )
            .order_by(_d.c.sequence)
            .limit(1)
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).mappings().first()
            return _due(found) if found is not None else None

    async def due(
        self, endpoints: Sequence[str], *, account_id: str | None = None, limit: int = 1000
    ) -> list[Due]:
        """Unfinished deliveries whose time has come and that are held back by no earlier event."""
        query = (
            select(_d, _o.c.event_id)
            .join(_o, _o.c.id == _d.c.outbox_id)
            .where(
                _d.c.endpoint.in_(list(endpoints)),
                _d.c.status.in_(OPEN),
                _d.c.next_attempt_at <= _now(),
                ~_held_back(_d),
            )
            .order_by(_d.c.next_attempt_at)
            .limit(limit)
        )
        if account_id is not None:
            query = query.where(_d.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return [_due(found) for found in (await conn.execute(query)).mappings()]

    async def record(self, delivery_id: int, **values: Any) -> None:
        """Write an attempt's outcome (status, attempts, next_attempt_at, last_error, ...)."""
        values["updated_at"] = _now()
        async with write_transaction(self.engine) as conn:
            await conn.execute(_d.update().where(_d.c.id == delivery_id).values(**values))

    async def bury(
        self, delivery: Delivery, *, attempts: int, error: str, status: int | None
    ) -> int:
        """Mark a delivery dead and write its dead letter, together; returns the letter's id."""
        now = _now()
        letter = {
            "account_id": delivery.account_id,
            "job": "deliver",
            # The deliver job's own arguments: replaying the letter re-opens and sends it.
            "arguments": {
                "outbox_id": delivery.outbox_id,
                "endpoint": delivery.endpoint,
                "replay": True,
            },
            "error": error,
            "attempts": attempts,
            "created_at": now,
        }
        letters = tables.dead_letters
        async with write_transaction(self.engine) as conn:
            result = await conn.execute(letters.insert().values(letter).returning(letters.c.id))
            letter_id = int(result.scalar_one())
            await conn.execute(
                _d.update()
                .where(_d.c.id == delivery.id)
                .values(
                    status="dead",
                    attempts=attempts,
                    last_error=error,
                    last_status=status,
                    dead_letter_id=letter_id,
                    updated_at=now,
                )
            )
        return letter_id

    async def unsubscribe(self, endpoint: str, label: str) -> bool:
        """Stop all unfinished deliveries to `endpoint`; True only for the first caller."""
        now = _now()
        state = tables.state
        values = {
            "account_id": "",
            "key": _unsubscribed_key(endpoint),
            "value": label,
            "updated_at": now,
        }
        async with write_transaction(self.engine) as conn:
            insert = insert_for(conn, state).values(values).on_conflict_do_nothing()
            first = (await conn.execute(insert.returning(state.c.key))).first() is not None
            await conn.execute(
                _d.update()
                .where(_d.c.endpoint == endpoint, _d.c.status.in_(OPEN))
                .values(status="unsubscribed", updated_at=now)
            )
        return first

    async def unsubscribed(self, endpoints: Sequence[str]) -> frozenset[str]:
        """Which of `endpoints` answered 410 at some point."""
        keys = {_unsubscribed_key(endpoint): endpoint for endpoint in endpoints}
        state = tables.state
        query = select(state.c.key).where(state.c.account_id == "", state.c.key.in_(list(keys)))
        async with self.engine.connect() as conn:
            return frozenset(keys[key] for key in (await conn.execute(query)).scalars())

    async def stored_accounts(self) -> list[str]:
        """The accounts added beside the default one (removed ones included: their events
        written before the removal are still owed downstream)."""
        query = select(tables.accounts.c.account_id).where(~tables.accounts.c.is_default)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def counts(self, account_id: str | None = None) -> dict[str, int]:
        query = select(_d.c.status, func.count()).group_by(_d.c.status)
        if account_id is not None:
            query = query.where(_d.c.account_id == account_id)
        found = dict.fromkeys(STATUSES, 0)
        async with self.engine.connect() as conn:
            for status, count in (await conn.execute(query)).all():
                found[status] = int(count)
        return found

    async def reopen(
        self,
        *,
        since: datetime | None = None,
        type: str | None = None,
        extension_id: str | None = None,
        outbox_id: int | None = None,
        endpoint: str | None = None,
        account_id: str | None = None,
        resubscribe: bool = False,
        dry_run: bool = False,
    ) -> list[Due]:
        """Make every matching unfinished or dead delivery due now (dead ones re-opened, their
        dead letters marked replayed); returns them as they were before.

        With `resubscribe` (and an `endpoint`), an endpoint that answered 410 is subscribed
        again in the same transaction, and the deliveries held since are sent as well.
        """
        statuses: tuple[str, ...] = (*OPEN, "dead")
        if resubscribe:
            if endpoint is None:
                raise ValueError("resubscribe needs an endpoint")
            statuses += ("unsubscribed",)
        where: list[ColumnElement[bool]] = [_d.c.status.in_(statuses)]
        if since is not None:
            where.append(_o.c.created_at >= since)
        if type is not None:
            where.append(_o.c.type == type)
        if extension_id is not None:
            where.append(_o.c.extension_id == extension_id)
        if outbox_id is not None:
            where.append(_d.c.outbox_id == outbox_id)
        if endpoint is not None:
            where.append(_d.c.endpoint == endpoint)
        if account_id is not None:
            where.append(_d.c.account_id == account_id)
        query = (
            select(_d, _o.c.event_id)
            .join(_o, _o.c.id == _d.c.outbox_id)
            .where(and_(*where))
            .order_by(_d.c.sequence, _d.c.id)
        )
        now = _now()
        async with write_transaction(self.engine) as conn:
            found = [_due(values) for values in (await conn.execute(query)).mappings()]
            if dry_run:
                return found
            if resubscribe and endpoint is not None:
                state = tables.state
                await conn.execute(
                    state.delete().where(
                        state.c.account_id == "", state.c.key == _unsubscribed_key(endpoint)
                    )
                )
            if not found:
                return found
            ids = [due.delivery.id for due in found]
            letters = [d.delivery.dead_letter_id for d in found if d.delivery.dead_letter_id]
            await conn.execute(
                _d.update()
                .where(_d.c.id.in_(ids))
                .values(status="pending", next_attempt_at=now, replayed_at=now, updated_at=now)
            )
            if letters:
                dead = tables.dead_letters
                await conn.execute(
                    dead.update().where(dead.c.id.in_(letters)).values(replayed_at=now)
                )
        return found


def _due(values: Any) -> Due:
    row = dict(values)
    event_id = row.pop("event_id")
    return Due(Delivery(**row), event_id)
