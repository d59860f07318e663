"""The receiver over real HTTP, against a real Redis (and a private one that the tests stop)."""

from __future__ import annotations

import asyncio
import pickle
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from events.queue import INGEST, JOB_KEY_PREFIX, RENEW
from events.refusals import Refused, refusals_key
from events.settings import Settings
from tests.fixtures.pipeline import eventually
from tests.fixtures.services import PrivateRedis, free_port

TOKEN = "a-verification-token-of-ours"
Runner = Callable[[Settings], AbstractAsyncContextManager[str]]


def notification(uid: str | None = None, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "uuid": uid or str(uuid.uuid4()),
        "event": "/restapi/v1.0/account/400386146004/extension",
        "timestamp": "2026-11-23T10:00:00.123+0000",
        "subscriptionId": "not-a-subscription-we-know",
        "ownerId": 400386146004,
        "body": {"extensions": [{"extensionId": 1001, "eventType": "Update"}]},
    }
    doc.update(overrides)
    return doc


async def queued(redis: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """The jobs on the queue, decoded as arq's worker would."""
    ids = await redis.zrange(settings.queue_name, 0, -1)
    jobs = []
    for job_id in ids:
        raw = await redis.get(JOB_KEY_PREFIX + job_id.decode())
        assert raw is not None
        jobs.append(pickle.loads(raw))  # noqa: S301 - our own test data
    return jobs


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(verification_token=TOKEN)


async def test_handshake_echoes_the_token(run_receiver: Runner, settings: Settings) -> None:
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/webhook", headers={"Validation-Token": "abc-123"})
    assert reply.status_code == 200
    assert reply.headers["validation-token"] == "abc-123"
    assert reply.headers["content-type"].startswith("application/json")
    size = len(reply.content) + sum(len(k) + len(v) + 4 for k, v in reply.headers.items()) + 17
    assert size <= 1024


async def test_handshake_works_with_redis_down(
    run_receiver: Runner, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/webhook", headers={"Validation-Token": "xyz"})
        ready = await http.get("/readyz")
        health = await http.get("/healthz")
    assert reply.status_code == 200
    assert reply.headers["validation-token"] == "xyz"
    assert ready.status_code == 503
    assert health.status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Verification-Token": TOKEN}, 200),
        ({"Validation-Token": TOKEN}, 200),  # the older docs' header name
        ({"Verification-Token": "wrong"}, 401),
        ({"Verification-Token": TOKEN[:-1]}, 401),
        ({}, 401),
    ],
)
async def test_token_is_checked(
    run_receiver: Runner,
    settings: Settings,
    redis: aioredis.Redis,
    headers: dict[str, str],
    status: int,
) -> None:
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/webhook", content=orjson.dumps(notification()), headers=headers)
    assert reply.status_code == status
    assert len(await queued(redis, settings)) == (1 if status == 200 else 0)


async def test_without_a_configured_token_everything_is_accepted(
    run_receiver: Runner,
    make_settings: Callable[..., Settings],
    redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings()
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/webhook", content=orjson.dumps(notification()))
    assert reply.status_code == 200
    assert "RINGSYNC_VERIFICATION_TOKEN is not set" in caplog.text
    assert len(await queued(redis, settings)) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "json"),
        (b"[]", "object"),
        (orjson.dumps({"event": "/restapi/v1.0/account/~/extension"}), "uuid"),
        (orjson.dumps(notification(timestamp="yesterday")), "timestamp"),
        (orjson.dumps(notification(uuid=True)), "uuid"),
        (orjson.dumps(notification(body=[1, 2])), "body"),
        (orjson.dumps(notification(body={"extensions": [{"eventType": "Update"}]})), "extension"),
    ],
)
async def test_malformed_notifications_get_400_with_a_reason(
    run_receiver: Runner, settings: Settings, redis: aioredis.Redis, body: bytes, reason: str
) -> None:
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/webhook", content=body, headers={"Verification-Token": TOKEN})
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid"
    assert reason in reply.json()["reason"].lower()
    assert await queued(redis, settings) == []


