"""A worker SIGKILLed in the middle of a burst: arq re-runs its jobs after `timeout + 10 s`."""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeRig
from tests.chaos.load import ChangeStream
from tests.chaos.rig import eventually

pytestmark = pytest.mark.chaos


async def test_a_worker_killed_mid_burst_loses_nothing(make_rig: MakeRig) -> None:
    rig = await make_rig(users=30, workers=2, env={"RINGSYNC_JOB_TIMEOUT": "3"})
    await rig.control.faults(latency=0.2)  # reads take a while: the kill lands mid-job
    ids = [u["extension_id"] for u in await rig.control.users()]
    stream = ChangeStream(rig.control, ids, interval=0.02, seed=5)
    async with stream.running():

        async def busy() -> bool:
            return stream.changes >= 30 and bool(rig.jobs_in_flight("worker-1"))

        await eventually(busy, within=20, what="worker-1 in the middle of jobs", every=0.01)
        await rig.processes.kill("worker-1")
        cut = rig.jobs_in_flight("worker-1")
        after = stream.changes

        async def more() -> bool:
            return stream.changes >= after + 40

        await eventually(more, within=20, what="more of the burst")
    await rig.control.faults()
    assert cut, "the kill should cut jobs in flight"
    # The survivor takes over the killed worker's jobs once their lease ends (3 s + 10 s).
    await rig.converged(within=45)
    await rig.no_acknowledged_loss()
    # A delivery cut by the kill waits for its per-user lock (60 s) to expire, then goes out;
    # one cut after its POST went out is sent again under the same webhook-id.
    assert await rig.delivered_exactly_once(within=90) > 0
