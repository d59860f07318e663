"""Migrations: they build exactly the schema in workers.store.tables, on both databases, and several
processes starting together upgrade one database without tripping over each other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, inspect
from sqlalchemy.engine import Connection

import migrations
from workers.store.engine import create_engine
from workers.store.identity import Store, upgrade
from workers.store.tables import UtcDateTime, metadata

HEAD = ScriptDirectory.from_config(migrations.config()).get_current_head()


async def _inspect(database_url: str) -> tuple[str | None, set[str], list[Any]]:
    def read(conn: Connection) -> tuple[str | None, set[str], list[Any]]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        names = set(inspect(conn).get_table_names())
        return context.get_current_revision(), names, compare_metadata(context, metadata)

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_upgrade_builds_the_schema_the_code_declares(empty_database_url: str) -> None:
    await upgrade(empty_database_url)

    revision, names, differences = await _inspect(empty_database_url)
    assert revision == HEAD == "actions"
    assert set(metadata.tables) <= names
    assert differences == []


async def test_upgrade_twice_is_a_no_op(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    await upgrade(empty_database_url)
    revision, _, _ = await _inspect(empty_database_url)
    assert revision == HEAD


async def test_store_open_migrates_unless_told_not_to(empty_database_url: str) -> None:
    store = await Store.open(empty_database_url, migrate=False)
    await store.close()
    assert (await _inspect(empty_database_url))[0] is None

    store = await Store.open(empty_database_url)
    try:
        assert await store.list_users() == []
    finally:
        await store.close()
    assert (await _inspect(empty_database_url))[0] == HEAD


async def test_concurrent_upgrades_in_one_process_all_succeed(empty_database_url: str) -> None:
    await asyncio.gather(*(upgrade(empty_database_url) for _ in range(4)))
    assert (await _inspect(empty_database_url))[0] == HEAD


def test_processes_starting_together_upgrade_once(empty_database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": empty_database_url, "RINGSYNC_LOG_FORMAT": "json"}
    command = [str(Path(sys.executable).with_name("ringsync")), "db", "upgrade"]
    processes = [
        subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0], results
    migrated = sum(b"identity store migrated" in stderr for _, stderr in results)
    assert migrated == 1, results
    assert asyncio.run(_inspect(empty_database_url))[0] == HEAD


def test_downgrade_removes_everything(empty_database_url: str) -> None:
    from alembic import command

    asyncio.run(upgrade(empty_database_url))

    async def downgrade() -> None:
        engine = create_engine(empty_database_url)
        try:
            async with engine.begin() as conn:

                def run(sync: Connection) -> None:
                    cfg = migrations.config()
                    cfg.attributes["connection"] = sync
                    command.downgrade(cfg, "base")

                await conn.run_sync(run)
        finally:
            await engine.dispose()

    asyncio.run(downgrade())
    revision, names, _ = asyncio.run(_inspect(empty_database_url))
    assert revision is None
    assert not set(metadata.tables) & names


def test_write_revision_writes_only_what_the_tables_gained(tmp_path: Path) -> None:
    grown = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(grown)
    Table("probes", grown, Column("id", Integer, primary_key=True), Column("at", UtcDateTime))

    written = migrations.write_revision("probes", grown, directory=tmp_path)

    text = written.read_text()
    assert written.parent == tmp_path
    assert f"down_revision: str | None = {HEAD!r}" in text
    assert "from migrations.types import UtcDateTime" in text
    assert "workers" not in text
    assert text.count("op.create_table(") == 1
    assert "op.create_table('probes'," in text


def to(revision: str) -> Callable[[Connection], None]:
    """Upgrade a connection to `revision` (for `run_sync`)."""
    from alembic import command

    def run(sync: Connection) -> None:
        cfg = migrations.config()
        cfg.attributes["connection"] = sync
        command.upgrade(cfg, revision)

    return run


async def test_upgrade_unfreezes_users_a_sender_dated_in_the_future(
    empty_database_url: str,
) -> None:
    from sqlalchemy import select

    from workers.store.tables import users

    now = datetime.now(UTC)
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0002"))
            for extension_id, observed in (("1", datetime(2099, 1, 1, tzinfo=UTC)), ("2", now)):
                await conn.execute(
                    users.insert().values(
                        account_id="9",
                        extension_id=extension_id,
                        state="active",
                        observed_at=observed,
                        first_seen_at=now,
                        updated_at=now,
                    )
                )
            await conn.run_sync(to("0003"))
            rows = dict(
                (await conn.execute(select(users.c.extension_id, users.c.observed_at))).all()
            )
    finally:
        await engine.dispose()
    assert now <= rows["1"] <= datetime.now(UTC)  # the forged date is gone
    assert rows["2"] == now  # a true one is kept


async def test_a_one_account_database_upgrades_to_accounts_keeping_everything(
    empty_database_url: str,
) -> None:
    from sqlalchemy import select

    from workers.accounts.store import AccountStore
    from workers.store.tables import subscriptions, user_changes, users

    now = datetime.now(UTC)
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0003"))
            await conn.execute(
                users.insert().values(
                    account_id="9", extension_id="1", state="active", first_name="Ada",
                    observed_at=now, first_seen_at=now, updated_at=now,
                )
            )  # fmt: skip
            await conn.execute(
                user_changes.insert().values(
                    account_id="9", extension_id="1", changed_at=now, diffs={}, new_state="active"
                )
            )
            await conn.execute(
                subscriptions.insert().values(
                    id="sub-1", account_id="9", address="https://x.example/webhook",
                    event_filters=[], status="Active", created_at=now,
                )
            )  # fmt: skip
    finally:
        await engine.dispose()

    store = await Store.open(empty_database_url)  # migrates to the head, as a start-up does
    try:
        user = await store.get_user("9", "1")
        assert user is not None
        assert user.first_name == "Ada"
        assert len(await store.list_changes("9", "1")) == 1
        async with store.engine.connect() as conn:
            subscribed = (await conn.execute(select(subscriptions.c.id))).scalars().all()
        assert subscribed == ["sub-1"]
        book = AccountStore(store)
        assert await book.list() == []
        await book.register_default("9", "https://platform.ringcentral.com")
        (default,) = await book.list()
        assert (default.account_id, default.is_default, default.credentials) == ("9", True, None)
    finally:
        await store.close()
    assert (await _inspect(empty_database_url))[0] == HEAD
