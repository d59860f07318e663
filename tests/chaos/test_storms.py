"""RingCentral pushes back: 429 storms under tight limits, and a share of 5xx answers.

The limits are tight and short (a few requests per 3 s window), and another client of the same
app and user spends the budget at the worst moment, so ringsync meets real 429 penalties; then
a third of all API answers are 500s. Everything ends retried, nothing dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from sandbox.oauth import JWT_GRANT
from tests.chaos.conftest import MakeRig
from tests.chaos.load import ChangeStream
from tests.chaos.rig import Rig, eventually

pytestmark = pytest.mark.chaos

LIMITS = {"light": 10, "medium": 4, "heavy": 4, "auth": 5, "window": 3, "penalty": 3}


async def noisy_neighbour(rig: Rig, requests: int) -> None:
    """Another integration on the same app and user: spends the Light budget in one go."""
    base = rig.control.base_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        login = await http.post(
            "/restapi/oauth/token",
            auth=(rig.credentials.client_id, rig.credentials.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": rig.credentials.jwt},
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        await asyncio.gather(
            *(http.get("/restapi/v1.0/account/~/extension/1", headers=headers)
              for _ in range(requests))
        )  # fmt: skip


async def throttled(rig: Rig) -> int:
    return sum(1 for call in await rig.control.calls() if call["status"] == 429)


async def failed(rig: Rig) -> int:
    return sum(1 for call in await rig.control.calls() if call["status"] == 500)


async def test_429_and_5xx_storms_end_retried_not_dead_lettered(
    make_rig: MakeRig, tmp_path: Path
) -> None:
    limits = tmp_path / "limits.json"
    limits.write_text(json.dumps(LIMITS))
    rig = await make_rig(users=20, workers=2, rate_limits=str(limits))
    ids = [u["extension_id"] for u in await rig.control.users()]
    stream = ChangeStream(rig.control, ids, interval=0.1, seed=13)
    async with stream.running():

        async def changes(n: int) -> bool:
            return stream.changes >= n

        await noisy_neighbour(rig, 30)
        await eventually(lambda: throttled(rig), within=10, what="429s")
        await eventually(lambda: changes(25), within=15, what="load during the 429 storm")
        await rig.control.faults(error_rate=0.33, seed=2)
        after = stream.changes
        await eventually(lambda: changes(after + 25), within=15, what="load during the 5xx storm")
        # On a loaded machine the 429 penalty may outlast those changes: the storm lasts
        # until ringsync has met a 500.
        await eventually(lambda: failed(rig), within=30, what="a 5xx answer to ringsync")
    await rig.control.faults()
    assert rig.worker_lines("ringcentral retry"), "ringsync should have met the storm"
    await rig.converged(within=60)
    assert await rig.store.list_dead_letters() == []
    await rig.no_acknowledged_loss()
    assert await rig.delivered_exactly_once() > 0
