"""SQL for the mirror's write path: read users under the caller's lock, and write rows, history
and outbox rows for a batch of decisions, in the caller's transaction.

Synchronous, on purpose: a whole write transaction runs as one piece of work (see
`workers.store.engine.Statements`); async callers run these through `AsyncConnection.run_sync`."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, RowMapping, Select, and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from workers.decide import Decision, UserRow, event_payload
from workers.lifecycle import State
from workers.store import tables

_ROW_FIELDS = tuple(f.name for f in fields(UserRow))
_USER_KEYS = ("account_id", "extension_id")
# A reconcile knows nothing of activity: its upsert must not reset it.
_KEEP = ("last_activity_at",)
# At most this many users per statement when reading a page back (parameter limits).
_CHUNK = 500


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    account_id: str
    extension_id: str
    type: str
    sequence: int
    occurred_at: datetime
    payload: Mapping[str, Any]
    cause: str | None
    created_at: datetime


def user_row(values: RowMapping) -> UserRow:
    """A `users` row as the decision sees it."""
    row = {name: values[name] for name in _ROW_FIELDS}
    row["state"] = State(row["state"])
    row["raw"] = row["raw"] or {}
    return UserRow(**row)


def select_users(
    conn: Connection, account_id: str, extension_ids: Sequence[str]
) -> dict[str, UserRow]:
    """The stored users among `extension_ids` (locked FOR UPDATE on PostgreSQL)."""
    found: dict[str, UserRow] = {}
    locking = conn.dialect.name == "postgresql"
    for start in range(0, len(extension_ids), _CHUNK):
        chunk = extension_ids[start : start + _CHUNK]
        ids: dict[str, Any]
        if len(chunk) == 1:
            query, ids = _select_users(locking=locking, many=False), {"id": chunk[0]}
        else:
            query, ids = _select_users(locking=locking, many=True), {"ids": list(chunk)}
        for values in conn.execute(query, {"account_id": account_id, **ids}).mappings():
            found[values["extension_id"]] = user_row(values)
    return found


@functools.cache
def _select_users(*, locking: bool, many: bool) -> Select[Any]:
    # Built once: building a statement and its cache key anew took ~40% of a one-user reconcile.
    users = tables.users
    ids: ColumnElement[bool]
    if many:
        ids = users.c.extension_id.in_(bindparam("ids", expanding=True))
    else:
        ids = users.c.extension_id == bindparam("id")
    query = select(users).where(and_(users.c.account_id == bindparam("account_id"), ids))
    return query.with_for_update() if locking else query


@functools.cache
def _insert_outbox() -> Insert:
    return tables.outbox.insert().returning(*tables.outbox.c)


def write_decisions(
    conn: Connection,
    account_id: str,
    decisions: Sequence[tuple[str, Decision]],
    cause: str | None,
) -> list[OutboxRow]:
    """Upsert rows, append history and insert outbox rows (with the next per-user sequence
    numbers) for every decision that writes; returns the outbox rows."""
    now = datetime.now(UTC)
    upserts: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    for extension_id, decision in decisions:
        if decision.row is None:
            continue
        sequence = decision.stored.sequence if decision.stored else 0
        for event_type in decision.events:
            sequence += 1
            event_id = str(uuid.uuid4())
            payload = event_payload(
                event_type=event_type,
                event_id=event_id,
                account_id=account_id,
                extension_id=extension_id,
                sequence=sequence,
                decision=decision,
                cause=cause,
            )
            outbox.append(
                {
                    "event_id": event_id,
                    "account_id": account_id,
                    "extension_id": extension_id,
                    "type": str(event_type),
                    "sequence": sequence,
                    "occurred_at": decision.observation.read_at,
                    "payload": payload,
                    "cause": cause,
                    "created_at": now,
                }
            )
        row = {name: getattr(decision.row, name) for name in _ROW_FIELDS}
        row.update(
            account_id=account_id,
            extension_id=extension_id,
            state=str(decision.row.state),
            raw=dict(decision.row.raw),
            sequence=sequence,
        )
        upserts.append(row)
        if decision.history:
            changes.append(
                {
                    "account_id": account_id,
                    "extension_id": extension_id,
                    "changed_at": decision.observation.read_at,
                    "old_state": decision.old_state and str(decision.old_state),
                    "new_state": decision.new_state and str(decision.new_state),
                    "diffs": {k: list(pair) for k, pair in decision.diffs.items()},
                    "cause": cause,
                }
            )
    if conn.dialect.name == "postgresql" and len(upserts) == 1 and len(changes) <= 1 and outbox:
        return _write_one(conn, upserts[0], changes[0] if changes else None, outbox)
    if upserts:
        upsert = upsert_for(conn, tables.users, _USER_KEYS, keep=_KEEP)
        conn.execute(upsert, upserts)
    if changes:
        conn.execute(tables.user_changes.insert(), changes)
    if not outbox:
        return []
    # RETURNING gives the ids the database assigned: no second round trip. Sorted here, not by
    # SQLAlchemy: asking it for parameter order makes SQLite insert the rows one statement each.
    result = conn.execute(_insert_outbox(), outbox)
    return sorted((OutboxRow(**values) for values in result.mappings()), key=lambda row: row.id)


def _write_one(
    conn: Connection,
    upsert: dict[str, Any],
    change: dict[str, Any] | None,
    outbox: list[dict[str, Any]],
) -> list[OutboxRow]:
    """One user's row, history and outbox rows in one statement (PostgreSQL): the row and the
    history row are data-modifying WITH queries of the outbox INSERT. One round trip instead of
    three; the common single-user reconcile, not pages (a page's rows go as executemany)."""
    statement = _one_user_statement(
        tuple(upsert), tuple(change) if change is not None else None, tuple(outbox[0]), len(outbox)
    )
    values = {f"u_{name}": value for name, value in upsert.items()}
    if change is not None:
        values.update({f"c_{name}": value for name, value in change.items()})
    for index, row in enumerate(outbox):
        values.update({f"o{index}_{name}": value for name, value in row.items()})
    result = conn.execute(statement, values)
    return sorted((OutboxRow(**found) for found in result.mappings()), key=lambda row: row.id)


@functools.cache
def _one_user_statement(
    upsert: tuple[str, ...], change: tuple[str, ...] | None, outbox: tuple[str, ...], rows: int
) -> Insert:
    def bound(table: Any, prefix: str, names: tuple[str, ...]) -> dict[str, Any]:
        return {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names}

    users = _upsert("postgresql", tables.users, _USER_KEYS, _KEEP).values(
        bound(tables.users, "u_", upsert)
    )
    events = [bound(tables.outbox, f"o{index}_", outbox) for index in range(rows)]
    # One row's VALUES, not a list of one: SQLAlchemy cannot cache a multi-row VALUES, and
    # compiling this statement anew took ~15% of a worker's CPU. Several events of one change
    # (a move plus changed roles) are rare, and compiled each time.
    inserted = postgresql.insert(tables.outbox).values(events[0] if rows == 1 else events)
    statement = inserted.returning(*tables.outbox.c).add_cte(users.cte("written_user"))
    if change is not None:
        history = postgresql.insert(tables.user_changes).values(
            bound(tables.user_changes, "c_", change)
        )
        statement = statement.add_cte(history.cte("written_change"))
    return statement


def insert_for(conn: Connection | AsyncConnection, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT on both databases."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def upsert_for(
    conn: Connection | AsyncConnection, table: Any, keys: Sequence[str], *, keep: Sequence[str] = ()
) -> Any:
    """INSERT, or on a key conflict UPDATE every column but the keys and those in `keep`."""
    return _upsert(conn.dialect.name, table, tuple(keys), tuple(keep))


@functools.cache
def _upsert(dialect_name: str, table: Any, keys: tuple[str, ...], keep: tuple[str, ...]) -> Any:
    # Built once per table and dialect: building it (the `excluded` alias, a column apiece)
    # takes ~0.2 ms, a few percent of a one-user reconcile; its compiled form is cached anyway.
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    unchanged = {*keys, *keep}
    return insert.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: insert.excluded[c.name] for c in table.columns if c.name not in unchanged},
    )
