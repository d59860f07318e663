"""Two RingCentral accounts on one deployment: each change lands in its own account, each
subscription has its own token, a budget penalty or refused credentials in one account leave
the other alone. Real Redis, SQLite, arq worker, receiver, `ringsync` processes and two sandboxes
(one per account, one public app: the same client id and secret, a JWT each)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from sandbox.server import SandboxServer
from sandbox.tokens import Credentials, TokenStore
from tests.fixtures.commands import ringsync
from tests.fixtures.pipeline import TOKEN, MakePipeline, Pipeline, eventually
from tests.scripts.test_accounts import database_bytes
from workers.accounts.store import AccountState, AccountStore
from workers.actions.protection import protection_key
from workers.delivery.signing import event_for
from workers.ringcentral.budget import Budget
from workers.store import tables

KEY = Fernet.generate_key().decode()


async def reaches(
    check: Callable[[], Awaitable[Any]], wanted: Any, *, what: str = "condition"
) -> None:
    """Poll `check` until it returns `wanted` (with a deadline)."""

    async def equal() -> bool:
        return bool(await check() == wanted)

    await eventually(equal, what=what)


@dataclass
class Two:
    p: Pipeline
    b: SandboxServer
    env: dict[str, str]
    jwt_file: Path

    @property
    def b_id(self) -> str:
        return self.b.account_id

    async def b_users(self) -> dict[str, str | None]:
        users = await self.p.store.list_users(account_id=self.b_id)
        return {u.extension_id: u.row.first_name for u in users}


@contextlib.asynccontextmanager
async def two_accounts(
    make_pipeline: MakePipeline, tmp_path: Path, *, b_users: int = 3, **overrides: Any
) -> AsyncIterator[Two]:
    p = await make_pipeline(users=2, secret_key=KEY, **overrides)
    a = p.sandbox
    b_server = SandboxServer(users=b_users, client_id=a.client_id, client_secret=a.client_secret)
    async with b_server as b:
        jwt_file = tmp_path / "b.jwt"
        jwt_file.write_text(f"\n  {b.jwt}  \n")  # surrounding whitespace is stripped
        env = p.env() | {"RINGSYNC_SECRET_KEY": KEY}
        # The default account's id becomes known with its first job.
        a.world.update_user(a.world.ordered()[0].id, first_name="Ayla")
        await reaches(lambda: _first_name(p, a.account_id, a.world.ordered()[0].id), "Ayla")
        added = await ringsync(
            env, "accounts", "add", "--jwt-file", str(jwt_file), "--server-url", b.url, "--json"
        )
        assert added.code == 0, added.err
        assert orjson.loads(added.out)["account_id"] == b.account_id
        two = Two(p, b, env, jwt_file)
        await reaches(lambda: _count(two), b_users, what="account B's baseline resync")
        yield two


async def _count(two: Two) -> int:
    return len(await two.b_users())


async def _first_name(p: Pipeline, account_id: str, extension_id: str) -> str | None:
    user = await p.store.get_user(account_id, extension_id)
    return None if user is None else user.first_name


async def test_each_change_lands_in_its_own_account(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, b = two.p, two.b
        a_id = p.sandbox.account_id
        b_user = b.world.ordered()[1].id
        a_before = await p.store.list_users(account_id=a_id)
        b.world.update_user(b_user, first_name="Bea")
        await reaches(lambda: _first_name(p, b.account_id, b_user), "Bea")
        assert await p.store.get_user(a_id, b_user) is None
        assert await p.store.list_users(account_id=a_id) == a_before
        # B's requests are counted under B's own label.
        registry = p.workers[0][0].ctx["metrics"].registry
        for account in (b.account_id, "default"):
            labels = {"account": account, "group": "light", "outcome": "ok"}
            assert registry.get_sample_value("ringsync_ringcentral_requests_total", labels)

        listed = await ringsync(two.env, "accounts", "list", "--json")
        rows = [orjson.loads(line) for line in listed.out.splitlines()]
        assert listed.code == 0, listed.err
        assert [(r["account_id"], r["state"], r["users"]) for r in rows] == [
            (a_id, "active", len(a_before)),
            (b.account_id, "active", 3),
        ]
        assert rows[1]["subscription"] is not None


async def test_each_account_has_its_own_token_and_another_account_s_is_refused(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, b = two.p, two.b
        (subscription,) = b.world.subscriptions.values()
        b_token = p.settings.account_token(b.account_id).get_secret_value()
        assert subscription.verification_token == b_token != TOKEN

        def notification() -> bytes:
            return orjson.dumps(
                {
                    "uuid": str(uuid.uuid4()),
                    "event": f"/restapi/v1.0/account/{b.account_id}/extension",
                    "timestamp": "2026-11-23T10:00:00.000Z",
                    "subscriptionId": subscription.id,
                    "body": {"extensions": [{"extensionId": b.world.ordered()[0].id}]},
                }
            )

        queue = p.settings.queue_name
        async with httpx.AsyncClient(base_url=p.receiver_url) as http:
            before = await _queued(p, queue)
            refused = await http.post(
                "/webhook", content=notification(), headers={"Verification-Token": TOKEN}
            )
            assert refused.status_code == 401
            assert await _queued(p, queue) == before
            accepted = await http.post(
                "/webhook", content=notification(), headers={"Verification-Token": b_token}
            )
            assert accepted.status_code == 200


async def _queued(p: Pipeline, queue: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(p.settings.redis_url)
    try:
        jobs = await client.keys("arq:job:" + p.settings.key("notification", "*"))
        return len(jobs)
    finally:
        await client.aclose()


async def test_a_penalty_in_one_account_does_not_hold_the_other(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, b = two.p, two.b
        b_settings = p.settings.for_account(b.account_id, server_url=b.url, jwt=b.jwt)
        from redis.asyncio import Redis

        redis = Redis.from_url(p.settings.redis_url)
        try:
            for group in ("light", "medium"):
                await Budget(b_settings, redis).penalize(group, 600)
            a_user = p.sandbox.world.ordered()[1].id
            started = time.monotonic()
            p.sandbox.world.update_user(a_user, first_name="Arlo")
            await reaches(lambda: _first_name(p, p.sandbox.account_id, a_user), "Arlo")
            assert time.monotonic() - started < 5
            # B waits out its own penalty: nothing was sent to it meanwhile.
            calls = len(b.world.calls)
            b.world.update_user(b.world.ordered()[0].id, first_name="Blocked")
            p.sandbox.world.update_user(a_user, first_name="Arlo2")
            await reaches(lambda: _first_name(p, p.sandbox.account_id, a_user), "Arlo2")
            assert len(b.world.calls) == calls
            # `status` shows each account's own budgets: B's penalty, A's none.
            status = await ringsync(two.env, "status", "--json")
            accounts = {a["account_id"]: a for a in orjson.loads(status.out)["accounts"]}
            b_light = accounts[b.account_id]["rate_limits"]["light"]
            a_light = accounts[p.sandbox.account_id]["rate_limits"]["light"]
            assert b_light["penalty_until"] is not None
            assert b_light["available_in"] > 500
            assert a_light["penalty_until"] is None
        finally:
            await redis.aclose()


async def test_an_account_without_budget_holds_no_worker_slot_from_another(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path, worker_concurrency=2) as two:
        p, b = two.p, two.b
        b_settings = p.settings.for_account(b.account_id, server_url=b.url, jwt=b.jwt)
        from redis.asyncio import Redis

        redis = Redis.from_url(p.settings.redis_url)
        try:
            # Short enough that a job would sleep through it (under a third of its timeout).
            for group in ("light", "medium"):
                await Budget(b_settings, redis).penalize(group, 8)
            for user in b.world.ordered():
                b.world.update_user(user.id, department="Storm")
            # Every B notification is ingested: its reconciles are queued, due now.
            await reaches(lambda: _scheduled(p, b.account_id), 3, what="B's notifications")
            a_user = p.sandbox.world.ordered()[1].id
            started = time.monotonic()
            p.sandbox.world.update_user(a_user, first_name="Prompt")
            await reaches(lambda: _first_name(p, p.sandbox.account_id, a_user), "Prompt")
            assert time.monotonic() - started < 4
        finally:
            await redis.aclose()

        # B's changes land once its penalty is over.
        async def departments() -> set[str | None]:
            users = await p.store.list_users(account_id=b.account_id)
            return {u.row.department for u in users}

        await eventually(lambda: _is_storm(departments), within=30, what="B's changes")


async def _scheduled(p: Pipeline, account_id: str) -> int:
    query = select(func.count()).where(
        tables.events.c.account_id == account_id, tables.events.c.outcome == "scheduled"
    )
    async with p.store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def _is_storm(departments: Callable[[], Awaitable[set[str | None]]]) -> bool:
    return await departments() == {"Storm"}


async def test_refused_credentials_make_the_account_failing_once_until_updated(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, b = two.p, two.b
        book = AccountStore(p.store)
        # B's admin revokes our JWT: sessions end and the old JWT is refused (OAU-213).
        b.world.credentials = Credentials.make(b.client_id, b.client_secret)
        b.world.tokens = TokenStore(b.world.clock, 3600)
        users = b.world.ordered()
        b.world.update_user(users[0].id, first_name="Gone")

        async def state() -> AccountState | None:
            found = await book.get(b.account_id)
            return None if found is None else found.state

        await reaches(state, AccountState.FAILING, what="account B failing")
        b.world.update_user(users[1].id, first_name="Still")
        calls = len(b.world.calls)
        a_user = p.sandbox.world.ordered()[0].id
        p.sandbox.world.update_user(a_user, first_name="Alive")
        await reaches(lambda: _first_name(p, p.sandbox.account_id, a_user), "Alive")
        assert len(b.world.calls) == calls  # no more calls for a failing account
        assert await _failing_events(p, b.account_id) == 1

        status = await ringsync(two.env, "status", "--json")
        assert status.code == 1
        accounts = {a["account_id"]: a for a in orjson.loads(status.out)["accounts"]}
        assert accounts[b.account_id]["state"] == "failing"

        new_jwt = tmp_path / "new.jwt"
        new_jwt.write_text(b.world.credentials.jwt)
        # The protected extensions read under the old JWT (its owner) are forgotten with it.
        from redis.asyncio import Redis

        redis = Redis.from_url(p.settings.redis_url)
        b_settings = p.settings.for_account(b.account_id, server_url=b.url, jwt=b.jwt)
        facts = protection_key(b_settings)
        await redis.set(facts, '{"operator_id": "1", "owner_id": "2"}')
        updated = await ringsync(
            two.env, "accounts", "update", b.account_id, "--jwt-file", str(new_jwt)
        )
        assert updated.code == 0, updated.err
        try:
            assert await redis.get(facts) is None
        finally:
            await redis.aclose()
        await reaches(state, AccountState.ACTIVE)
        await reaches(lambda: _first_name(p, b.account_id, users[1].id), "Still")
        assert await _failing_events(p, b.account_id) == 1
        for ran in (updated,):
            assert b.world.credentials.jwt not in ran.out + ran.err


async def _failing_events(p: Pipeline, account_id: str) -> int:
    """How many `account.failing` events the outbox holds (each one deliverable as is)."""
    rows = [row for row in await p.store.list_outbox(account_id) if row.type == "account.failing"]
    for row in rows:
        assert event_for(row).data.account_id == account_id
    return len(rows)


async def test_remove_deletes_the_subscription_and_purge_the_mirror(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, b = two.p, two.b
        removed = await ringsync(two.env, "accounts", "remove", b.account_id, "--purge")
        assert removed.code == 0, removed.err
        assert b.world.subscriptions == {}
        assert await two.b_users() == {}
        listed = await ringsync(two.env, "accounts", "list", "--json")
        assert [orjson.loads(line)["account_id"] for line in listed.out.splitlines()] == [
            p.sandbox.account_id
        ]


async def test_the_jwt_is_never_stored_in_plaintext_nor_logged(
    make_pipeline: MakePipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with two_accounts(make_pipeline, tmp_path) as two:
        p, b = two.p, two.b
        b.world.update_user(b.world.ordered()[0].id, first_name="Quiet")
        await reaches(lambda: _first_name(p, b.account_id, b.world.ordered()[0].id), "Quiet")
        jwt = b.jwt.encode()
        assert jwt not in database_bytes(p.settings.database_url)
        logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        assert b.jwt not in logged


async def test_the_default_account_fails_too_and_its_jobs_stop(
    make_pipeline: MakePipeline,
) -> None:
    p = await make_pipeline(users=2)
    a = p.sandbox
    users = a.world.ordered()
    a.world.update_user(users[0].id, first_name="Known")
    await reaches(lambda: _first_name(p, a.account_id, users[0].id), "Known")
    book = AccountStore(p.store)

    async def state() -> AccountState | None:
        found = await book.get(a.account_id)
        return None if found is None else found.state

    await reaches(state, AccountState.ACTIVE, what="the default account registered")
    a.world.credentials = Credentials.make(a.client_id, a.client_secret)  # RC_USER_JWT revoked
    a.world.tokens = TokenStore(a.world.clock, 3600)
    a.world.update_user(users[1].id, first_name="Refused")
    await reaches(state, AccountState.FAILING, what="the default account failing")
    calls = len(a.world.calls)
    a.world.update_user(users[0].id, first_name="Later")
    await reaches(lambda: _outcomes(p, a.account_id), 3, what="the third notification ingested")
    assert len(a.world.calls) == calls
    assert await _failing_events(p, a.account_id) == 1


async def _outcomes(p: Pipeline, account_id: str) -> int:
    query = select(func.count()).where(
        tables.events.c.account_id == account_id, tables.events.c.outcome.is_not(None)
    )
    async with p.store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())
