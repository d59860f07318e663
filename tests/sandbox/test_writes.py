"""Writes: the status PUT (Medium) and the v2 bulk delete (Heavy, 1–50 records, per-item
results), the notifications they fire, the operator and owner extensions, and chosen failures."""

from __future__ import annotations

import httpx

from sandbox.server import SandboxServer
from tests.fixtures.pipeline import eventually
from tests.fixtures.sandbox import WebhookSink, subscribe

PUT = "/restapi/v1.0/account/~/extension/{}"


def delete_path(sb: SandboxServer) -> str:
    return f"/restapi/v2/accounts/{sb.account_id}/extensions"


async def test_put_status_suspends_with_a_reason_and_notifies(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    assert (await subscribe(api, sandbox, webhook_sink.url)).status_code == 200
    user = sandbox.world.create_user(first_name="Ada")
    await sandbox.world.drain()
    before = len(webhook_sink.received)
    body = {"status": "Disabled", "statusInfo": {"reason": "Involuntarily", "comment": "left"}}

    response = await api.put(PUT.format(user), json=body)

    assert response.status_code == 200, response.text
    assert response.headers["X-Rate-Limit-Group"] == "medium"
    assert response.json()["status"] == "Disabled"
    assert response.json()["statusInfo"] == {"reason": "Involuntarily", "comment": "left"}

    async def notified() -> bool:
        return len(webhook_sink.received) > before

    await eventually(notified, within=5, what="the update's notification")
    changed = webhook_sink.bodies()[-1]["body"]["extensions"][0]
    assert changed["extensionId"] == user
    assert changed["eventType"] == "Update"

    back = await api.put(PUT.format(user), json={"status": "Enabled"})
    assert back.json()["status"] == "Enabled"
    assert "statusInfo" not in back.json()


async def test_put_refuses_unknown_statuses_and_reasons(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    user = sandbox.world.create_user()
    bad = await api.put(PUT.format(user), json={"status": "Unassigned"})
    assert bad.status_code == 400
    assert bad.json()["errorCode"] == "CMN-101"
    reason = {"status": "Disabled", "statusInfo": {"reason": "Because"}}
    assert (await api.put(PUT.format(user), json=reason)).status_code == 400
    assert (await api.put(PUT.format("999"), json={"status": "Disabled"})).status_code == 404
    assert sandbox.world.user(user)["status"] == "Enabled"


async def test_bulk_delete_answers_per_item_and_keeps_the_rest(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    world = sandbox.world
    ok, failing = world.create_user(), world.create_user()
    world.fail_writes([failing], error_code="USR-999")
    body = {"records": [{"id": ok}, {"id": failing}, {"id": "424242"}]}

    response = await api.request("DELETE", delete_path(sandbox), json=body)

    assert response.status_code == 200, response.text
    assert response.headers["X-Rate-Limit-Group"] == "heavy"
    records = response.json()["records"]
    assert records[0] == {"id": ok, "bulkItemSuccessful": True}
    assert [r["bulkItemSuccessful"] for r in records] == [True, False, False]
    assert records[1]["bulkItemErrors"][0]["errorCode"] == "USR-999"
    assert records[2]["bulkItemErrors"][0]["errorCode"] == "CMN-102"
    assert world.find(ok) is None
    assert world.find(failing) is not None
    assert (await api.get(PUT.format(ok))).status_code == 404


async def test_bulk_delete_takes_1_to_50_records(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    ids = sandbox.world.seed(51)
    bodies: list[dict[str, object]] = [{"records": [{"id": i} for i in ids]}, {"records": []}, {}]
    for body in bodies:
        response = await api.request("DELETE", delete_path(sandbox), json=body)
        assert response.status_code == 400
    assert len(sandbox.world.ordered()) == 51


async def test_operator_and_owner_extensions(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    world = sandbox.world
    own = (await api.get(PUT.format("~"))).json()
    assert str(own["id"]) == world.owner_id
    operator = world.create_user()
    world.set_operator(operator)
    account = (await api.get("/restapi/v1.0/account/~")).json()
    assert str(account["operator"]["id"]) == operator
    world.add_owner(first_name="Owen")
    listed = (await api.get("/restapi/v1.0/account/~/extension")).json()["records"]
    assert world.owner_id in {str(r["id"]) for r in listed}
    assert (await api.get(PUT.format("~"))).json()["contact"]["firstName"] == "Owen"


async def test_write_failures_answer_the_chosen_error(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    user = sandbox.world.create_user()
    control = await api.post(
        f"{sandbox.url}/sandbox/write-failures",
        json={"ids": [user], "status": 403, "error_code": "CMN-408"},
    )
    assert control.status_code == 200
    response = await api.put(PUT.format(user), json={"status": "Disabled"})
    assert response.status_code == 403
    assert response.json()["errorCode"] == "CMN-408"
    assert sandbox.world.user(user)["status"] == "Enabled"
