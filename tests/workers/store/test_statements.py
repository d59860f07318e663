"""SQLite's write lock is held for a transaction's statements alone, never across event-loop
turns; another process holding it is waited out, without stopping the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.workers.store.test_identity import seen
from workers.store.identity import Store


def _probe(database_url: str) -> sqlite3.Connection:
    """A connection of its own that never waits for the lock."""
    database = make_url(database_url).database or ""
    return sqlite3.connect(database, timeout=0, isolation_level=None, check_same_thread=False)


async def test_no_turn_of_the_loop_sees_the_write_lock_held(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    probe = _probe(sqlite_url)
    turns = locked = 0
    done = asyncio.Event()

    async def probing() -> None:
        nonlocal turns, locked
        while not done.is_set():
            turns += 1
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
            except sqlite3.OperationalError:
                locked += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(probing())
    try:
        for n in range(20):
            await store.reconcile("1", str(100 + n), seen(), f"e{n}")
            await store.record_event(uuid=f"u{n}", body="{}", outcome="done")
            await asyncio.sleep(0)  # the probe's turn, at the least
    finally:
        done.set()
        await task
        probe.close()
    assert len(await store.list_users(account_id="1")) == 20
    await store.close()
    assert turns >= 20
    assert locked == 0


async def test_a_lock_held_elsewhere_is_waited_out_while_the_loop_runs(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    holder = _probe(sqlite_url)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(ticking())
    try:
        release.start()
        _, written = await store.reconcile("1", "101", seen(), "after the lock")
    finally:
        ticker.cancel()
        release.join()
        holder.close()
    assert written  # the user's first row, once the other connection let go
    assert ticks >= 10  # the loop kept turning meanwhile (~30 in 0.3 s)
    await store.close()


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'closed.db'}")
    await store.set_state("k", "v")
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.set_state("k", "w")
