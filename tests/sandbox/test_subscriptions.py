"""Subscriptions: the Validation-Token handshake (and SUB-525 when it goes wrong), CRUD, renew,
expiry on the advanceable clock, the write-only verification token, blacklisting."""

from __future__ import annotations

import httpx
import pytest

from sandbox import delivery
from sandbox.server import SandboxServer
from tests.fixtures.sandbox import WebhookSink, sandbox_login, subscribe


async def test_create_performs_the_handshake(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    response = await subscribe(api, sandbox, webhook_sink.url, expires_in=1_209_600)
    assert response.status_code == 200
    assert response.headers["X-Rate-Limit-Group"] == "medium"
    body = response.json()
    assert body["status"] == "Active"
    assert 1_209_599 <= body["expiresIn"] <= 1_209_600
    assert body["deliveryMode"] == {
        "transportType": "WebHook",
        "address": webhook_sink.url,
        "encryption": False,
    }
    assert "verify-me" not in response.text
    # `~` comes back expanded to the numeric account id.
    assert body["eventFilters"] == [f"/restapi/v1.0/account/{sandbox.account_id}/extension"]


@pytest.mark.parametrize("behaviour", ["status-500", "no-echo", "big"])
async def test_handshake_answered_wrong_is_sub_525(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink, behaviour: str
) -> None:
    webhook_sink.handshake = behaviour
    response = await subscribe(api, sandbox, webhook_sink.url)
    assert response.status_code == 400
    assert response.json()["errors"][0]["errorCode"] == "SUB-525"
    assert sandbox.world.subscriptions == {}


async def test_handshake_too_slow_is_sub_525(
    sandbox: SandboxServer,
    api: httpx.AsyncClient,
    webhook_sink: WebhookSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "HANDSHAKE_TIMEOUT", 0.2)
    webhook_sink.handshake, webhook_sink.slow_seconds = "slow", 0.5
    response = await subscribe(api, sandbox, webhook_sink.url)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "SUB-525"


async def test_unreachable_address_is_sub_525(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    response = await subscribe(api, sandbox, "http://127.0.0.1:9/hook")
    assert response.json()["errorCode"] == "SUB-525"


async def test_missing_filters_is_cmn_100(sandbox: SandboxServer, api: httpx.AsyncClient) -> None:
    response = await api.post("/restapi/v1.0/subscription", json={"deliveryMode": {}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["errorCode"] == "CMN-100"


async def test_list_get_update_renew_delete(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    created = (await subscribe(api, sandbox, webhook_sink.url, expires_in=3600)).json()
    sub_url = f"/restapi/v1.0/subscription/{created['id']}"

    listed = await api.get("/restapi/v1.0/subscription")
    assert [s["id"] for s in listed.json()["records"]] == [created["id"]]
    assert listed.headers["X-Rate-Limit-Group"] == "light"

    new_filters = [
        "/restapi/v1.0/account/~/extension",
        "/restapi/v1.0/account/~/directory/entries",
    ]
    updated = await api.put(
        sub_url,
        json={
            "eventFilters": new_filters,
            "expiresIn": 3000,
            "deliveryMode": {"transportType": "WebHook", "address": "http://elsewhere/"},
        },
    )
    assert updated.status_code == 200
    assert 2999 <= updated.json()["expiresIn"] <= 3000
    assert updated.json()["deliveryMode"]["address"] == webhook_sink.url
    assert len(updated.json()["eventFilters"]) == 2

    sandbox.world.advance_clock(2900)  # the access token (3600 s) is still live
    assert (await api.get(sub_url)).json()["expiresIn"] <= 100
    renewed = await api.post(f"{sub_url}/renew")
    assert renewed.status_code == 200
    assert renewed.json()["expiresIn"] >= 2999

    deleted = await api.delete(sub_url)
    assert deleted.status_code == 204
    gone = await api.get(sub_url)
    assert gone.status_code == 404
    assert gone.json()["errorCode"] == "CMN-102"


async def test_subscription_expires_on_the_sandbox_clock(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    created = (await subscribe(api, sandbox, webhook_sink.url, expires_in=600)).json()
    sandbox.world.advance_clock(601)
    assert (await api.get(f"/restapi/v1.0/subscription/{created['id']}")).status_code == 404
    sandbox.world.create_user()
    await sandbox.world.drain()
    assert webhook_sink.received == []


async def test_default_expiry_is_about_a_week(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    created = (await subscribe(api, sandbox, webhook_sink.url)).json()
    assert 604_700 <= created["expiresIn"] <= 604_800


async def test_blacklist_on_command(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    created = (await subscribe(api, sandbox, webhook_sink.url)).json()
    sandbox.world.blacklist(created["id"])
    body = (await api.get(f"/restapi/v1.0/subscription/{created['id']}")).json()
    assert body["status"] == "Blacklisted"
    assert body["blacklistedData"]["reason"]
    sandbox.world.create_user()
    await sandbox.world.drain()
    assert webhook_sink.received == []


async def test_blacklisted_after_failed_deliveries(webhook_sink: WebhookSink) -> None:
    async with SandboxServer(blacklist_after=3) as sb, httpx.AsyncClient() as client:
        client.headers["Authorization"] = f"Bearer {await sandbox_login(client, sb)}"
        sub_id = (await subscribe(client, sb, webhook_sink.url)).json()["id"]
        webhook_sink.status = 500
        for _ in range(2):
            sb.world.create_user()
            await sb.world.drain()
        assert sb.world.subscriptions[sub_id].status == "Active"
        sb.world.create_user()
        await sb.world.drain()
        body = (await client.get(f"{sb.url}/restapi/v1.0/subscription/{sub_id}")).json()
        assert body["status"] == "Blacklisted"
        assert "blacklistedAt" in body["blacklistedData"]
        webhook_sink.status = 200
        sb.world.create_user()
        await sb.world.drain()
        assert len(webhook_sink.received) == 3


async def test_renewal_reminder_before_expiry(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    reminder = "/restapi/v1.0/subscription/~?threshold=3600&interval=600"
    created = await subscribe(api, sandbox, webhook_sink.url, filters=[reminder], expires_in=86_400)
    sub_id = created.json()["id"]
    sandbox.world.advance_clock(86_400 - 3700)
    await sandbox.world.drain()
    assert webhook_sink.received == []
    sandbox.world.advance_clock(200)
    await sandbox.world.drain()
    assert len(webhook_sink.received) == 1
    event = webhook_sink.received[0].body
    assert event["event"] == reminder
    assert event["subscriptionId"] == sub_id
    assert event["body"]["id"] == sub_id
    assert webhook_sink.received[0].headers["verification-token"] == "verify-me"
