"""A worker SIGKILLed between RingCentral's write and the action's record: the next attempt
re-reads, finds its own write done, and records the action without writing again (a
deprovision's suspend included: never a second one, even for a user reactivated meanwhile)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.pipeline import eventually
from tests.workers.actions.conftest import MakeRig, Rig
from workers.actions.decide import ActionState


async def test_a_worker_killed_after_the_write_still_writes_once(
    make_rig: MakeRig, tmp_path: Path
) -> None:
    rig = await make_rig(workers=0, job_timeout=3)
    world = rig.p.sandbox.world
    first = rig.p.spawn_worker(tmp_path / "worker-1.log")
    ext = await rig.user()
    action_id = await rig.propose("suspend", ext)
    await _approve_and_kill_after_the_suspend(rig, first, ext, action_id)
    assert (await rig.action(action_id)).state is ActionState.RUNNING  # written, not recorded
    rig.p.spawn_worker(tmp_path / "worker-2.log")

    action = await rig.settled(action_id, within=60)

    assert action.state is ActionState.DONE, action.error
    assert [c["method"] for c in rig.writes(ext)] == ["PUT"]  # exactly one write
    assert world.user(ext)["status"] == "Disabled"
    row = await rig.p.store.get_user(rig.p.sandbox.account_id, ext)
    assert row is not None
    assert row.state.value == "suspended"


@pytest.mark.parametrize("reactivated", [False, True])
async def test_a_deprovision_killed_after_its_suspend_never_suspends_twice(
    make_rig: MakeRig, tmp_path: Path, reactivated: bool
) -> None:
    rig = await make_rig(workers=0, job_timeout=3)
    world = rig.p.sandbox.world
    first = rig.p.spawn_worker(tmp_path / "worker-1.log")
    ext = await rig.user()
    action_id = await rig.propose("deprovision", ext)
    await _approve_and_kill_after_the_suspend(rig, first, ext, action_id)
    if reactivated:
        world.enable(ext)  # a person brings the user back before anything resumes
    rig.p.spawn_worker(tmp_path / "worker-2.log")

    action = await rig.settled(action_id, within=90)

    if reactivated:
        assert action.state is ActionState.FAILED
        assert "reactivated while waiting" in (action.error or "")
        assert world.user(ext)["status"] == "Enabled"
        assert [c["method"] for c in rig.writes(ext)] == ["PUT"]  # never suspended twice
    else:
        assert action.state is ActionState.DONE, action.error
        assert world.find(ext) is None
        assert [c["method"] for c in rig.writes(ext)] == ["PUT", "DELETE"]


async def _approve_and_kill_after_the_suspend(
    rig: Rig, first: subprocess.Popen[bytes], ext: str, action_id: str
) -> None:
    """Approve the action and SIGKILL the running worker `first` the moment its suspend PUT is
    applied in RingCentral, before the reply is sent."""
    world = rig.p.sandbox.world
    killed: list[int] = []

    async def kill_after_the_write(path: str) -> None:
        if (
            not killed
            and path.endswith(f"/extension/{ext}")
            and world.user(ext)["status"] == "Disabled"
        ):
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed.append(first.pid)

    world.before_reply = kill_after_the_write
    assert (await rig.approve(action_id)).code == 0

    async def cut() -> bool:
        return bool(killed)

    await eventually(cut, what="the worker killed after its suspend")
    world.before_reply = None
