"""End to end on real parts, on SQLite and PostgreSQL: sandbox → receiver → arq → store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually, run_resync_now


async def test_lifecycle_changes_reach_ringsync_users(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url)
    world = p.sandbox.world
    hired = world.create_user(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    pending = world.create_user(first_name="Bob", last_name="Pending", status="NotActivated")
    frozen = world.create_user(first_name="Cy", last_name="Frost")
    unassigned = world.create_user(first_name="Di", last_name="Gone")
    deleted = world.create_user(first_name="Ed", last_name="Deleted")
    await p.converged()

    world.update_user(hired, first_name="Augusta")
    await p.converged()
    world.disable(hired)
    world.enable(pending)
    world.freeze(frozen)
    world.unassign(unassigned)
    world.delete(deleted)
    await p.converged()

    users = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.cli", "users", "--json",
        env=p.env(), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await users.communicate()
    assert users.returncode == 0
    # The PostgreSQL database is shared by the test run: keep this sandbox account's rows.
    listed = [json.loads(line) for line in out.decode().splitlines()]
    rows = {r["extension_id"]: r for r in listed if r["account_id"] == p.sandbox.account_id}
    assert rows[hired]["state"] == "suspended"
    assert rows[hired]["first_name"] == "Augusta"
    assert rows[pending]["state"] == "active"
    assert rows[frozen]["state"] == "suspended"
    assert rows[unassigned]["state"] == "deprovisioned"
    assert rows[deleted]["state"] == "deprovisioned"
    required = {"extension_id", "account_id", "email", "first_name", "last_name"}
    required |= {"extension_number", "status", "state", "updated_at"}
    assert all(required <= set(r) for r in rows.values())
    assert len(rows) == 5
    events = [row.type for row in await p.store.list_outbox(p.sandbox.account_id)]
    for expected in ("user.created", "user.updated", "user.suspended", "user.activated"):
        assert expected in events
    assert events.count("user.deprovisioned") == 2


async def test_duplicates_and_reordering_end_in_the_latest_state(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url)
    world = p.sandbox.world
    ids = [world.create_user(first_name=f"U{i}", last_name="Start") for i in range(4)]
    await p.converged()
    world.set_faults(duplicate=0.5, reorder=True, seed=7)
    for step in range(10):
        for ext in ids:
            world.update_user(ext, last_name=f"Step{step}")
    world.disable(ids[0])
    world.freeze(ids[1])
    await p.converged()
    mirror = await p.mirror()
    assert {mirror[i].last_name for i in ids} == {"Step9"}


async def test_a_burst_of_200_updates_over_5_users_costs_at_most_15_reads(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url)
    world = p.sandbox.world
    ids = [world.create_user(first_name=f"B{i}", last_name="v0") for i in range(5)]
    await p.converged()
    before = p.reads()
    for step in range(40):
        for ext in ids:
            world.update_user(ext, last_name=f"v{step + 1}")
    await p.converged()
    reads = p.reads() - before
    assert reads <= 15, reads


async def test_an_update_during_its_users_reconcile_is_not_lost(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    """Deterministic: the sandbox holds the read in flight while the user changes again."""
    p = await make_pipeline(database_url=sqlite_url, workers=0, coalesce_window=0.0)
    world = p.sandbox.world
    ext = world.create_user(first_name="Grace", last_name="Before")
    await world.drain()
    reading = asyncio.Event()
    release = asyncio.Event()

    async def hold(path: str) -> None:
        if path.endswith(f"/extension/{ext}") and not release.is_set():
            reading.set()
            await release.wait()

    world.before_reply = hold
    p.start_worker()
    await asyncio.wait_for(reading.wait(), 10)  # the reconcile's read is in flight (old state)
    world.update_user(ext, last_name="After")  # ...and now the user changes again
    await world.drain()  # the new notification is acknowledged and queued
    release.set()
    await p.converged()
    assert (await p.mirror())[ext].last_name == "After"


async def test_a_worker_killed_mid_burst_converges_after_restart(
    make_pipeline: MakePipeline, database_url: str, tmp_path: Path
) -> None:
    p = await make_pipeline(database_url=database_url, workers=0, job_timeout=3)
    world = p.sandbox.world
    world.set_faults(latency=0.02)
    log = tmp_path / "worker.log"
    first = p.spawn_worker(log)
    ids = [world.create_user(first_name=f"K{i}", last_name="x") for i in range(30)]
    await world.drain()

    async def some_done() -> bool:
        return len(await p.mirror()) >= 3

    await eventually(some_done, within=30, what="the first reconciles")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    for ext in ids[:10]:
        world.update_user(ext, last_name="after-kill")
    p.spawn_worker(log)
    await p.converged(within=60)


@pytest.mark.parametrize("shape", ["guide", "spec"])
async def test_both_extension_list_body_shapes_reconcile(
    make_pipeline: MakePipeline, sqlite_url: str, shape: str
) -> None:
    p = await make_pipeline(database_url=sqlite_url)
    p.sandbox.world.set_body_shape(shape)  # type: ignore[arg-type]
    p.sandbox.world.create_user(first_name="Shape", last_name=shape)
    await p.converged()


async def test_a_bulk_change_is_read_from_list_pages(
    make_pipeline: MakePipeline, sqlite_url: str
) -> None:
    """At RingCentral's default limits, 300 changed users cost a page, not 300 single reads."""
    p = await make_pipeline(database_url=sqlite_url, rate_limits="default")
    world = p.sandbox.world
    ids = world.seed(300)
    await run_resync_now(p)  # the baseline: the mirror knows the account's size
    assert len(await p.mirror()) == 300
    reads_before, pages_before = p.reads(), p.list_pages()
    world.bulk_update(ids, department="Reorganised")
    await p.converged()
    mirror = await p.mirror()
    assert {mirror[i].department for i in ids} == {"Reorganised"}
    assert p.list_pages() - pages_before <= 2
    assert p.reads() - reads_before <= 10