async def test_oversized_bodies_get_413(
    run_receiver: Runner, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    settings = make_settings(verification_token=TOKEN, max_body_bytes=1000)
    big = orjson.dumps(notification(padding="x" * 2000))

    async def chunked() -> Any:  # no Content-Length: the limit must hold while streaming
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    headers = {"Verification-Token": TOKEN}
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        declared = await http.post("/webhook", content=big, headers=headers)
        streamed = await http.post("/webhook", content=chunked(), headers=headers)
        fits = await http.post("/webhook", content=orjson.dumps(notification()), headers=headers)
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert fits.status_code == 200
    assert len(await queued(redis, settings)) == 1


async def test_a_body_streamed_in_pieces_is_queued_whole(
    run_receiver: Runner, settings: Settings, redis: aioredis.Redis
) -> None:
    sent = orjson.dumps(notification(padding="y" * 900))

    async def pieces() -> Any:  # chunked, no Content-Length: many `http.request` messages
        for start in range(0, len(sent), 64):
            yield sent[start : start + 64]

    headers = {"Verification-Token": TOKEN}
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.post("/webhook", content=pieces(), headers=headers)
    assert reply.status_code == 200, reply.text
    (job,) = await queued(redis, settings)
    assert job["a"][0] == sent


async def test_the_first_of_repeated_token_headers_is_the_one_checked(
    run_receiver: Runner, settings: Settings, redis: aioredis.Redis
) -> None:
    right_first = [("Verification-Token", TOKEN), ("Verification-Token", "wrong")]
    wrong_first = [("Verification-Token", "wrong"), ("Verification-Token", TOKEN)]
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        body = orjson.dumps(notification())
        accepted = await http.post("/webhook", content=body, headers=right_first)
        refused = await http.post(
            "/webhook", content=orjson.dumps(notification()), headers=wrong_first
        )
    assert (accepted.status_code, refused.status_code) == (200, 401)
    assert len(await queued(redis, settings)) == 1


async def test_a_redelivered_uuid_is_queued_once(
    run_receiver: Runner, settings: Settings, redis: aioredis.Redis
) -> None:
    body = orjson.dumps(notification("same-uuid-twice"))
    headers = {"Verification-Token": TOKEN}
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        replies = [await http.post("/webhook", content=body, headers=headers) for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 200]
    jobs = await queued(redis, settings)
    assert len(jobs) == 1
    assert jobs[0]["f"] == INGEST
    assert jobs[0]["a"][0] == body


async def test_the_queue_holds_exactly_what_was_acknowledged(
    run_receiver: Runner, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    # 200 requests at once: the longest Redis deadline allowed, so a stall of this loaded
    # machine is not taken for Redis being away (that case has tests of its own).
    settings = make_settings(verification_token=TOKEN, enqueue_timeout=1.0)
    uuids = [str(uuid.uuid4()) for _ in range(150)]
    bodies = [orjson.dumps(notification(u)) for u in uuids + uuids[:50]]  # 50 duplicates
    headers = {"Verification-Token": TOKEN}
    limits = httpx.Limits(max_connections=50)
    async with (
        run_receiver(settings) as url,
        httpx.AsyncClient(base_url=url, limits=limits) as http,
    ):
        replies = await asyncio.gather(
            *(http.post("/webhook", content=b, headers=headers) for b in bodies)
        )
    assert all(r.status_code == 200 for r in replies)
    jobs = await queued(redis, settings)
    assert sorted(orjson.loads(job["a"][0])["uuid"] for job in jobs) == sorted(uuids)


async def test_both_body_shapes_and_numeric_ids_are_accepted(
    run_receiver: Runner, settings: Settings, redis: aioredis.Redis
) -> None:
    flat = notification(body={"extensionId": 1002, "eventType": "Create", "ownerId": 7})
    info = notification(
        event="/restapi/v1.0/account/~/extension/1003",
        body={"extensionId": "1003", "eventType": "Update", "hints": ["ExtensionInfo"]},
    )
    unknown = notification(event="/restapi/v1.0/account/~/extension/1003/grant", body={"x": 1})
    headers = {"Verification-Token": TOKEN}
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        for doc in (notification(), flat, info, unknown):
            reply = await http.post("/webhook", content=orjson.dumps(doc), headers=headers)
            assert reply.status_code == 200, reply.text
    jobs = await queued(redis, settings)
    kinds = sorted(job["a"][2] for job in jobs)
    assert kinds == ["extension_info", "extension_list", "extension_list", "unknown"]


async def test_redis_down_gives_503_and_recovers_without_a_restart(
    run_receiver: Runner,
    make_settings: Callable[..., Settings],
    private_redis: PrivateRedis,
) -> None:
    settings = make_settings(verification_token=TOKEN, redis_url=private_redis.url)
    headers = {"Verification-Token": TOKEN}
    client = aioredis.Redis.from_url(private_redis.url)
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        first = await http.post("/webhook", content=orjson.dumps(notification()), headers=headers)
        private_redis.stop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        down = await http.post("/webhook", content=orjson.dumps(notification()), headers=headers)
        elapsed = loop.time() - started
        not_ready = await http.get("/readyz")
        private_redis.start()
        again = await http.post("/webhook", content=orjson.dumps(notification()), headers=headers)
        ready = await http.get("/readyz")
    assert first.status_code == 200
    assert down.status_code == 503
    assert elapsed < 1.5
    assert not_ready.status_code == 503
    assert again.status_code == 200
    assert ready.status_code == 200
    # What was acknowledged survived the restart (AOF); the refused one was never queued.
    jobs = await queued(client, settings)
    await client.aclose()
    assert len([job for job in jobs if job["f"] == INGEST]) == 2


@pytest.fixture
async def private_client(private_redis: PrivateRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(private_redis.url)
    yield client
    await client.aclose()


async def test_what_was_refused_is_reported_once_redis_is_back(
    run_receiver: Runner,
    make_settings: Callable[..., Settings],
    private_redis: PrivateRedis,
    private_client: aioredis.Redis,
) -> None:
    """RingCentral never resends a notification answered 503: once Redis answers again the
    receiver says when it refused and how many, and queues the check that repairs the gap."""
    settings = make_settings(verification_token=TOKEN, redis_url=private_redis.url)
    headers = {"Verification-Token": TOKEN}
    client = private_client
    key = refusals_key(settings)
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:

        async def post() -> int:
            doc = orjson.dumps(notification())
            return (await http.post("/webhook", content=doc, headers=headers)).status_code

        assert await post() == 200
        private_redis.stop()
        assert [await post(), await post()] == [503, 503]
        private_redis.start()

        async def reported() -> list[Refused]:
            found = await client.hvals(key)  # type: ignore[misc]
            return [Refused.model_validate_json(raw) for raw in found]

        [report] = await eventually(reported, within=5, what="the refusals to be reported")
        assert await post() == 200
    assert report.count == 2
    assert report.started_at <= report.ended_at
    checks = [job["a"] for job in await queued(client, settings) if job["f"] == RENEW]
    assert checks == [("refused",)]
    reports = await reported()
    assert [(r.started_at, r.count) for r in reports] == [(report.started_at, 2)]  # once


async def test_a_receiver_stopped_before_redis_is_back_says_what_it_forgets(
    run_receiver: Runner,
    make_settings: Callable[..., Settings],
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(verification_token=TOKEN, redis_url=private_redis.url)
    headers = {"Verification-Token": TOKEN}
    private_redis.stop()
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        doc = orjson.dumps(notification())
        assert (await http.post("/webhook", content=doc, headers=headers)).status_code == 503
    assert "1 refused notifications could not be reported" in caplog.text


async def test_a_stalled_redis_gives_503_within_the_enqueue_timeout(
    run_receiver: Runner,
    make_settings: Callable[..., Settings],
    private_redis: PrivateRedis,
) -> None:
    """Redis accepts the connection but answers nothing (paused): every request waiting on the
    write is refused at the deadline, and the receiver works again once Redis does."""
    settings = make_settings(verification_token=TOKEN, redis_url=private_redis.url)
    headers = {"Verification-Token": TOKEN}
    assert private_redis.process is not None
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:

        async def post() -> httpx.Response:
            return await http.post(
                "/webhook", content=orjson.dumps(notification()), headers=headers
            )

        assert (await post()).status_code == 200
        private_redis.process.send_signal(signal.SIGSTOP)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            stalled = await asyncio.gather(*(post() for _ in range(5)))
            elapsed = loop.time() - started
        finally:
            private_redis.process.send_signal(signal.SIGCONT)
        again = await post()
    assert [reply.status_code for reply in stalled] == [503] * 5
    assert elapsed < 4 * settings.enqueue_timeout + 1
    assert again.status_code == 200


async def test_the_public_port_serves_no_metrics(run_receiver: Runner, settings: Settings) -> None:
    # They are served by `ringsync api`, behind its token (tests/api/test_metrics.py).
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_no_secret_in_logs(
    run_receiver: Runner, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
        await http.post("/webhook", content=b"{}", headers={"Verification-Token": TOKEN})
        await http.post("/webhook", content=b"{}", headers={"Verification-Token": "nope"})
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(settings)
