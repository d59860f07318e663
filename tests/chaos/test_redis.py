"""Redis goes away under load: the test's own redis-server (AOF, appendfsync everysec).

Graceful restart: the receiver answers 503 while Redis is down (RingCentral never resends those)
and no notification it acknowledged is lost; once Redis is back the receiver reports what it
refused, the gap is recorded and the resync it queues repairs the rest, with nobody's help. A
SIGKILL may lose the last second of queued work; a resync still brings the mirror back to the
truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.conftest import MakeRig
from tests.chaos.load import ChangeStream
from tests.chaos.rig import Rig, eventually
from tests.fixtures.services import PrivateRedis
from workers.subscription import store
from workers.subscription.store import Gap

pytestmark = pytest.mark.chaos

# Deliberately short: the sandbox blacklists a subscription after 10 failed deliveries in a row.
DOWN_SECONDS = 1.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(directory)
    server.start()
    yield server
    server.stop(kill=True)


async def refused(rig: Rig) -> int:
    """Deliveries the receiver answered 503 to."""
    return sum(1 for a in await rig.control.deliveries() if a["status"] == 503)


async def redis_down_under_load(rig: Rig, server: PrivateRedis, *, kill: bool) -> ChangeStream:
    ids = [u["extension_id"] for u in await rig.control.users()]
    stream = ChangeStream(rig.control, ids, interval=0.2, seed=3)
    async with stream.running():

        async def changes(n: int) -> bool:
            return stream.changes >= n

        await eventually(lambda: changes(8), within=10, what="load before the fault")
        await asyncio.to_thread(server.stop, kill=kill)
        await eventually(lambda: refused(rig), within=10, what="a 503 while Redis is down")
        await asyncio.sleep(DOWN_SECONDS)  # Redis stays down for a while; the load goes on
        await asyncio.to_thread(server.start)
        after = stream.changes
        await eventually(lambda: changes(after + 8), within=10, what="load after the restart")
    return stream


async def refused_gap(rig: Rig) -> Gap | None:
    """The gap recorded for what the receiver refused, once there is one."""
    gaps = await store.list_gaps(rig.store, rig.account_id)
    return next((gap for gap in gaps if gap.reason == "refused"), None)


async def test_redis_restarted_gracefully_loses_nothing_and_repairs_what_was_refused(
    own_redis: PrivateRedis, make_rig: MakeRig
) -> None:
    rig = await make_rig(users=20, redis_url=own_redis.url)
    await redis_down_under_load(rig, own_redis, kill=False)
    assert await rig.no_acknowledged_loss(within=30) > 0
    assert await refused(rig) > 0
    # The 503-refused notifications are never resent: a gap, and the resync it queued.
    gap = await eventually(lambda: refused_gap(rig), within=20, what="a gap for the refusals")
    assert gap.started_at is not None
    assert gap.ended_at is not None
    await rig.converged(within=30)
    assert rig.worker_lines(":resync:gap:resync('gap')"), "the gap's resync should have run"
    assert await rig.delivered_exactly_once() > 0


async def test_redis_killed_converges_through_the_resync(
    own_redis: PrivateRedis, make_rig: MakeRig
) -> None:
    rig = await make_rig(users=20, redis_url=own_redis.url)
    await redis_down_under_load(rig, own_redis, kill=True)
    code, _, err = await rig.run("resync", "--json")
    assert code == 0, err
    await rig.converged(within=30)
    assert await rig.delivered_exactly_once() > 0
