"""Actions end to end: `ringsync actions` as a real process, a real arq worker, the sandbox as
RingCentral, and a signed offboarding sink downstream."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from arq.connections import RedisSettings, create_pool

from tests.fixtures.pipeline import eventually
from tests.workers.actions.conftest import MakeRig, Rig, sequences_in_order
from workers.actions.decide import ActionState
from workers.actions.deletes import queue_delete
from workers.actions.run import sweep_actions
from workers.actions.store import ActionStore
from workers.context import deps, shutdown, startup
from workers.decide import Roles

SUPER_ADMIN = {"id": "1", "name": "Super Admin"}


async def _run(rig: Rig, kind: str, extension_id: str) -> None:
    action_id = await rig.propose(kind, extension_id)
    assert (await rig.approve(action_id)).code == 0
    action = await rig.settled(action_id)
    assert action.state is ActionState.DONE, action.error
    assert action.approved_by == "bob"


async def test_suspend_reactivate_deprovision_life(make_rig: MakeRig) -> None:
    rig = await make_rig()
    world = rig.p.sandbox.world
    ext = await rig.user(first_name="Ada", email="ada@example.com")

    await _run(rig, "suspend", ext)
    assert world.user(ext)["status"] == "Disabled"
    assert world.user(ext)["status_reason"] == "Involuntarily"
    await _run(rig, "reactivate", ext)
    assert world.user(ext)["status"] == "Enabled"
    await _run(rig, "deprovision", ext)
    assert world.find(ext) is None

    # Exactly the writes the three actions need: two suspends, one reactivation, one delete.
    assert [c["method"] for c in rig.writes(ext)] == ["PUT", "PUT", "PUT", "DELETE"]
    row = await rig.p.store.get_user(rig.p.sandbox.account_id, ext)
    assert row is not None
    assert row.state.value == "deprovisioned"
    each = ["action.proposed", "action.approved"]
    expected = [
        "user.created",
        *each, "user.suspended", "action.done",
        *each, "user.reactivated", "action.done",
        *each, "user.suspended", "user.deprovisioned", "action.done",
    ]  # fmt: skip

    async def all_delivered() -> bool:
        return len(rig.types_for(ext)) >= len(expected)

    await eventually(all_delivered, what="every event delivered")
    assert rig.types_for(ext) == expected  # every one signed (checked by `events`)
    assert sequences_in_order(rig.events())
    done = [r.json["data"] for r in rig.events() if r.type == "action.done"]
    assert [d["action"]["kind"] for d in done] == ["suspend", "reactivate", "deprovision"]
    assert all(d["account_id"] == rig.p.sandbox.account_id for d in done)

    listed = await rig.cli("actions", "list", "--json")
    assert listed.code == 0
    assert len(listed.out.splitlines()) == 3


async def test_the_proposer_cannot_approve(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ext = await rig.user()
    action_id = await rig.propose("suspend", ext, by="ada")

    ran = await rig.approve(action_id, by="ada")

    assert ran.code == 1
    assert ran.one_clear_line()
    assert "another person approves" in ran.err
    assert (await rig.action(action_id)).state is ActionState.PROPOSED
    assert rig.writes() == []


async def test_protected_extensions_are_refused_and_never_written(make_rig: MakeRig) -> None:
    rig = await make_rig()
    world = rig.p.sandbox.world
    operator = await rig.user()
    world.set_operator(operator)
    owner = world.add_owner()
    world.update_user(owner, job_title="Owner")  # its notification gets it mirrored
    admin = await rig.user()
    world.assign_roles(admin, ["1"])  # Super Admin: RingCentral notifies nobody; a read learns it
    account = rig.p.sandbox.account_id
    await rig.p.store.reconcile(
        account, admin, Roles(read_at=datetime.now(UTC), roles=(SUPER_ADMIN,)), "roles"
    )

    async def owner_mirrored() -> bool:
        await world.drain()
        return await rig.p.store.get_user(account, owner) is not None

    await eventually(owner_mirrored, what="the owner mirrored")
    for ext, why in ((operator, "operator"), (owner, "credential"), (admin, "Super Admin")):
        ran = await rig.cli(
            "actions", "propose", "deprovision", "--extension", ext, "--reason", "x", "--by", "a"
        )
        assert ran.code == 1, ran.err
        assert ran.one_clear_line()
        assert why in ran.err

    # Protected after the proposal: the execution's own check refuses, nothing is written.
    later = await rig.user()
    action_id = await rig.propose("suspend", later)
    world.assign_roles(later, ["1"])
    assert (await rig.approve(action_id)).code == 0
    action = await rig.settled(action_id)
    assert action.state is ActionState.FAILED
    assert "Super Admin" in (action.error or "")
    assert rig.writes() == []


async def test_changed_since_proposed_fails_without_writing(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ext = await rig.user()
    action_id = await rig.propose("suspend", ext)
    rig.p.sandbox.world.disable(ext)  # someone else suspended them meanwhile

    assert (await rig.approve(action_id)).code == 0
    action = await rig.settled(action_id)

    assert action.state is ActionState.FAILED
    assert "changed since proposed" in (action.error or "")
    assert rig.writes() == []


async def test_a_three_user_deprovision_with_one_refused(make_rig: MakeRig) -> None:
    rig = await make_rig()
    world = rig.p.sandbox.world
    users = [await rig.user(status="Disabled") for _ in range(3)]  # suspended: deletes only
    ids = [await rig.propose("deprovision", ext) for ext in users]
    world.fail_writes([users[1]], status=400, error_code="USR-123")
    # All three approved before a worker looks: they share one call (up to 50 ids a call).
    await rig.p.stop_workers()
    for action_id in ids:
        assert (await rig.approve(action_id)).code == 0
    rig.p.start_worker()

    settled = [await rig.settled(action_id) for action_id in ids]

    assert [a.state for a in settled] == [ActionState.DONE, ActionState.FAILED, ActionState.DONE]
    assert "USR-123" in (settled[1].error or "")
    assert world.find(users[0]) is None
    assert world.find(users[2]) is None
    assert world.user(users[1])["status"] == "Disabled"
    writes = rig.writes()
    # ⌈3/50⌉ = 1 Heavy call; the refused id was not sent again (no second call at all).
    assert [c["method"] for c in writes] == ["DELETE"]


async def test_not_found_in_the_delete_answer_is_re_read(make_rig: MakeRig) -> None:
    rig = await make_rig()
    world = rig.p.sandbox.world
    ext = await rig.user(status="Disabled")
    action_id = await rig.propose("deprovision", ext)
    # RingCentral answers the DELETE with a per-item not-found, yet the extension is gone (as
    # when a retried call's first attempt landed and its answer was lost).
    world.fail_writes([ext], status=404, error_code="CMN-102")
    vanished: list[str] = []

    async def gone_before_the_delete(path: str) -> None:
        if path.endswith("/extensions") and not vanished:
            world.delete(ext)
            vanished.append(ext)

    world.before_reply = gone_before_the_delete
    assert (await rig.approve(action_id)).code == 0
    action = await rig.settled(action_id)
    world.before_reply = None

    # RingCentral answered CMN-102 for it; the re-read says it is gone: done, not failed.
    assert vanished
    assert [(c["method"], c["status"]) for c in rig.writes()] == [("DELETE", 200)]
    assert action.state is ActionState.DONE, action.error
    row = await rig.p.store.get_user(rig.p.sandbox.account_id, ext)
    assert row is not None
    assert row.state.value == "deprovisioned"


async def test_the_hourly_cap_holds_the_rest_and_status_says_so(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers.actions.run")
    cap = {"RINGSYNC_ACTIONS_MAX_PER_HOUR": "2"}
    rig = await make_rig(actions_max_per_hour=2, env=cap)
    users = [await rig.user() for _ in range(3)]
    ids = [await rig.propose("suspend", ext) for ext in users]
    for action_id in ids:
        assert (await rig.approve(action_id)).code == 0

    first = [await rig.settled(action_id) for action_id in ids[:2]]
    assert all(a.state is ActionState.DONE for a in first)

    async def third_waits() -> bool:
        return any(
            r.getMessage() == "action waits for the hourly cap"
            and getattr(r, "action", None) == ids[2]
            for r in caplog.records
        )

    await eventually(third_waits, what="the third action's attempt told to wait")
    # The third waits (approved) for a later hour; the worker keeps it queued, never runs it.
    status = await rig.cli("status", "--json")
    assert status.code == 1
    report = json.loads(status.out)
    assert report["actions"]["waiting"] == 1
    assert report["actions"]["approved"] == 1
    assert any("hourly cap" in reason for reason in report["attention"])
    assert (await rig.action(ids[2])).state is ActionState.APPROVED
    assert len(rig.writes()) == 2


async def test_a_policy_approves_suspends_only(make_rig: MakeRig) -> None:
    policy = {"RINGSYNC_ACTIONS_AUTO_APPROVE": "suspend"}
    rig = await make_rig(actions_auto_approve=["suspend"], env=policy)
    ext = await rig.user()

    suspend = await rig.propose("suspend", ext)
    action = await rig.settled(suspend)
    assert action.state is ActionState.DONE
    assert action.approved_by == "policy"

    deprovision = await rig.propose("deprovision", ext)
    assert (await rig.action(deprovision)).state is ActionState.PROPOSED
    refused = await rig.cli("status", RINGSYNC_ACTIONS_AUTO_APPROVE="deprovision")
    assert refused.code == 2
    assert "RINGSYNC_ACTIONS_AUTO_APPROVE" in refused.err


async def test_dry_run_shows_the_preflight_and_records_nothing(make_rig: MakeRig) -> None:
    rig = await make_rig()
    ext = await rig.user(email="grace@example.com")
    ran = await rig.cli(
        "actions", "propose", "deprovision", "--email", "GRACE@example.com",
        "--reason", "left", "--by", "ada", "--dry-run", "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    preview = json.loads(ran.out)
    assert preview["extension_id"] == ext
    assert preview["steps"] == ["suspend", "delete"]
    assert preview["refused"] is None
    listed = await rig.cli("actions", "list", "--json")
    assert listed.out == ""
    assert rig.writes() == []


async def test_a_user_reactivated_while_the_delete_waits_is_not_deleted(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    world = rig.p.sandbox.world
    ext = await rig.user()
    action_id = await rig.propose("deprovision", ext)
    reactivated: list[str] = []

    async def reactivate_after_the_suspend(path: str) -> None:
        # The suspend has landed; a person reactivates the user before the delete goes out.
        landed = path.endswith(f"/extension/{ext}") and world.user(ext)["status"] == "Disabled"
        if landed and not reactivated:
            world.enable(ext)
            reactivated.append(ext)

    world.before_reply = reactivate_after_the_suspend
    assert (await rig.approve(action_id)).code == 0
    action = await rig.settled(action_id)
    world.before_reply = None

    assert reactivated
    assert action.state is ActionState.FAILED
    assert "reactivated while waiting" in (action.error or "")
    assert world.user(ext)["status"] == "Enabled"
    assert [c["method"] for c in rig.writes(ext)] == ["PUT"]  # one suspend, no second, no DELETE


async def test_the_sweep_leaves_queued_deletes_to_their_batch(make_rig: MakeRig) -> None:
    rig = await make_rig()
    waiting_one, queued_one = await rig.user(), await rig.user(status="Disabled")
    ids = [await rig.propose("deprovision", ext) for ext in (waiting_one, queued_one)]
    await rig.p.stop_workers()  # nothing runs: the sweep's own answer is looked at
    book = ActionStore(rig.p.store)
    for action_id in ids:
        await book.approve(action_id, "bob")
    pool = await create_pool(RedisSettings.from_dsn(rig.p.settings.redis_url))
    ctx: dict[str, Any] = {"settings": rig.p.settings, "redis": pool}
    await startup(ctx)
    try:
        claimed = await book.claim(ids[1], 50)
        assert claimed is not None
        await queue_delete(deps(ctx), claimed)  # suspended, waiting in the delete queue
        reads = rig.p.reads()

        assert await sweep_actions(ctx) == "1 due"  # the approved one; not the queued delete
        assert rig.p.reads() == reads
    finally:
        await shutdown(ctx)
        await pool.aclose()