async def test_an_admin_flip_is_mirrored_through_a_single_roles_read(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url, users=3)
    await run_resync_now(p)
    world = p.sandbox.world
    ids = [user.id for user in world.ordered()]
    account = p.sandbox.account_id

    async def baseline_taken() -> bool:
        rows = [await p.store.get_user(account, i) for i in ids]
        return all(row is not None and row.roles is not None for row in rows)

    await eventually(baseline_taken, what="the roles baseline")
    sweeps = _calls(p, "/~/assigned-role")
    world.assign_roles(ids[0], ["2", "4"])  # no notification says so...
    world.set_admin(ids[0], True)  # ...but this one hints Permissions

    async def announced() -> list[str] | None:
        found = [r.extension_id for r in await p.store.list_outbox(account)
                 if r.type == "user.roles_changed"]  # fmt: skip
        return found if len(found) >= 2 else None

    # One from the extension's read (admin), one from its roles read.
    assert await eventually(announced, within=5, what="user.roles_changed") == [ids[0], ids[0]]
    row = await p.store.get_user(account, ids[0])
    assert row is not None
    assert row.admin is True
    assert row.roles == [{"id": "2", "name": "Standard"}, {"id": "4", "name": "Users Admin"}]
    diffs = [r.payload["diffs"] for r in await p.store.list_outbox(account)]
    assert sorted(diffs, key=str) == sorted(
        [
            {"admin": [False, True]},
            {"roles": [[{"id": "2", "name": "Standard"}], row.roles]},
        ],
        key=str,
    )
    assert _calls(p, f"/extension/{ids[0]}/assigned-role")  # one user's read (Light)...
    assert _calls(p, "/~/assigned-role") == sweeps  # ...no account-wide sweep


async def test_a_user_never_seen_gets_a_silent_first_roles_read(
    make_pipeline: MakePipeline, database_url: str
) -> None:
    p = await make_pipeline(database_url=database_url)
    hired = p.sandbox.world.create_user(first_name="New", last_name="Hire")
    account = p.sandbox.account_id

    async def roles_read() -> object:
        row = await p.store.get_user(account, hired)
        return row is not None and row.roles

    assert await eventually(roles_read, what="the first roles read") == [
        {"id": "2", "name": "Standard"}
    ]
    assert _calls(p, f"/extension/{hired}/assigned-role")
    assert [r.type for r in await p.store.list_outbox(account)] == ["user.created"]


def _calls(p: Pipeline, ending: str) -> list[object]:
    """The sandbox's answered calls whose path ends so."""
    return [c for c in p.sandbox.world.calls if str(c["path"]).endswith(ending)]
