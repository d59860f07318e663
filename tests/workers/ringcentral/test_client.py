"""Unit tests of the client's decisions with httpx.MockTransport (the real Redis holds the budget
and the token); the behaviour against the sandbox over HTTP is in test_ringcentral_sandbox.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from events.settings import Settings
from workers.metrics import WorkerMetrics
from workers.ringcentral.client import RingCentral
from workers.ringcentral.errors import (
    ApiError,
    AuthError,
    NetworkError,
    RateLimited,
    ServerUnavailable,
)
from workers.ringcentral.resources import Extension, Gone
from workers.ringcentral.session import tls_context

SECRET = "client-secret-value"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.signature-value"
ACCESS = "access-token-value"

Handler = Callable[[httpx.Request], httpx.Response]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers=headers)


def _token_or(handler: Handler, log: list[httpx.Request]) -> Handler:
    """Answer the token endpoint, pass everything else to `handler`, record every request."""

    def route(request: httpx.Request) -> httpx.Response:
        log.append(request)
        if request.url.path == "/restapi/oauth/token":
            return _json(200, {"access_token": ACCESS, "expires_in": 3600, "token_type": "bearer"})
        return handler(request)

    return route


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        rc_server_url="https://rc.example.test",
        rc_client_id="client-id",
        rc_client_secret=SECRET,
        rc_jwt=JWT,
    )


@pytest.fixture
def client(
    settings: Settings, redis: aioredis.Redis
) -> Callable[..., tuple[RingCentral, list[httpx.Request]]]:
    def build(handler: Handler, **kwargs: Any) -> tuple[RingCentral, list[httpx.Request]]:
        log: list[httpx.Request] = []
        transport = httpx.MockTransport(_token_or(handler, log))
        kwargs.setdefault("backoff", 0.001)
        return RingCentral(settings, redis, transport=transport, **kwargs), log

    return build


def _no_secrets(text: str) -> None:
    for secret in (SECRET, JWT, ACCESS):
        assert secret not in text


async def test_bad_credentials_are_one_permanent_auth_error(
    settings: Settings, redis: aioredis.Redis
) -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = {
            "error": "invalid_grant",
            "error_description": "Invalid JWT token",
            "errors": [{"errorCode": "OAU-213", "message": "Invalid JWT token"}],
        }
        return _json(400, body)

    async with RingCentral(settings, redis, transport=httpx.MockTransport(refuse)) as rc:
        with pytest.raises(AuthError) as caught:
            await rc.account()
        with pytest.raises(AuthError):
            await rc.account()  # the recorded failure answers; no second login
    assert len(calls) == 1
    assert caught.value.error_code == "OAU-213"
    assert "RC_USER_JWT" in str(caught.value)
    _no_secrets(str(caught.value) + repr(rc))


async def test_missing_credentials_fail_without_a_request(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    def unexpected(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    settings = make_settings(rc_server_url="https://rc.example.test")
    async with RingCentral(settings, redis, transport=httpx.MockTransport(unexpected)) as rc:
        with pytest.raises(AuthError, match="RC_APP_CLIENT_ID"):
            await rc.account()


async def test_requests_carry_the_shared_token(client: Callable[..., Any]) -> None:
    rc, log = client(lambda request: _json(200, {"id": 400386146004}))
    async with rc:
        account = await rc.account()
    assert account.id == "400386146004"
    assert log[-1].headers["Authorization"] == f"Bearer {ACCESS}"
    assert "Authorization" not in repr(log[-1])


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, {"errors": [{"errorCode": "CMN-101", "message": "bad perPage"}]}, "CMN-101"),
        (403, {"errorCode": "CMN-408", "message": "In order to call this API..."}, "CMN-408"),
        (400, {"schemas": ["x"], "status": "400", "scimType": "invalidFilter"}, "invalidFilter"),
        (409, "not json", None),
    ],
)
async def test_other_4xx_are_typed_permanent_errors(
    client: Callable[..., Any], status: int, body: Any, code: str | None
) -> None:
    rc, log = client(lambda request: _json(status, body))
    async with rc:
        with pytest.raises(ApiError) as caught:
            await rc.account()
    assert (caught.value.status, caught.value.error_code) == (status, code)
    assert not isinstance(caught.value, AuthError)
    assert len(log) == 2  # one login, one call: no retries
    _no_secrets(str(caught.value))


async def test_5xx_are_retried_then_succeed(client: Callable[..., Any]) -> None:
    answers = iter([_json(503, {}, {"Retry-After": "0"}), _json(500, {}), _json(200, {"id": 1})])
    rc, log = client(lambda request: next(answers))
    async with rc:
        assert (await rc.account()).id == "1"
    assert len(log) == 4


async def test_5xx_give_up_after_a_few_attempts(client: Callable[..., Any]) -> None:
    rc, log = client(lambda request: _json(502, {}), attempts=3)
    async with rc:
        with pytest.raises(ServerUnavailable) as caught:
            await rc.account()
    assert caught.value.status == 502
    assert len(log) == 1 + 3


async def test_a_long_retry_after_is_left_to_the_job_queue(client: Callable[..., Any]) -> None:
    rc, log = client(lambda request: _json(503, {}, {"Retry-After": "120"}))
    async with rc:
        with pytest.raises(ServerUnavailable) as caught:
            await rc.account()
    assert caught.value.retry_after == 120
    assert len(log) == 2


async def test_connection_errors_are_retried_then_transient(client: Callable[..., Any]) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    rc, log = client(broken, attempts=2)
    async with rc:
        with pytest.raises(NetworkError):
            await rc.account()
    assert len(log) == 1 + 2


async def test_429_without_retry_after_penalises_the_group_for_30_s(
    client: Callable[..., Any],
) -> None:
    headers = {"X-Rate-Limit-Group": "light", "X-Rate-Limit-Limit": "50"}
    headers |= {"X-Rate-Limit-Window": "60", "X-Rate-Limit-Remaining": "0"}
    rc, log = client(lambda request: _json(429, {"errorCode": "CMN-301"}, headers), max_wait=1)
    async with rc:
        with pytest.raises(RateLimited) as caught:
            await rc.get_extension("101")
        assert caught.value.group == "light"
        assert caught.value.retry_after == pytest.approx(30, abs=1)
        assert await rc.budget.available_at("light") > time.time() + 28
        assert await rc.budget.remaining("medium") == 40  # other groups go on
    assert len(log) == 2


async def test_401_refreshes_once_then_gives_up(client: Callable[..., Any]) -> None:
    rc, log = client(lambda request: _json(401, {"errors": [{"errorCode": "OAU-128"}]}))
    async with rc:
        with pytest.raises(AuthError) as caught:
            await rc.account()
    assert caught.value.error_code == "OAU-128"
    paths = [request.url.path for request in log]
    assert paths.count("/restapi/oauth/token") == 2
    assert paths.count("/restapi/v1.0/account/~") == 2


async def test_get_extension_models_ids_and_read_time(client: Callable[..., Any]) -> None:
    body = {
        "id": 62264425004,
        "extensionNumber": "101",
        "type": "User",
        "status": "Disabled",
        "contact": {"firstName": "Ada", "email": "ada@example.com", "emailAsLoginName": True},
        "permissions": {"internationalCalling": {"enabled": True}},
        "statusInfo": {"reason": "Voluntarily"},
        "somethingNew": {"x": 1},
    }
    rc, _ = client(lambda request: _json(200, body))
    before = datetime.now(UTC)
    async with rc:
        extension = await rc.get_extension("62264425004")
    assert isinstance(extension, Extension)
    assert extension.id == "62264425004"
    assert before <= extension.read_at <= datetime.now(UTC)
    assert extension.contact.first_name == "Ada"
    assert extension.contact.email_as_login_name is True
    assert extension.international_calling is True
    assert extension.status_info is not None
    assert extension.status_info.reason == "Voluntarily"
    assert extension.regional_settings is None


async def test_404_other_than_cmn_102_is_not_gone(client: Callable[..., Any]) -> None:
    rc, _ = client(lambda request: _json(404, {"errors": [{"errorCode": "CMN-100"}]}))
    async with rc:
        with pytest.raises(ApiError) as caught:
            await rc.get_extension("1")
    assert caught.value.error_code == "CMN-100"


async def test_cmn_102_is_gone(client: Callable[..., Any]) -> None:
    rc, _ = client(lambda request: _json(404, {"errors": [{"errorCode": "CMN-102"}]}))
    async with rc:
        gone = await rc.get_extension("1")
    assert isinstance(gone, Gone)
    assert (gone.id, gone.error_code) == ("1", "CMN-102")


async def test_next_page_never_leaves_our_server(client: Callable[..., Any]) -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "1":
            nxt = "https://elsewhere.example/restapi/v1.0/account/1/extension?page=2&perPage=1"
            return _json(200, {"records": [{"id": 1}], "navigation": {"nextPage": {"uri": nxt}}})
        return _json(200, {"records": [{"id": 2}], "navigation": {}})

    rc, log = client(pages)
    async with rc:
        ids = [r.id async for page in rc.list_extensions(per_page=1) for r in page.records]
    assert ids == ["1", "2"]
    assert {request.url.host for request in log} == {"rc.example.test"}
    assert log[1].url.params.get_list("type") == ["User"]


async def test_create_subscription_sends_the_webhook_delivery_mode(
    client: Callable[..., Any],
) -> None:
    sent: list[Any] = []

    def create(request: httpx.Request) -> httpx.Response:
        sent.append(orjson.loads(request.content))
        return _json(200, {"id": "s-1", "status": "Active", "eventFilters": [], "expiresIn": 60})

    rc, _ = client(create)
    async with rc:
        sub = await rc.create_subscription(
            event_filters=["/restapi/v1.0/account/~/extension"],
            address="https://hooks.example/webhook",
            verification_token="v" * 64,
            expires_in=60,
        )
    assert sub.id == "s-1"
    assert sent[0]["deliveryMode"] == {
        "transportType": "WebHook",
        "address": "https://hooks.example/webhook",
        "verificationToken": "v" * 64,
    }
    assert sent[0]["expiresIn"] == 60


async def test_no_secret_reaches_the_logs(
    client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    answers = iter(
        [
            _json(401, {"errors": [{"errorCode": "OAU-129"}]}),
            _json(503, {}),
            _json(429, {}, {"Retry-After": "0"}),
            _json(200, {"id": 1}),
        ]
    )
    rc, _ = client(lambda request: next(answers))
    caplog.set_level(logging.DEBUG)
    async with rc:
        assert (await rc.account()).id == "1"
    assert caplog.records
    for record in caplog.records:
        _no_secrets(repr(record.__dict__))


async def test_every_accounts_client_shares_one_tls_context(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    """Each account has its own client; loading the CA bundle once per account made a worker's
    start-up with hundreds of accounts CPU-bound for seconds."""
    clients = [
        RingCentral(make_settings(rc_server_url=f"https://rc{n}.example.test"), redis)
        for n in range(3)
    ]
    try:
        contexts = {id(client._session._http._transport._pool._ssl_context) for client in clients}  # type: ignore[attr-defined]
        assert len(contexts) == 1
    finally:
        for client in clients:
            await client.aclose()


async def test_a_workers_counting_transports_share_the_tls_context(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    """A worker hands each account's client a transport that counts its requests (and one to
    every listing): those built their own TLS context, a CA bundle load per account."""
    metrics = WorkerMetrics()
    clients = [
        RingCentral(make_settings(), redis, transport=metrics.transport(account=str(n)))
        for n in range(3)
    ]
    try:
        pools = [client._session._http._transport._inner._pool for client in clients]  # type: ignore[attr-defined]
        assert len({id(pool) for pool in pools}) == 3  # each account its own connections
        assert {id(pool._ssl_context) for pool in pools} == {id(tls_context())}
    finally:
        for client in clients:
            await client.aclose()
