"""The receiver's counters reach `/metrics` of `ringsync api` through Redis, summed over
receivers and kept across a failed publication; the mirror's gauges beside them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import orjson
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError

from events.metrics import ReceiverMetrics
from tests.api.conftest import Served
from tests.api.mirror import API_TOKEN
from tests.events.test_app import TOKEN, notification

Runner = Callable[..., AbstractAsyncContextManager[str]]


async def scrape(served: Served) -> str:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers) as http:
        reply = await http.get("/metrics")
    assert reply.status_code == 200
    return reply.text


async def test_receiver_counts_are_served_by_the_api(served: Served, run_receiver: Runner) -> None:
    settings = served.settings.model_copy(update={"verification_token": SecretStr(TOKEN)})
    uid = "9f1c2a7e-metrics"
    # For the account this deployment serves: its token opens no other (events.routing).
    event = f"/restapi/v1.0/account/{served.account_id}/extension"
    for _ in range(2):  # two receivers (one after the other): their counts add up
        async with run_receiver(settings) as url, httpx.AsyncClient(base_url=url) as http:
            await http.post(
                "/webhook",
                content=orjson.dumps(notification(uid, event=event)),
                headers={"Verification-Token": TOKEN},
            )
            await http.post("/webhook", content=b"{}", headers={"Verification-Token": "no"})
    text = await scrape(served)
    assert 'ringsync_webhook_requests_total{outcome="unauthorized"} 2.0' in text
    assert 'ringsync_webhook_requests_total{outcome="queued"} 1.0' in text
    assert 'ringsync_webhook_requests_total{outcome="duplicate"} 1.0' in text
    assert "ringsync_enqueue_seconds_count 2.0" in text
    assert f'ringsync_users{{account_id="{served.account_id}",state="active"}}' in text


async def test_a_failed_publication_is_added_next_time(served: Served, redis: Redis) -> None:
    metrics = ReceiverMetrics()
    metrics.count("queued")
    gone = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with pytest.raises(RedisError):
        await metrics.publish(gone, served.settings.metrics_key)
    await gone.aclose()
    metrics.count("queued")
    await metrics.publish(redis, served.settings.metrics_key)
    await metrics.publish(redis, served.settings.metrics_key)  # nothing new: adds nothing
    assert 'ringsync_webhook_requests_total{outcome="queued"} 2.0' in await scrape(served)
