"""The client against the sandbox over real HTTP, with the real Redis sharing token and budget."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from events.settings import Settings
from sandbox.server import SandboxServer
from tests.fixtures.receiver import serve_app
from workers.ringcentral.client import RingCentral
from workers.ringcentral.errors import ApiError, AuthError
from workers.ringcentral.resources import Extension, Gone, ScimUser, Subscription

TOKEN_PATH = "/restapi/oauth/token"


class Clock:
    """The client's wall clock, advanced together with the sandbox's."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


Build = Callable[..., RingCentral]


@pytest.fixture
async def connections(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    """One Redis connection per client, as separate processes would have."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    yield clients
    for client in clients:
        await client.aclose()


def _client_factory(
    make_settings: Callable[..., Settings],
    connections: list[aioredis.Redis],
    opened: list[RingCentral],
) -> Callable[..., Build]:
    def for_sandbox(sb: SandboxServer) -> Build:
        settings = make_settings(
            rc_server_url=sb.url,
            rc_client_id=sb.client_id,
            rc_client_secret=sb.client_secret,
            rc_jwt=sb.jwt,
        )

        def build(index: int = 0, **kwargs: Any) -> RingCentral:
            kwargs.setdefault("backoff", 0.01)
            client = RingCentral(settings, connections[index], **kwargs)
            opened.append(client)
            return client

        return build

    return for_sandbox


@pytest.fixture
async def clients(
    make_settings: Callable[..., Settings], connections: list[aioredis.Redis]
) -> AsyncIterator[Callable[..., Build]]:
    """`clients(sb)(index, **kwargs)`: a RingCentral client on connection `index`, closed after."""
    opened: list[RingCentral] = []
    yield _client_factory(make_settings, connections, opened)
    for client in opened:
        await client.aclose()


def _calls(sb: SandboxServer, path: str | None = None) -> list[dict[str, Any]]:
    return [call for call in sb.world.calls if path is None or call["path"] == path]


async def test_two_clients_share_one_login(clients: Callable[..., Build]) -> None:
    async with SandboxServer(users=5) as sb:
        build = clients(sb)
        first, second = build(0), build(1)
        ids = [u["id"] for u in sb.world.users()]
        reads = [client.get_extension(i) for i in ids for client in (first, second)]
        results = await asyncio.gather(first.account(), second.account(), *reads)
        assert all(not isinstance(result, Gone) for result in results)
        assert len(_calls(sb, TOKEN_PATH)) == 1


_READER = """
import asyncio, sys
import redis.asyncio as aioredis
from events.settings import Settings
from workers.ringcentral.client import RingCentral

async def main() -> None:
    settings = Settings(_env_file=None)
    redis = aioredis.Redis.from_url(settings.redis_url)
    async with RingCentral(settings, redis) as rc:
        for _ in range(3):
            print((await rc.account()).id)
    await redis.aclose()

asyncio.run(main())
"""


async def test_two_processes_share_one_login(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    async with SandboxServer(users=1) as sb:
        env = dict(os.environ)
        env.update(
            REDIS_URL=redis_url,
            RINGSYNC_REDIS_NAMESPACE=make_settings().redis_namespace,
            RC_SERVER_URL=sb.url,
            RC_APP_CLIENT_ID=sb.client_id,
            RC_APP_CLIENT_SECRET=sb.client_secret,
            RC_USER_JWT=sb.jwt,
        )
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", _READER, env=env, stdout=asyncio.subprocess.PIPE
            )
            for _ in range(2)
        ]
        outputs = [(await process.communicate())[0].decode().split() for process in processes]
        assert [process.returncode for process in processes] == [0, 0]
        assert outputs == [[sb.account_id] * 3] * 2
        assert len(_calls(sb, TOKEN_PATH)) == 1


async def test_token_is_refreshed_ahead_of_expiry(clients: Callable[..., Build]) -> None:
    async with SandboxServer(users=1, token_ttl=3600) as sb:
        clock = Clock()
        build = clients(sb)
        first, second = build(0, clock=clock), build(1, clock=clock)
        await first.account()
        for seconds in (3000.0, 400.0):  # 600 s left, then 200 s left (< the 300 s margin)
            sb.world.advance_clock(seconds)
            clock.offset += seconds
            await second.account()
            await first.account()
        tokens = _calls(sb, TOKEN_PATH)
        assert len(tokens) == 2
        assert all(call["status"] != 401 for call in sb.world.calls)


async def test_a_refused_token_is_refreshed_and_the_call_retried(
    clients: Callable[..., Build], redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> None:
    async with SandboxServer(users=1) as sb:
        rc = clients(sb)(0)
        await rc.account()
        stored = await redis.hget(make_settings().key("rc", "token"), "access_token")  # type: ignore[misc]
        assert stored is not None
        sb.world.tokens.revoke(stored.decode())
        account = await rc.account()
        assert account.id == sb.account_id
        statuses = [(c["path"], c["status"]) for c in sb.world.calls]
        assert statuses[-3:] == [
            ("/restapi/v1.0/account/~", 401),
            (TOKEN_PATH, 200),
            ("/restapi/v1.0/account/~", 200),
        ]


async def test_a_429_penalty_is_respected_by_every_client(
    clients: Callable[..., Build],
) -> None:
    # Light allows 5 per 1 s here; the penalty lasts 1 s from the last refused request.
    async with SandboxServer(users=1, rate_limits={"light": 5}, rate_window=1, penalty=1) as sb:
        build = clients(sb)
        first, second = build(0), build(1)
        await first.account()  # logs in, so only Light requests follow
        extension_id = sb.world.users()[0]["id"]
        # Another user of the same app spends the rest of the group behind our back.
        outsider = {"Authorization": f"Bearer {sb.world.tokens.issue().access_token}"}
        async with httpx.AsyncClient(base_url=sb.url, headers=outsider) as raw:
            for _ in range(4):
                assert (await raw.get("/restapi/v1.0/account/~")).status_code == 200
        first_read = asyncio.create_task(first.get_extension(extension_id))
        deadline = time.monotonic() + 5
        while (await second.budget.snapshot())["light"].penalty_until is None:
            assert time.monotonic() < deadline, "expected a 429 and its penalty"
            await asyncio.sleep(0.005)
        # The other client starts inside the penalty: it waits instead of sending.
        second_read = await second.get_extension(extension_id)
        assert isinstance(second_read, Extension)
        assert isinstance(await first_read, Extension)
        light = [c for c in sb.world.calls if c["group"].lower() == "light"]
        refused = [c for c in light if c["status"] == 429]
        assert len(refused) == 1
        penalty_end = refused[0]["time"] + 1.0
        inside = [c for c in light if refused[0]["time"] < c["time"] < penalty_end]
        assert inside == []
        assert light[-1]["status"] == 200


async def test_5xx_are_retried_then_succeed(clients: Callable[..., Build]) -> None:
    async with SandboxServer(users=3) as sb:
        rc = clients(sb)(0, attempts=8)
        await rc.account()
        sb.world.set_faults(error_rate=0.5, seed=7)
        ids = [u["id"] for u in sb.world.users()]
        read = [await rc.get_extension(i) for i in ids * 2]
        assert all(isinstance(r, Extension) for r in read)
        statuses = [c["status"] for c in sb.world.calls]
        assert statuses.count(500) >= 1
        assert statuses.count(200) == 1 + 1 + len(read)  # login, account, reads


async def test_cmn_102_is_gone(clients: Callable[..., Build]) -> None:
    async with SandboxServer(users=2) as sb:
        rc = clients(sb)(0)
        extension_id = sb.world.users()[0]["id"]
        assert isinstance(await rc.get_extension(extension_id), Extension)
        sb.world.delete(extension_id)
        gone = await rc.get_extension(extension_id)
        assert isinstance(gone, Gone)
        assert (gone.id, gone.error_code) == (extension_id, "CMN-102")
        assert isinstance(await rc.scim_get_user(extension_id), Gone)


async def test_paging_over_2500_users(clients: Callable[..., Build]) -> None:
    async with SandboxServer(users=2500) as sb:
        rc = clients(sb)(0)
        pages = [page async for page in rc.list_extensions(per_page=1000)]
        assert [len(page.records) for page in pages] == [1000, 1000, 500]
        ids = {record.id for page in pages for record in page.records}
        assert ids == {u["id"] for u in sb.world.users()}
        assert all(page.read_at <= later.read_at for page, later in itertools.pairwise(pages))
        assert all(r.read_at == page.read_at for page in pages for r in page.records)


async def test_errors_are_typed_with_their_error_code(
    clients: Callable[..., Build], make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    async with SandboxServer(users=1) as sb:
        rc = clients(sb)(0)
        with pytest.raises(ApiError) as caught:
            async for _ in rc.list_extensions(per_page=5000):
                pass
        assert (caught.value.status, caught.value.error_code) == (400, "CMN-101")
        with pytest.raises(ApiError) as caught:
            await rc.update_subscription("no-such-id", event_filters=["/x"], expires_in=60)
        assert caught.value.status == 404
        assert caught.value.error_code is not None
        wrong = make_settings(
            redis_namespace=f"{make_settings().redis_namespace}-wrong",
            rc_server_url=sb.url,
            rc_client_id=sb.client_id,
            rc_client_secret=sb.client_secret,
            rc_jwt=sb.jwt[:-4] + "abcd",
        )
        async with RingCentral(wrong, redis) as bad:
            with pytest.raises(AuthError) as refused:
                await bad.account()
        assert refused.value.error_code == "OAU-213"
        assert sb.jwt[:-4] not in str(refused.value)
        assert sb.client_secret not in str(refused.value)
        await redis.delete(*[k async for k in redis.scan_iter(match=f"{wrong.redis_namespace}*")])


async def _handshake(request: Request) -> Response:
    token = request.headers.get("Validation-Token", "")
    return Response(b"", 200, {"Validation-Token": token, "Content-Type": "application/json"})


async def test_subscription_lifecycle_and_scim(clients: Callable[..., Build]) -> None:
    app = Starlette(routes=[Route("/webhook", _handshake, methods=["POST"])])
    async with SandboxServer(users=2) as sb, serve_app(app) as hook_url:
        rc = clients(sb)(0)
        filters = ["/restapi/v1.0/account/~/extension"]
        sub = await rc.create_subscription(
            event_filters=filters,
            address=f"{hook_url}/webhook",
            verification_token="t" * 32,
            expires_in=600,
        )
        assert sub.status == "Active"
        assert sub.delivery_mode.address == f"{hook_url}/webhook"
        assert [s.id for s in await rc.list_subscriptions()] == [sub.id]
        updated = await rc.update_subscription(sub.id, event_filters=filters, expires_in=900)
        assert updated.expires_in is not None
        assert updated.expires_in > 600
        assert isinstance(await rc.renew_subscription(sub.id), Subscription)
        assert isinstance(await rc.get_subscription(sub.id), Subscription)
        await rc.delete_subscription(sub.id)
        assert isinstance(await rc.get_subscription(sub.id), Gone)
        user = sb.world.users()[0]
        found = await rc.scim_search_users(f'userName eq "{user["email"]}"')
        assert [u.id for u in found.resources] == [user["id"]]
        assert isinstance(await rc.scim_get_user(user["id"]), ScimUser)
