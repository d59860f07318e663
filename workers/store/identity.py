"""The identity store: users, their history and the outbox, written together or not at all.

`reconcile`, `apply_many` and `apply` are the only ways a user row changes. Each locks its
users (advisory locks on PostgreSQL, SQLite's write lock), reads what is stored *now*, decides
against that (so the stale-write guard runs against the truth, and two writers of one user
cannot interleave), then writes rows, history and outbox rows in one transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.decide import (
    DEFAULT_POLICY,
    Decision,
    Gone,
    Observation,
    Policy,
    Roles,
    UserRow,
    decide,
)
from workers.lifecycle import State
from workers.store import tables
from workers.store.engine import (
    Statements,
    create_engine,
    lock_users,
    upgrade,
    write_transaction,
)
from workers.store.mirror import (
    OutboxRow,
    select_users,
    upsert_for,
    user_row,
    write_decisions,
)

__all__ = ["DeadLetter", "MirroredUser", "OutboxRow", "Store", "upgrade"]


@dataclass(frozen=True)
class MirroredUser:
    """A stored user with its key."""

    account_id: str
    extension_id: str
    row: UserRow
    # Written by the activity scan alone, so not part of the row a decision sees.
    last_activity_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    """Work given up on, kept with its reason until replayed."""

    id: int
    account_id: str | None
    job: str
    arguments: Any
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Typed access to the identity store for jobs and commands; one per process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Users, their history, outbox rows and notifications are written through this.
        self.statements = Statements(engine)

    @classmethod
    async def open(cls, database_url: str, *, migrate: bool = True, pre_ping: bool = False) -> Self:
        """Open the store, applying migrations first unless `migrate` is False (`pre_ping`: see
        `create_engine`)."""
        if migrate:
            await upgrade(database_url)
        return cls(create_engine(database_url, pre_ping=pre_ping))

    async def close(self) -> None:
        self.statements.close()
        await self.engine.dispose()

    # --- users ------------------------------------------------------------------------------

    async def get_user(self, account_id: str, extension_id: str) -> UserRow | None:
        return await self.statements.read(lambda conn: _select_user(conn, account_id, extension_id))

    async def list_users(
        self, state: State | str | None = None, account_id: str | None = None
    ) -> list[MirroredUser]:
        """Every known user (deprovisioned ones included), optionally in one state."""
        query = select(tables.users).order_by(
            tables.users.c.account_id, tables.users.c.extension_id
        )
        if state is not None:
            query = query.where(tables.users.c.state == str(state))
        if account_id is not None:
            query = query.where(tables.users.c.account_id == account_id)
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [
                MirroredUser(m["account_id"], m["extension_id"], user_row(m), m["last_activity_at"])
                for m in result.mappings()
            ]

    async def count_users(self, account_id: str) -> int:
        """The account's users in the mirror (whatever their state)."""
        query = select(func.count()).where(tables.users.c.account_id == account_id)
        return int(await self.statements.read(lambda conn: conn.execute(query).scalar_one()))

    async def account_has_users(self, account_id: str) -> bool:
        query = select(tables.users.c.extension_id).where(tables.users.c.account_id == account_id)
        return await self.statements.read(
            lambda conn: conn.execute(query.limit(1)).first() is not None
        )

    async def live_user_ids(self, account_id: str) -> list[str]:
        """The extension ids of the account's users not deprovisioned."""
        users = tables.users
        query = select(users.c.extension_id).where(
            and_(users.c.account_id == account_id, users.c.state != str(State.DEPROVISIONED))
        )
        async with self.engine.connect() as conn:
            return [str(found) for found in (await conn.execute(query)).scalars()]

    async def apply(
        self, account_id: str, extension_id: str, decision: Decision, cause: str | None
    ) -> list[OutboxRow]:
        """Write `decision` for one user in one transaction; returns the outbox rows written."""

        def work(conn: Connection) -> list[OutboxRow]:
            lock_users(conn, account_id, [extension_id])
            current = _select_user(conn, account_id, extension_id)
            found = decision
            if current != found.stored:
                found = decide(found.observation, current, found.policy)
            return write_decisions(conn, account_id, [(extension_id, found)], cause)

        return await self.statements.write(work)

    async def reconcile(
        self,
        account_id: str,
        extension_id: str,
        observation: Observation | Gone | Roles,
        cause: str | None,
        policy: Policy = DEFAULT_POLICY,
    ) -> tuple[Decision, list[OutboxRow]]:
        """Decide against the row as stored under the lock, and write it."""

        def work(conn: Connection) -> tuple[Decision, list[OutboxRow]]:
            lock_users(conn, account_id, [extension_id])
            current = _select_user(conn, account_id, extension_id)
            decision = decide(observation, current, policy)
            written = write_decisions(conn, account_id, [(extension_id, decision)], cause)
            return decision, written

        return await self.statements.write(work)

    async def apply_many(
        self,
        account_id: str,
        observations: Mapping[str, Observation | Gone | Roles],
        cause: str | None,
        policy: Policy = DEFAULT_POLICY,
    ) -> tuple[dict[str, Decision], list[OutboxRow]]:
        """Reconcile a page of users (extension id → observation) in one transaction."""
        ids = sorted(observations)

        def work(conn: Connection) -> tuple[dict[str, Decision], list[OutboxRow]]:
            lock_users(conn, account_id, ids)
            stored = select_users(conn, account_id, ids)
            decisions = {i: decide(observations[i], stored.get(i), policy) for i in ids}
            written = write_decisions(conn, account_id, list(decisions.items()), cause)
            return decisions, written

        return await self.statements.write(work)

    # --- history and outbox (read side) -----------------------------------------------------

    async def list_changes(self, account_id: str, extension_id: str) -> list[dict[str, Any]]:
        """A user's history, oldest first."""
        changes = tables.user_changes
        query = (
            select(changes)
            .where(and_(changes.c.account_id == account_id, changes.c.extension_id == extension_id))
            .order_by(changes.c.id)
        )
        async with self.engine.connect() as conn:
            return [dict(values) for values in (await conn.execute(query)).mappings()]

    async def list_outbox(self, account_id: str | None = None) -> list[OutboxRow]:
        query = select(tables.outbox).order_by(tables.outbox.c.id)
        if account_id is not None:
            query = query.where(tables.outbox.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return [OutboxRow(**values) for values in (await conn.execute(query)).mappings()]

    # --- raw events, dead letters, small facts ----------------------------------------------

    async def record_event(
        self,
        *,
        uuid: str,
        body: str,
        event: str | None = None,
        subscription_id: str | None = None,
        account_id: str | None = None,
        received_at: datetime | None = None,
        outcome: str | None = None,
        finished: bool = False,
    ) -> bool:
        """Store a raw notification once; False when its uuid was already stored.

        With `finished`, a row stored before (unfinished, by an earlier try) takes `outcome`
        (and True is returned): a notification and what became of it are one write.
        """
        values = {
            "uuid": uuid,
            "body": body,
            "event": event,
            "subscription_id": subscription_id,
            "account_id": account_id,
            "received_at": received_at or _now(),
            "outcome": outcome,
        }

        def work(conn: Connection) -> bool:
            insert = _insert_event(conn.dialect.name, finished=finished)
            return conn.execute(insert, values).first() is not None

        return await self.statements.write(work, single=True)

    async def event_outcome(self, uuid: str) -> str | None:
        """What became of a stored notification (None when it is not stored, or unfinished)."""
        found: str | None = await self.statements.read(
            lambda conn: conn.execute(_EVENT_OUTCOME, {"uuid": uuid}).scalar_one_or_none()
        )
        return found

    async def add_dead_letter(
        self,
        job: str,
        arguments: Any,
        error: str,
        attempts: int,
        account_id: str | None = None,
    ) -> int:
        values = {
            "job": job,
            "arguments": arguments,
            "error": error,
            "attempts": attempts,
            "account_id": account_id,
            "created_at": _now(),
        }
        async with write_transaction(self.engine) as conn:
            result = await conn.execute(
                tables.dead_letters.insert().values(values).returning(tables.dead_letters.c.id)
            )
            return int(result.scalar_one())

    async def list_dead_letters(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        letters = tables.dead_letters
        query = select(letters).order_by(letters.c.id)
        if not include_replayed:
            query = query.where(letters.c.replayed_at.is_(None))
        async with self.engine.connect() as conn:
            return [DeadLetter(**values) for values in (await conn.execute(query)).mappings()]

    async def mark_dead_letter_replayed(self, dead_letter_id: int) -> None:
        letters = tables.dead_letters
        async with write_transaction(self.engine) as conn:
            await conn.execute(
                letters.update().where(letters.c.id == dead_letter_id).values(replayed_at=_now())
            )

    async def get_state(self, key: str, account_id: str = "") -> str | None:
        state = tables.state
        query = select(state.c.value).where(
            and_(state.c.account_id == account_id, state.c.key == key)
        )
        value: str | None = await self.statements.read(
            lambda conn: conn.execute(query).scalar_one_or_none()
        )
        return value

    async def set_state(self, key: str, value: str, account_id: str = "") -> None:
        values = {"account_id": account_id, "key": key, "value": value, "updated_at": _now()}

        def work(conn: Connection) -> None:
            conn.execute(upsert_for(conn, tables.state, ("account_id", "key")), [values])

        await self.statements.write(work, single=True)

    async def count(self, table: str) -> int:
        """Rows in one table (for status output and tests)."""
        async with self.engine.connect() as conn:
            query = select(func.count()).select_from(tables.metadata.tables[table])
            return int((await conn.execute(query)).scalar_one())


def _select_user(conn: Connection, account_id: str, extension_id: str) -> UserRow | None:
    return select_users(conn, account_id, [extension_id]).get(extension_id)


_EVENT_OUTCOME = select(tables.events.c.outcome).where(tables.events.c.uuid == bindparam("uuid"))


@functools.cache
def _insert_event(dialect_name: str, *, finished: bool) -> Any:
    """A notification's row, once (`finished`: or its outcome, over an unfinished row)."""
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(tables.events)
    if finished:
        insert = insert.on_conflict_do_update(
            index_elements=["uuid"], set_={"outcome": insert.excluded.outcome}
        )
    else:
        insert = insert.on_conflict_do_nothing()
    return insert.returning(tables.events.c.id)
