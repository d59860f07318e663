"""A dead letter keeps the account its job acted for, and replaying it acts for that account
again: a stored account's user is re-read with that account's own credentials (its sandbox),
never the default account's. Real Redis, SQLite, arq worker, receiver, `ringsync` processes and
two sandboxes (as in `test_isolation`)."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import select

from sandbox.server import SandboxServer
from tests.fixtures.commands import ringsync
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from tests.workers.accounts.test_isolation import Two, reaches, two_accounts
from workers.accounts.store import AccountStore
from workers.store import tables
from workers.store.identity import DeadLetter


def reads_of(server: SandboxServer, extension_id: str) -> list[int]:
    """The statuses of every read of one extension this sandbox answered."""
    return [
        call["status"]
        for call in server.world.calls
        if call["method"] == "GET" and call["path"].endswith(f"/extension/{extension_id}")
    ]


async def dead_letter(p: Pipeline, job: str) -> DeadLetter:
    async def written() -> bool:
        return any(letter.job == job for letter in await p.store.list_dead_letters())

    await eventually(written, within=30, what=f"a {job} dead letter")
    return next(letter for letter in await p.store.list_dead_letters() if letter.job == job)


async def refused_change(two: Two, first_name: str) -> tuple[str, DeadLetter]:
    """A change of one of B's users whose read RingCentral refuses for good: dead-lettered."""
    b = two.b
    extension_id = b.world.ordered()[1].id
    b.world.set_faults(refuse={f"GET /restapi/v1.0/account/*/extension/{extension_id}": 400})
    b.world.update_user(extension_id, first_name=first_name)
    letter = await dead_letter(two.p, "reconcile")
    b.world.set_faults()
    return extension_id, letter


async def test_a_stored_account_s_dead_letter_is_replayed_for_that_account(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, a, b = two.p, two.p.sandbox, two.b
        extension_id, letter = await refused_change(two, "Bea")
        assert letter.account_id == b.account_id
        assert letter.arguments["extension_id"] == extension_id
        assert "account" not in letter.arguments  # the letter's column says it, once

        shown = await ringsync(two.env, "status", "--json")
        dead = orjson.loads(shown.out)["dead_letters"]
        assert dead["by_account"] == {b.account_id: 1}
        assert [(x["account_id"], x["job"]) for x in dead["letters"]] == [
            (b.account_id, "reconcile")
        ]

        # A letter of an account not mirrored is kept, with the reason, never run as another's.
        stray = await p.store.add_dead_letter("reconcile", letter.arguments, "Boom", 1, "424242")
        replayed = await ringsync(two.env, "replay", "--dead-letters")
        assert replayed.code == 0, replayed.err
        assert "re-ran 1 dead-lettered jobs (1 skipped" in replayed.out
        assert "account 424242 is not mirrored" in replayed.out
        assert [x.id for x in await p.store.list_dead_letters()] == [stray]
        await reaches(lambda: _first_name(two, extension_id), "Bea", what="B's user repaired")
        assert reads_of(b, extension_id)[-1] == 200
        assert reads_of(a, extension_id) == []  # never asked of the default account
        assert await p.store.get_user(a.account_id, extension_id) is None


async def test_a_stored_account_s_ingest_letter_is_replayed_for_that_account(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, a, b = two.p, two.p.sandbox, two.b
        extension_id, reconcile = await refused_change(two, "Bo")
        # As if the ingest of B's notification had been given up on instead.
        await p.store.mark_dead_letter_replayed(reconcile.id)
        events = tables.events
        query = (
            select(events.c.uuid)
            .where(events.c.account_id == b.account_id, events.c.body.contains(extension_id))
            .order_by(events.c.id.desc())
        )
        async with p.store.engine.connect() as conn:
            uuid = (await conn.execute(query)).scalars().first()
        assert uuid is not None
        await p.store.add_dead_letter("ingest", {"uuid": uuid}, "Boom: test", 1, b.account_id)

        replayed = await ringsync(two.env, "replay", "--dead-letters", "--type", "ingest")
        assert replayed.code == 0, replayed.err
        assert "re-ran 1 dead-lettered jobs" in replayed.out
        await reaches(lambda: _first_name(two, extension_id), "Bo", what="B's user repaired")
        assert reads_of(a, extension_id) == []


async def test_a_failing_account_s_letters_wait_for_its_credentials(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, b = two.p, two.b
        _, letter = await refused_change(two, "Bix")
        await AccountStore(p.store).mark_failing(b.account_id, "JWT revoked")
        replayed = await ringsync(two.env, "replay", "--dead-letters")
        assert replayed.code == 0, replayed.err
        assert f"account {b.account_id} is failing" in replayed.out
        # Kept: the worker would have skipped the job, and the letter would be lost.
        assert [x.id for x in await p.store.list_dead_letters()] == [letter.id]


async def _first_name(two: Two, extension_id: str) -> str | None:
    return (await two.b_users()).get(extension_id)
