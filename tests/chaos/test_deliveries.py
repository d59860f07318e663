"""RingCentral's deliveries go wrong: some dropped, some sent twice, batches out of order."""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeRig
from tests.chaos.load import ChangeStream

pytestmark = pytest.mark.chaos


async def test_dropped_duplicated_reordered_deliveries_are_repaired_by_a_resync(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(users=30, workers=2)
    await rig.control.faults(drop=0.2, duplicate=0.3, reorder=True, seed=11)
    stream = ChangeStream(rig.control, [u["extension_id"] for u in await rig.control.users()])
    await stream.burst(120)
    await rig.control.drain()
    attempts = await rig.control.deliveries()
    assert any(a["outcome"] == "dropped" for a in attempts)
    assert len({a["uuid"] for a in attempts}) < len(attempts)  # some sent twice

    await rig.control.faults()
    await rig.resync()  # what the daily schedule (or a gap) does: repairs what was dropped
    await rig.converged(within=30)
    # Duplicates and reordering cost nothing: every acknowledged notification is stored.
    assert await rig.no_acknowledged_loss() > 0
    assert await rig.delivered_exactly_once() > 0
