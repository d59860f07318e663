"""The database goes away for a while: PostgreSQL behind a TCP proxy that the test cuts.

The scenario's own database lives on the machine's server (created and dropped by the test);
only the proxy stops, never the server. Jobs failing meanwhile are retried, none dead-lettered,
and the mirror converges once the database is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.chaos.conftest import MakeRig
from tests.chaos.load import ChangeStream
from tests.chaos.proxy import TcpProxy
from tests.chaos.rig import eventually

pytestmark = pytest.mark.chaos

OUTAGE_SECONDS = 3.0


@pytest.fixture
async def database_proxy(fresh_postgres: str) -> AsyncIterator[TcpProxy]:
    server = urlsplit(fresh_postgres)
    proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_the_database_unavailable_for_a_while(
    fresh_postgres: str, database_proxy: TcpProxy, make_rig: MakeRig
) -> None:
    direct = fresh_postgres.replace("postgresql://", "postgresql+asyncpg://", 1)
    server = urlsplit(direct)
    proxied = direct.replace(server.netloc, f"postgres@127.0.0.1:{database_proxy.port}", 1)
    rig = await make_rig(users=20, workers=2, database_url=proxied, store_url=direct)
    ids = [u["extension_id"] for u in await rig.control.users()]
    stream = ChangeStream(rig.control, ids, interval=0.1, seed=9)
    async with stream.running():

        async def changes(n: int) -> bool:
            return stream.changes >= n

        await eventually(lambda: changes(10), within=10, what="load before the outage")
        await database_proxy.stop()
        await asyncio.sleep(OUTAGE_SECONDS)  # the database stays away; notifications keep coming
        await database_proxy.start()
        after = stream.changes
        await eventually(lambda: changes(after + 10), within=10, what="load after the outage")
    await rig.converged(within=45)
    assert rig.worker_lines("retrying"), "jobs should have failed and been retried meanwhile"
    assert await rig.no_acknowledged_loss() > 0
    assert await rig.store.list_dead_letters() == []
    assert await rig.delivered_exactly_once(within=45) > 0
