"""Engines for the identity store, write transactions that serialise per user, and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys on; its write
transactions start with BEGIN IMMEDIATE so two writers queue instead of failing half-way.
PostgreSQL (asyncpg) serialises per user with transaction-scoped advisory locks.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any, Final, TypeVar

import sqlalchemy
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from migrations import run_upgrade

log = logging.getLogger(__name__)

# How long SQLite waits for another process's write lock, and PostgreSQL for a connection.
BUSY_TIMEOUT_SECONDS: Final = 30.0
CONNECT_TIMEOUT_SECONDS: Final = 10.0
# Connections kept open per process (more are opened when busier, and closed after): a worker
# runs up to RINGSYNC_WORKER_CONCURRENCY jobs, and opening a PostgreSQL connection costs far
# more than the transaction it would serve.
POOL_SIZE: Final = 10
# Advisory lock class ids (the two-integer form keeps them apart from anyone else's locks).
_MIGRATION_LOCK: Final = (0x72730000, 1)
_USER_LOCK_CLASS: Final = 0x72730001
# An execution option read by the SQLite "begin" hook below.
_IMMEDIATE: Final = "ringsync_immediate"


def create_engine(database_url: str, *, pre_ping: bool = False) -> AsyncEngine:
    """An async engine for `database_url` (sqlite+aiosqlite or postgresql+asyncpg).

    `pre_ping` (PostgreSQL) tests each pooled connection before use: for processes that answer
    people (the API), where a request failed by a restarted server is not retried for them.
    """
    if database_url.startswith("sqlite"):
        _check_sqlite_file(database_url)
        engine = create_async_engine(
            database_url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}, pool_size=POOL_SIZE
        )
        _tune_sqlite(engine.sync_engine, busy_timeout=BUSY_TIMEOUT_SECONDS)
        return engine
    if database_url.startswith("postgresql://"):
        database_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(
        database_url,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        pool_size=POOL_SIZE,
        pool_pre_ping=pre_ping,
    )
    _replace_closed_on_checkout(engine)
    return engine


def _replace_closed_on_checkout(engine: AsyncEngine) -> None:
    """A pooled connection the server closed (a restart, an idle timeout, a terminated backend)
    is replaced when taken from the pool, at no round trip: asyncpg saw its end arrive.

    This stands in for pre-ping (a round trip before every transaction) for workers. Not every
    database call sits in a job that is retried: the account rows a job reads first, the crons
    (arq runs each once). A connection cut without a word (a network gone silent) still fails
    its next statement; SQLAlchemy then empties the pool.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _closed_is_stale(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection while it was pooled")


def _check_sqlite_file(database_url: str) -> None:
    """Fail now, plainly, when the SQLite file cannot be opened (a missing directory, say).

    aiosqlite leaves its connection thread running after a failed open, and that thread
    fails noisily when the program ends first; opening with the standard library avoids it.
    """
    url = make_url(database_url)
    if not url.database or url.database == ":memory:" or url.query.get("uri"):
        return
    try:
        sqlite3.connect(url.database).close()
    except sqlite3.Error as exc:
        raise OperationalError(f"open {url.database}", None, exc) from None


def _tune_sqlite(engine: Engine, *, busy_timeout: float) -> None:
    operational_error = engine.dialect.dbapi.OperationalError  # type: ignore[union-attr]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() != "wal":
            # WAL is a property of the file: the first connection that switches it wins. The
            # switch needs an exclusive lock, and SQLite answers "locked" at once (without the
            # busy timeout) while another connection holds a lock on a new file; this
            # connection works on regardless, and `upgrade` sees the switch through.
            with suppress(operational_error):
                cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that holds SQLite's write lock from its start; commits on success."""
    async with engine.connect() as conn:
        await conn.execution_options(**{_IMMEDIATE: True})
        async with conn.begin():
            yield conn


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads that need no snapshot spanning them (one statement, or figures
    nothing is decided from together). On PostgreSQL it runs without a transaction: each
    statement sees the newest committed rows, as under PostgreSQL's default READ COMMITTED,
    and a BEGIN and a ROLLBACK (two round trips) are spared. SQLite's reads stay in one
    transaction (in process: no round trip to spare)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@asynccontextmanager
async def single_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one write statement, atomic by itself: on PostgreSQL without BEGIN and
    COMMIT around it (one round trip instead of three); on SQLite a `write_transaction`."""
    if engine.dialect.name != "postgresql":
        async with write_transaction(engine) as conn:
            yield conn
        return
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


T = TypeVar("T")

# A writer that finds another process holding SQLite's write lock tries again after a pause
# that starts here and doubles up to the cap, yielding to the event loop meanwhile.
_RETRY_FIRST: Final = 0.0005
_RETRY_CAP: Final = 0.005


class Statements:
    """Runs the identity store's hot transactions (a user's reconcile, a page of them, a
    notification's row, the lookups beside them) as one synchronous piece of work: `work(conn)`.

    On SQLite the whole transaction runs on the event loop's own thread through the standard
    library's driver, from BEGIN to COMMIT with no await between, so a writer holds the write
    lock for as long as its statements take (about a millisecond for one user). Through
    aiosqlite each statement was a hop to its thread and back, and the lock stayed held while
    the loop ran the other jobs' callbacks between hops: under a steady stream of changes a
    transaction held it for tens of milliseconds, and writers queued behind each other's waits.
    This connection has no busy timeout (a wait inside SQLite would stop the loop): when
    another process holds the lock, the transaction is rolled back and tried again after a
    pause that yields to the loop, for up to BUSY_TIMEOUT_SECONDS. `work` must therefore be
    safe to run again, and do nothing but statements on `conn`.

    On PostgreSQL the same work runs on the async engine (`AsyncConnection.run_sync`): in a
    transaction, or with `single` as one autocommitted statement; reads as in `reading`.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite: Engine | None = None
        self._closed = False

    async def write(self, work: Callable[[Connection], T], *, single: bool = False) -> T:
        if self._engine.dialect.name == "postgresql":
            opened = single_write(self._engine) if single else write_transaction(self._engine)
            async with opened as conn:
                return await conn.run_sync(work)
        return await self._on_sqlite(work, immediate=True)

    async def read(self, work: Callable[[Connection], T]) -> T:
        if self._engine.dialect.name == "postgresql":
            async with reading(self._engine) as conn:
                return await conn.run_sync(work)
        return await self._on_sqlite(work, immediate=False)

    async def _on_sqlite(self, work: Callable[[Connection], T], *, immediate: bool) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_SECONDS
        pause = _RETRY_FIRST
        while True:
            try:
                with self._sqlite_engine().connect() as conn:
                    conn.execution_options(**{_IMMEDIATE: immediate})
                    with conn.begin():
                        return work(conn)
            except OperationalError as exc:
                # Extended codes too (BUSY_RECOVERY, BUSY_SNAPSHOT): the whole transaction
                # starts again.
                code = getattr(exc.orig, "sqlite_errorcode", None)
                busy = code is not None and code & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or loop.time() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RETRY_CAP)

    def _sqlite_engine(self) -> Engine:
        if self._closed:
            raise RuntimeError("the store is closed")
        if self._sqlite is None:
            url = self._engine.url.set(drivername="sqlite")
            # One connection: a transaction runs start to end before the next can begin.
            self._sqlite = sqlalchemy.create_engine(
                url, connect_args={"timeout": 0}, pool_size=1, max_overflow=0
            )
            _tune_sqlite(self._sqlite, busy_timeout=0)
        return self._sqlite

    def engines(self) -> list[Engine]:
        """Every engine statements go out through (for event listeners): on SQLite two."""
        if self._engine.dialect.name == "postgresql":
            return [self._engine.sync_engine]
        return [self._engine.sync_engine, self._sqlite_engine()]

    def close(self) -> None:
        self._closed = True
        if self._sqlite is not None:
            self._sqlite.dispose()
            self._sqlite = None


