"""Alembic's entry point. It imports nothing of the application's: what it works on comes in
through `config.attributes`, and the application calls in, never the other way round.

- `connection`: a connection inside the caller's transaction (`run_upgrade`, which
  `workers.store.engine.upgrade` calls with its cross-process lock held) — how migrations run.
- otherwise an engine of its own on `sqlalchemy.url` (`config(url)`), for `write_revision`.
- `target_metadata`: the tables autogenerate compares the database with; only it needs them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from migrations import types


def _render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Write the application's own column types as this package's frozen copies."""
    name = type(obj).__name__
    if (
        kind == "type"
        and not type(obj).__module__.startswith("sqlalchemy")
        and hasattr(types, name)
    ):
        autogen.imports.add(f"from migrations.types import {name}")
        return f"{name}()"
    return False


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=context.config.attributes.get("target_metadata"),
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_own_engine(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_migrate)
            await conn.commit()
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _migrate(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use migrations.config(url)")
    asyncio.run(_migrate_own_engine(url))


main()
