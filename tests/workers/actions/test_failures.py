"""RingCentral failing an action's write: 5xx is retried until it goes through (one write
applied), a permanent refusal fails the action with RingCentral's errorCode."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import update

from tests.fixtures.pipeline import eventually
from tests.workers.actions.conftest import MakeRig
from workers.actions.decide import ActionState
from workers.store import tables

PUTS = "PUT /restapi/v1.0/account/*/extension/*"


async def test_5xx_on_the_write_is_retried_and_applied_once(make_rig: MakeRig) -> None:
    rig = await make_rig()
    world = rig.p.sandbox.world
    ext = await rig.user()
    action_id = await rig.propose("suspend", ext)
    world.set_faults(refuse={PUTS: 503})
    assert (await rig.approve(action_id)).code == 0

    async def refused_a_few_times() -> bool:
        return len([c for c in rig.writes(ext) if c["status"] == 503]) >= 4

    await eventually(refused_a_few_times, what="the PUT refused with 503, then retried")
    assert (await rig.action(action_id)).state is ActionState.RUNNING
    world.set_faults()
    action = await rig.settled(action_id, within=60)

    assert action.state is ActionState.DONE, action.error
    assert [c["status"] for c in rig.writes(ext)].count(200) == 1
    assert world.user(ext)["status"] == "Disabled"


async def test_a_permanent_refusal_fails_the_action_with_the_error_code(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ext = await rig.user()
    action_id = await rig.propose("suspend", ext)
    rig.p.sandbox.world.fail_writes([ext], status=403, error_code="CMN-408")
    assert (await rig.approve(action_id)).code == 0

    action = await rig.settled(action_id)

    assert action.state is ActionState.FAILED
    assert (action.error or "").startswith("CMN-408")
    assert [c["status"] for c in rig.writes(ext)] == [403]  # not retried
    assert rig.p.sandbox.world.user(ext)["status"] == "Enabled"
    listed = await rig.cli("actions", "list", "--state", "failed", "--json")
    assert [json.loads(line)["id"] for line in listed.out.splitlines()] == [action_id]


@pytest.mark.parametrize("kind", ["suspend", "deprovision"])
async def test_refused_credentials_leave_the_action_approved(make_rig: MakeRig, kind: str) -> None:
    rig = await make_rig()
    ext = await rig.user()
    action_id = await rig.propose(kind, ext)
    rig.p.sandbox.world.fail_writes([ext], status=401, error_code="OAU-129")
    assert (await rig.approve(action_id)).code == 0

    async def given_back() -> bool:
        refused = any(c["status"] == 401 for c in rig.writes(ext))
        return refused and (await rig.action(action_id)).state is ActionState.APPROVED

    # Our credentials, not the user, are the problem: the action waits for `accounts update`.
    await eventually(given_back, what="the refused action approved again")
    action = await rig.action(action_id)
    assert action.error is None
    assert action.started_at is None  # no slot of the hourly cap taken
    assert rig.p.sandbox.world.user(ext)["status"] == "Enabled"


async def test_an_action_of_another_account_is_not_run(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="workers.actions.run")
    rig = await make_rig()
    ext = await rig.user()
    action_id = await rig.propose("suspend", ext)
    await rig.p.stop_workers()
    assert (await rig.approve(action_id)).code == 0  # queued for this account's worker
    actions = tables.actions
    async with rig.p.store.engine.begin() as conn:  # the row now says another account
        await conn.execute(
            update(actions).where(actions.c.id == action_id).values(account_id="999")
        )
    rig.p.start_worker()

    async def refused() -> bool:
        return any(r.getMessage() == "action belongs to another account" for r in caplog.records)

    await eventually(refused, what="the job refusing another account's action")
    assert (await rig.action(action_id)).state is ActionState.APPROVED
    assert rig.writes() == []


async def test_refused_credentials_at_the_delete_fail_no_action(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workers.actions.deletes")
    rig = await make_rig()
    world = rig.p.sandbox.world
    ext = await rig.user(status="Disabled")
    action_id = await rig.propose("deprovision", ext)
    world.set_faults(refuse={"DELETE /restapi/v2/accounts/*/extensions": 401})
    assert (await rig.approve(action_id)).code == 0

    async def waits() -> bool:
        return any(
            r.getMessage() == "credentials refused; queued deletes wait" for r in caplog.records
        )

    await eventually(waits, what="the delete batch told to wait for new credentials")
    action = await rig.action(action_id)
    assert action.state is ActionState.RUNNING  # queued still, not failed
    assert action.error is None
    assert world.user(ext)["status"] == "Disabled"
