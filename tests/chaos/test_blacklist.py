"""RingCentral blacklists our subscription: notifications stop, silently and for good.

The renewal check (`ringsync subscribe`, the same logic as the worker's cron) sees it, creates a
new subscription, records the gap and queues the resync that repairs everything missed.
"""

from __future__ import annotations

import pytest

from tests.chaos.conftest import MakeRig
from tests.chaos.load import ChangeStream

pytestmark = pytest.mark.chaos


async def test_a_blacklisted_subscription_is_recreated_and_the_gap_repaired(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(users=20)
    first = rig.subscription_id
    await rig.control.blacklist(first)
    delivered = len(await rig.control.deliveries())
    ids = [u["extension_id"] for u in await rig.control.users()]
    stream = ChangeStream(rig.control, ids, seed=17)
    await stream.burst(40)  # all of it missed: RingCentral sends nothing to a dead subscription
    await rig.control.drain()
    assert len(await rig.control.deliveries()) == delivered
    assert await rig.differences()

    shown = await rig.subscribe()
    assert shown["id"] != first
    assert shown["status"] == "Active"
    assert shown["gap"]
    assert shown["resync_queued"]
    await rig.converged(within=30)  # by the queued resync alone

    await stream.burst(10)  # and the new subscription carries what follows
    await rig.converged(within=20)
    assert {a["subscription_id"] for a in (await rig.control.deliveries())[delivered:]} == {
        shown["id"]
    }
    assert await rig.delivered_exactly_once() > 0
