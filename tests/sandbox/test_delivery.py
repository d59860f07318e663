"""Notifications: every user change reaches the matching Active subscriptions with the
Verification-Token header, in RingCentral's envelope, in both Extension List body shapes, plus
Extension Info and Company Directory events; faults drop, duplicate, delay and reorder them."""

from __future__ import annotations

import time
from typing import Any

import httpx

from sandbox.server import SandboxServer
from tests.fixtures.sandbox import WebhookSink, subscribe


def _list_filter(sb: SandboxServer) -> str:
    return f"/restapi/v1.0/account/{sb.account_id}/extension"


async def _subscribed(
    sb: SandboxServer, api: httpx.AsyncClient, sink: WebhookSink, filters: list[str] | None = None
) -> str:
    response = await subscribe(api, sb, sink.url, filters=filters)
    assert response.status_code == 200, response.text
    sub_id: str = response.json()["id"]
    return sub_id


async def test_create_update_delete_in_the_guide_shape(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    sub_id = await _subscribed(sandbox, api, webhook_sink)
    world = sandbox.world
    user_id = world.create_user(first_name="Ada")
    world.update_user(user_id, last_name="King")
    world.delete(user_id)
    await world.drain()
    assert len(webhook_sink.received) == 3
    first = webhook_sink.received[0]
    assert first.headers["verification-token"] == "verify-me"
    envelope = first.body
    assert set(envelope) == {"uuid", "event", "timestamp", "subscriptionId", "ownerId", "body"}
    assert envelope["event"] == _list_filter(sandbox)
    assert envelope["subscriptionId"] == sub_id
    assert envelope["timestamp"].endswith("Z")
    kinds = [body["body"]["extensions"][0]["eventType"] for body in webhook_sink.bodies()]
    assert sorted(kinds) == ["Create", "Delete", "Update"]
    assert all(
        body["body"]["extensions"][0]["extensionId"] == user_id for body in webhook_sink.bodies()
    )
    assert len({body["uuid"] for body in webhook_sink.bodies()}) == 3


async def test_spec_shape_is_flat(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    await _subscribed(sandbox, api, webhook_sink)
    sandbox.world.set_body_shape("spec")
    user_id = sandbox.world.create_user()
    await sandbox.world.drain()
    body = webhook_sink.received[0].body["body"]
    assert body == {
        "extensionId": user_id,
        "eventType": "Create",
        "ownerId": sandbox.world.owner_id,
    }


async def test_bulk_update_batches_extensions(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    ids = sandbox.world.seed(1200)
    await _subscribed(sandbox, api, webhook_sink)
    changed = sandbox.world.bulk_update(1200, department="Moved")
    await sandbox.world.drain()
    assert changed == ids
    assert all(u["department"] == "Moved" for u in sandbox.world.users())
    listed = [e["extensionId"] for b in webhook_sink.bodies() for e in b["body"]["extensions"]]
    assert sorted(listed) == sorted(ids)
    assert 1 < len(webhook_sink.received) < 10


async def test_seed_sends_nothing(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    await _subscribed(sandbox, api, webhook_sink)
    sandbox.world.seed(5)
    await sandbox.world.drain()
    assert webhook_sink.received == []


async def test_extension_info_events(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    watched, other = sandbox.world.seed(2)
    await _subscribed(
        sandbox, api, webhook_sink, filters=[f"/restapi/v1.0/account/~/extension/{watched}"]
    )
    sandbox.world.update_user(other, first_name="Nobody")
    sandbox.world.update_user(watched, international_calling=True)
    sandbox.world.delete(watched)
    await sandbox.world.drain()
    bodies = sorted(webhook_sink.bodies(), key=lambda b: b["body"]["eventType"])
    assert [b["event"] for b in bodies] == [f"{_list_filter(sandbox)}/{watched}"] * 2
    assert [b["body"]["eventType"] for b in bodies] == ["Delete", "Update"]
    assert bodies[1]["body"]["hints"] == ["Permissions"]


async def test_company_directory_events_carry_the_contact(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    await _subscribed(
        sandbox, api, webhook_sink, filters=["/restapi/v1.0/account/~/directory/entries"]
    )
    user_id = sandbox.world.create_user(first_name="Grace", last_name="Hopper", department="Navy")
    await sandbox.world.drain()
    envelope = webhook_sink.received[0].body
    assert envelope["event"] == f"/restapi/v1.0/account/{sandbox.account_id}/directory/entries"
    contact = envelope["body"]["contacts"][0]
    assert contact["id"] == user_id
    assert contact["eventType"] == "Create"
    assert (contact["firstName"], contact["lastName"], contact["department"]) == (
        "Grace",
        "Hopper",
        "Navy",
    )
    assert contact["status"] == "Enabled"
    assert contact["email"]
    assert contact["extensionNumber"]


async def test_drop_fault_loses_notifications(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    await _subscribed(sandbox, api, webhook_sink)
    sandbox.world.set_faults(drop=1.0)
    sandbox.world.create_user()
    await sandbox.world.drain()
    assert webhook_sink.received == []
    assert sandbox.world.deliverer is not None
    assert sandbox.world.deliverer.attempts[-1].outcome == "dropped"


async def test_duplicate_fault_sends_the_same_uuid_twice(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    await _subscribed(sandbox, api, webhook_sink)
    sandbox.world.set_faults(duplicate=1.0)
    sandbox.world.create_user()
    await sandbox.world.drain()
    uuids = [b["uuid"] for b in webhook_sink.bodies()]
    assert len(uuids) == 2
    assert uuids[0] == uuids[1]


async def test_delay_fault_holds_deliveries(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    await _subscribed(sandbox, api, webhook_sink)
    sandbox.world.set_faults(delay=0.3)
    started = time.monotonic()
    sandbox.world.create_user()
    await sandbox.world.drain()
    assert time.monotonic() - started >= 0.3
    assert len(webhook_sink.received) == 1


async def test_reorder_fault_shuffles_deliveries(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    await _subscribed(sandbox, api, webhook_sink)
    sandbox.world.set_body_shape("spec")
    ids = sandbox.world.seed(30)
    sandbox.world.set_faults(reorder=True, seed=7)
    sandbox.world.bulk_update(ids, job_title="Reordered")
    await sandbox.world.drain()
    got = [b["body"]["extensionId"] for b in webhook_sink.bodies()]
    assert sorted(got) == sorted(ids)
    assert got != ids


async def test_no_verification_token_no_header(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    body: dict[str, Any] = {
        "eventFilters": ["/restapi/v1.0/account/~/extension"],
        "deliveryMode": {"transportType": "WebHook", "address": webhook_sink.url},
    }
    assert (await api.post("/restapi/v1.0/subscription", json=body)).status_code == 200
    sandbox.world.create_user()
    await sandbox.world.drain()
    assert "verification-token" not in webhook_sink.received[0].headers
