"""SQLite plans with statistics once a resync has filled the mirror: a SCIM `userName eq` page is
read through its index, not by walking the whole account in id order."""

from __future__ import annotations

from sqlalchemy import select

from api.scim.filters import compile_filter
from tests.fixtures.pipeline import MakePipeline
from tests.fixtures.resync import resync
from workers.store import tables

_u = tables.users.c


async def test_after_a_resync_a_username_lookup_uses_its_index(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=40)
    await resync(p)
    account = p.sandbox.account_id
    async with p.store.engine.connect() as conn:
        email = (await conn.execute(select(_u.email).where(_u.account_id == account))).scalar()
    assert email
    where = compile_filter(f'userName eq "{email.upper()}"', "sqlite")
    page = (
        select(_u.extension_id)
        .where(_u.account_id == account, where)
        .order_by(_u.extension_id)
        .limit(100)
    )
    sql = str(page.compile(p.store.engine, compile_kwargs={"literal_binds": True}))
    async with p.store.engine.connect() as conn:
        plan = [row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        found = (await conn.execute(page)).scalars().all()
    assert len(found) == 1
    assert any("ix_users_account_id_username" in step for step in plan), plan