async def refresh_statistics(engine: AsyncEngine) -> None:
    """Tell SQLite's planner how the tables look (PostgreSQL's autovacuum does this itself).

    Without statistics SQLite walks an account's primary key to spare itself a sort, so a SCIM
    `userName eq` page read the whole account (100 ms at 100,000 users) instead of one index
    entry (1 ms). `analysis_limit` samples each index, keeping this a few milliseconds.
    """
    if engine.dialect.name != "sqlite":
        return
    async with write_transaction(engine) as conn:
        await conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
        await conn.exec_driver_sql("ANALYZE")


# Built once: a `text()` parses its SQL for bind parameters, and was built anew for every
# reconcile. One user (the common reconcile) needs no unnest, DISTINCT or sort.
_LOCK_ONE: Final = text("SELECT pg_advisory_xact_lock(:cls, hashtext(:key))")
_LOCK_MANY: Final = text(
    "SELECT pg_advisory_xact_lock(:cls, h) FROM"
    " (SELECT DISTINCT hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k"
    " ORDER BY h) AS ordered"
)


def lock_users(conn: Connection, account_id: str, extension_ids: Iterable[str]) -> None:
    """Serialise writers of these users until the transaction ends (also before rows exist).

    On PostgreSQL one statement takes a transaction-scoped advisory lock per user, in hash
    order, so two writers of overlapping pages cannot deadlock. SQLite needs nothing: BEGIN
    IMMEDIATE already admits one writer at a time.
    """
    if conn.dialect.name != "postgresql":
        return
    keys = [f"{account_id}/{extension_id}" for extension_id in extension_ids]
    if len(keys) == 1:
        conn.execute(_LOCK_ONE, {"cls": _USER_LOCK_CLASS, "key": keys[0]})
    elif keys:
        conn.execute(_LOCK_MANY, {"cls": _USER_LOCK_CLASS, "keys": keys})


async def upgrade(database_url: str) -> None:
    """Apply every migration, safely when several processes start together.

    The whole upgrade runs in one transaction that first takes a lock (an advisory lock on
    PostgreSQL, the write lock on SQLite), so the second process waits, then finds it done.
    """
    engine = create_engine(database_url)
    try:
        async with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:cls, :key)"),
                    {"cls": _MIGRATION_LOCK[0], "key": _MIGRATION_LOCK[1]},
                )
            await conn.run_sync(run_upgrade)
        if engine.dialect.name == "sqlite":
            await _ensure_wal(engine)
    finally:
        await engine.dispose()


async def _ensure_wal(engine: AsyncEngine) -> None:
    """Switch a SQLite file to WAL, waiting out the connections that hold it meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_TIMEOUT_SECONDS
    while True:
        async with engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            try:
                async with driver.execute("PRAGMA journal_mode = WAL") as cursor:
                    row = await cursor.fetchone()
            except sqlite3.OperationalError:
                row = None
        if row is not None and str(row[0]).lower() == "wal":
            return
        if loop.time() > deadline:
            log.warning("the SQLite file stays out of WAL mode: other connections kept it busy")
            return
        await asyncio.sleep(0.05)
