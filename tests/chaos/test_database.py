"""The database goes away for a while: PostgreSQL behind a TCP proxy that the test cuts.

The scenario's own database lives on the machine's server (created and dropped by the test);
only the proxy stops, never the server. Jobs failing meanwhile are retried, none dead-lettered,
and the mirror converges once the database is back: after a few seconds, and after an hour (on a
retry schedule scaled down by RINGSYNC_RETRY_SCALE: the same code, the same number of tries).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.chaos.conftest import MakeRig
from tests.chaos.load import ChangeStream
from tests.chaos.proxy import TcpProxy, proxy_to
from tests.chaos.rig import Rig, eventually
from workers.failures import MAX_TRANSIENT_TRIES

pytestmark = pytest.mark.chaos

OUTAGE_SECONDS = 3.0
# 70 minutes of outage at 1/250 of the real retry schedule: 16.8 s, while a job's twelve tries
# (about 50 minutes in real time) are spent within 12-15 s.
RETRY_SCALE = 0.004
LONG_OUTAGE_SECONDS = 70 * 60 * RETRY_SCALE


@pytest.fixture
async def database_proxy(fresh_postgres: str) -> AsyncIterator[TcpProxy]:
    async with proxy_to(fresh_postgres) as proxy:
        yield proxy


def proxied(fresh_postgres: str, proxy: TcpProxy) -> tuple[str, str]:
    """(the URL ringsync's processes use, through the proxy; the test's own, direct)."""
    direct = fresh_postgres.replace("postgresql://", "postgresql+asyncpg://", 1)
    server = urlsplit(direct)
    return direct.replace(server.netloc, f"postgres@127.0.0.1:{proxy.port}", 1), direct


def most_tries(rig: Rig) -> int:
    """The highest try of any job the workers logged."""
    tries = [0]
    for line in rig.worker_lines('"job_try"'):
        with_try = json.loads(line)
        tries.append(int(with_try["job_try"]))
    return max(tries)


async def test_the_database_unavailable_for_a_while(
    fresh_postgres: str, database_proxy: TcpProxy, make_rig: MakeRig
) -> None:
    through_proxy, direct = proxied(fresh_postgres, database_proxy)
    rig = await make_rig(users=20, workers=2, database_url=through_proxy, store_url=direct)
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


async def test_an_hour_without_the_database_loses_no_acknowledged_notification(
    fresh_postgres: str, database_proxy: TcpProxy, make_rig: MakeRig
) -> None:
    """Notifications acknowledged while the database is away wait on the Redis queue, tried
    again past their twelve tries, and every one is ingested once the database is back."""
    through_proxy, direct = proxied(fresh_postgres, database_proxy)
    env = {"RINGSYNC_RETRY_SCALE": str(RETRY_SCALE)}
    rig = await make_rig(users=20, database_url=through_proxy, store_url=direct, env=env)
    ids = [u["extension_id"] for u in await rig.control.users()]
    stream = ChangeStream(rig.control, ids, interval=0.5, seed=23)
    await database_proxy.stop()
    async with stream.running():
        await asyncio.sleep(LONG_OUTAGE_SECONDS)  # an hour, scaled: the database stays away
    await rig.control.drain()  # every notification sent, and answered (200: queued)
    acknowledged = await rig.acknowledged()
    assert stream.changes >= 10
    assert most_tries(rig) > MAX_TRANSIENT_TRIES, "jobs should have outlived their tries"
    await database_proxy.start()
    assert await rig.no_acknowledged_loss(within=30) >= len(acknowledged)
    await rig.converged(within=30)
    assert await rig.store.list_dead_letters() == []
    assert await rig.delivered_exactly_once(within=30) > 0
