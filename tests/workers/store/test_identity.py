"""The identity store on SQLite and PostgreSQL: one transaction per decision, the stale-write
guard under concurrency, the outbox, raw events, dead letters and small facts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.exc import IntegrityError

from workers.decide import Gone, Observation, Policy, decide
from workers.lifecycle import EventType, State
from workers.store import tables
from workers.store.engine import lock_users
from workers.store.identity import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def seen(status: str = "Enabled", seconds: float = 0, **fields: Any) -> Observation:
    profile: dict[str, Any] = {"type": "User", "first_name": "Ada", "email": "ada@example.com"}
    profile.update(fields)
    return Observation(
        read_at=T0 + timedelta(seconds=seconds), status=status, raw={"s": status}, **profile
    )


async def test_apply_writes_row_history_and_outbox_together(store: Store, account_id: str) -> None:
    decision = decide(seen(), None)
    written = await store.apply(account_id, "101", decision, "uuid-1")

    row = await store.get_user(account_id, "101")
    assert row is not None
    assert (row.state, row.status, row.email) == (State.ACTIVE, "Enabled", "ada@example.com")
    assert row.observed_at == T0
    assert row.observed_at.tzinfo is not None
    assert row.raw == {"s": "Enabled"}
    assert row.sequence == 1
    assert [(o.type, o.sequence, o.cause) for o in written] == [("user.created", 1, "uuid-1")]
    assert written[0].payload["user"]["email"] == "ada@example.com"
    assert written[0].payload["event_id"] == written[0].event_id
    changes = await store.list_changes(account_id, "101")
    assert [(c["old_state"], c["new_state"], c["cause"]) for c in changes] == [
        (None, "active", "uuid-1")
    ]
    assert changes[0]["diffs"]["email"] == [None, "ada@example.com"]


async def test_a_users_change_is_one_write_statement_and_keeps_its_activity(
    store: Store, account_id: str
) -> None:
    """On PostgreSQL a one-user reconcile writes its row, history and outbox rows in one
    statement (the outbox INSERT, the others in its WITH), one round trip instead of three; on
    SQLite (in process) they stay three. Either way the upsert leaves the activity scan's
    column as it is."""
    await store.reconcile(account_id, "101", seen(), "a")
    users = tables.users
    async with store.engine.begin() as conn:
        mine = (users.c.account_id == account_id) & (users.c.extension_id == "101")
        await conn.execute(users.update().where(mine).values(last_activity_at=T0))
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    engines = store.statements.engines()
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        decision, written = await store.reconcile(
            account_id, "101", seen("Disabled", seconds=1, department="Ops"), "b"
        )
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)

    writes = [s for s in sent if s.lstrip().upper().startswith(("INSERT", "WITH", "UPDATE"))]
    assert len(writes) == (1 if store.engine.dialect.name == "postgresql" else 3)
    assert decision.new_state is State.SUSPENDED
    assert [(o.type, o.sequence, o.cause) for o in written] == [("user.suspended", 2, "b")]
    assert written == (await store.list_outbox(account_id))[1:]
    changes = await store.list_changes(account_id, "101")
    assert [(c["old_state"], c["new_state"], c["cause"]) for c in changes][1:] == [
        ("active", "suspended", "b")
    ]
    assert changes[1]["diffs"]["department"] == [None, "Ops"]
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(users).where(mine))).mappings().one()
    assert (row["state"], row["department"], row["sequence"]) == ("suspended", "Ops", 2)
    assert row["last_activity_at"] == T0


async def test_a_reconciles_statements_come_compiled_from_the_cache(
    store: Store, account_id: str
) -> None:
    """Every statement of a one-user reconcile, once warm, is SQLAlchemy's cached compilation:
    compiling the PostgreSQL one-statement write anew on every change took ~15% of a worker's
    CPU (a multi-row VALUES, which SQLAlchemy does not cache)."""
    for warm in ("101", "102"):
        await store.reconcile(account_id, warm, seen(), "a")
        await store.reconcile(account_id, warm, seen("Disabled", seconds=1), "b")
    compiled: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
        if context.compiled is not None:  # not a string sent as it is (SQLite's BEGIN)
            compiled.append((statement.split(None, 1)[0], context.cache_hit))

    engines = store.statements.engines()
    for engine in engines:
        event.listen(engine, "after_cursor_execute", record)
    try:
        await store.reconcile(account_id, "103", seen(), "c")  # a new user: row, history, event
        await store.reconcile(account_id, "103", seen("Disabled", seconds=1), "d")  # a move
    finally:
        for engine in engines:
            event.remove(engine, "after_cursor_execute", record)

    assert compiled
    assert [(verb, found) for verb, found in compiled if found is not CacheStats.CACHE_HIT] == []


async def test_sequences_grow_per_user_and_unchanged_reads_write_no_history(
    store: Store, account_id: str
) -> None:
    await store.reconcile(account_id, "101", seen(), "a")
    await store.reconcile(account_id, "101", seen(seconds=1), "b")  # nothing changed
    await store.reconcile(account_id, "101", seen("Disabled", seconds=2), "c")
    await store.reconcile(account_id, "102", seen(seconds=2), "d")

    outbox = await store.list_outbox(account_id)
    assert [(o.extension_id, o.type, o.sequence) for o in outbox] == [
        ("101", "user.created", 1),
        ("101", "user.suspended", 2),
        ("102", "user.created", 1),
    ]
    assert len(await store.list_changes(account_id, "101")) == 2
    row = await store.get_user(account_id, "101")
    assert row is not None
    assert row.observed_at == T0 + timedelta(seconds=2)


async def test_apply_decides_again_against_the_row_stored_now(
    store: Store, account_id: str
) -> None:
    old_read = decide(seen("Disabled", seconds=1), None)  # decided when nothing was stored
    await store.reconcile(account_id, "101", seen(seconds=5), "newer")

    written = await store.apply(account_id, "101", old_read, "older")

    assert written == []
    row = await store.get_user(account_id, "101")
    assert row is not None
    assert (row.state, row.observed_at) == (State.ACTIVE, T0 + timedelta(seconds=5))


async def test_concurrent_applies_for_one_user_end_in_the_latest_read(
    store: Store, account_id: str, open_store: Callable[[], Awaitable[Store]]
) -> None:
    stores = [store, await open_store(), await open_store()]
    statuses = ["Enabled", "Disabled", "NotActivated", "Frozen"]
    reads = [seen(statuses[i % 4], seconds=i) for i in range(24)]
    order = reads[::2] + reads[1::2][::-1]  # shuffled arrival, newest read not last

    await asyncio.gather(
        *(
            stores[i % 3].reconcile(account_id, "101", observation, f"e{i}")
            for i, observation in enumerate(order)
        )
    )

    row = await store.get_user(account_id, "101")
    assert row is not None
    assert row.observed_at == reads[-1].read_at
    assert row.status == reads[-1].status
    sequences = [o.sequence for o in await store.list_outbox(account_id)]
    assert sequences == list(range(1, len(sequences) + 1))
    assert row.sequence == len(sequences)


async def test_a_rolled_back_apply_leaves_no_row_history_or_outbox(
    store: Store, account_id: str
) -> None:
    # An outbox row already holding sequence 1 makes the apply's own outbox insert fail.
    async with store.engine.begin() as conn:
        await conn.execute(
            tables.outbox.insert().values(
                event_id="occupied",
                account_id=account_id,
                extension_id="101",
                type="user.created",
                sequence=1,
                occurred_at=T0,
                payload={},
                created_at=T0,
            )
        )

    with pytest.raises(IntegrityError):
        await store.apply(account_id, "101", decide(seen(), None), "doomed")

    assert await store.get_user(account_id, "101") is None
    assert await store.list_changes(account_id, "101") == []
    assert [o.event_id for o in await store.list_outbox(account_id)] == ["occupied"]


async def test_apply_many_reconciles_a_page_in_one_transaction(
    store: Store, account_id: str
) -> None:
    await store.reconcile(account_id, "103", seen(), "first")
    page: dict[str, Observation | Gone] = {
        "101": seen(seconds=1),
        "102": seen("NotActivated", seconds=1, email="b@example.com"),
        "103": Gone(T0 + timedelta(seconds=1)),
        "104": seen("Unassigned", seconds=1),
    }

    decisions, written = await store.apply_many(account_id, page, "resync-1")

    assert {i: d.events for i, d in decisions.items()} == {
        "101": (EventType.CREATED,),
        "102": (EventType.CREATED,),
        "103": (EventType.DEPROVISIONED,),
        "104": (),
    }
    assert sorted((o.extension_id, o.type) for o in written) == [
        ("101", "user.created"),
        ("102", "user.created"),
        ("103", "user.deprovisioned"),
    ]
    users = {u.extension_id: u.row for u in await store.list_users(account_id=account_id)}
    assert set(users) == {"101", "102", "103"}
    assert users["103"].state == State.DEPROVISIONED
    assert users["103"].sequence == 2
    assert [u.extension_id for u in await store.list_users("pending", account_id=account_id)] == [
        "102"
    ]


async def test_baseline_page_writes_no_outbox(store: Store, account_id: str) -> None:
    assert not await store.account_has_users(account_id)
    _, written = await store.apply_many(
        account_id, {"101": seen(), "102": seen()}, "resync-0", Policy(baseline=True)
    )
    assert written == []
    assert await store.account_has_users(account_id)
    assert len(await store.list_users(account_id=account_id)) == 2


async def test_record_event_is_idempotent_on_uuid(store: Store, account_id: str) -> None:
    uuid = f"{account_id}-n1"
    body = '{"uuid": "n1", "body": {"extensionId": 101}}'
    assert await store.record_event(uuid=uuid, body=body, account_id=account_id, event="/x")
    assert not await store.record_event(uuid=uuid, body=body, account_id=account_id)
    # The outcome comes with a second write of the same uuid, finished (an earlier try's row).
    assert await store.record_event(uuid=uuid, body=body, outcome="expanded", finished=True)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(tables.events).where(tables.events.c.uuid == uuid))).all()
    assert len(rows) == 1
    assert rows[0].outcome == "expanded"
    assert rows[0].body == body
    assert rows[0].received_at.tzinfo is not None


async def test_dead_letters_round_trip(store: Store, account_id: str) -> None:
    letter_id = await store.add_dead_letter(
        "reconcile", {"extension_id": "101"}, "CMN-408 forbidden", 3, account_id=account_id
    )
    mine = [d for d in await store.list_dead_letters() if d.account_id == account_id]
    assert [(d.id, d.job, d.arguments, d.attempts) for d in mine] == [
        (letter_id, "reconcile", {"extension_id": "101"}, 3)
    ]
    await store.mark_dead_letter_replayed(letter_id)
    assert letter_id not in [d.id for d in await store.list_dead_letters()]
    assert letter_id in [d.id for d in await store.list_dead_letters(include_replayed=True)]


async def test_state_facts_are_upserted_per_account(store: Store, account_id: str) -> None:
    assert await store.get_state("last_event_at", account_id) is None
    await store.set_state("last_event_at", "2026-01-05T09:00:00+00:00", account_id)
    await store.set_state("last_event_at", "2026-01-05T10:00:00+00:00", account_id)
    assert await store.get_state("last_event_at", account_id) == "2026-01-05T10:00:00+00:00"
    assert await store.get_state("last_event_at", account_id + "-other") is None


async def test_times_compare_as_times_whatever_offset_they_came_with(
    store: Store, account_id: str
) -> None:
    # An earlier read whose wall-clock text (+02:00) sorts later must still be stale.
    await store.reconcile(account_id, "101", seen(), "a")
    earlier = (T0 - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=2)))
    stale = Observation(read_at=earlier, status="Disabled", type="User")

    decision, written = await store.reconcile(account_id, "101", stale, "b")

    assert (decision.row, written) == (None, [])
    row = await store.get_user(account_id, "101")
    assert row is not None
    assert row.observed_at == T0


async def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        async with store.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30_000
    finally:
        await store.close()


async def test_overlapping_pages_written_at_once_neither_deadlock_nor_lose_a_user(
    store: Store, account_id: str, open_store: Callable[[], Awaitable[Store]]
) -> None:
    other = await open_store()
    ids = [str(n) for n in range(200, 260)]
    first = {i: seen(seconds=1) for i in ids[:40]}
    second = {i: seen("Disabled", seconds=2) for i in reversed(ids[20:])}

    await asyncio.gather(
        *(s.apply_many(account_id, page, "page") for s, page in ((store, first), (other, second)))
    )

    users = {u.extension_id: u.row for u in await store.list_users(account_id=account_id)}
    assert set(users) == set(ids)
    assert {users[i].status for i in ids[20:]} == {"Disabled"}
    assert {users[i].status for i in ids[:20]} == {"Enabled"}


async def test_a_pages_user_locks_hold_back_a_single_writer_of_one_of_them(
    store: Store, account_id: str
) -> None:
    """A page's writer and a one-user reconcile of a user on it lock the same key (one user's
    lock is a statement of its own): the single writer waits until the page commits."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE admits one writer at a time")
    async with store.engine.connect() as page, page.begin():
        await page.run_sync(lambda conn: lock_users(conn, account_id, ["101", "102"]))

        pids: list[int] = []

        async def single() -> None:
            async with store.engine.connect() as conn, conn.begin():
                pids.append((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                await conn.run_sync(lambda c: lock_users(c, account_id, ["102"]))

        waiting = asyncio.create_task(single())
        waits = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND pid = :pid"
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        async with store.engine.connect() as probe:
            while not pids or (await probe.execute(waits, {"pid": pids[0]})).scalar_one() == 0:
                assert loop.time() < deadline, "the single writer never waited"
                await asyncio.sleep(0.01)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 10)


async def test_users_are_counted_per_account(store: Store, account_id: str) -> None:
    other = f"{account_id}-other"
    await store.apply_many(account_id, {"101": seen(), "102": seen(email="b@example.com")}, "a")
    await store.apply_many(other, {str(i): seen(email=f"{i}@example.com") for i in range(5)}, "b")
    # A listing of one account is sized by its own users, not the deployment's.
    assert await store.count_users(account_id) == 2
    assert await store.count_users(other) == 5
