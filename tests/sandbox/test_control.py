"""The control API over HTTP (for other processes) and the faults that hit API calls."""

from __future__ import annotations

import time

import httpx

from sandbox.server import SandboxServer
from tests.fixtures.sandbox import WebhookSink, subscribe


async def test_users_over_http(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient(base_url=f"{sandbox.url}/sandbox") as control:
        seeded = (await control.post("/seed", json={"n": 3})).json()["ids"]
        created = (await control.post("/users", json={"first_name": "Ken"})).json()
        assert created["first_name"] == "Ken"
        user_id = created["id"]
        patched = await control.patch(f"/users/{user_id}", json={"department": "Unix"})
        assert patched.json()["department"] == "Unix"
        for action, status in [
            ("disable", "Disabled"),
            ("freeze", "Frozen"),
            ("enable", "Enabled"),
        ]:
            response = await control.post(f"/users/{user_id}/{action}")
            assert response.json()["status"] == status
        bulk = await control.post("/users/bulk", json={"count": 2, "fields": {"job_title": "X"}})
        assert bulk.json()["ids"] == seeded[:2]
        assert (await control.post(f"/users/{user_id}/unassign")).json()["status"] == "Unassigned"
        assert (await control.delete(f"/users/{seeded[2]}")).status_code == 200
        assert (await control.get(f"/users/{seeded[2]}")).status_code == 404
        assert (await control.patch(f"/users/{user_id}", json={"nope": 1})).status_code == 400
        users = (await control.get("/users")).json()
        assert [u["id"] for u in users] == [*seeded[:2], user_id]
        assert users == sandbox.world.users()
        info = (await control.get("/info")).json()
        assert info["account_id"] == sandbox.account_id
        assert sandbox.client_secret not in str(info)


async def test_faults_clock_and_logs_over_http(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    sub_id = (await subscribe(api, sandbox, webhook_sink.url)).json()["id"]
    async with httpx.AsyncClient(base_url=f"{sandbox.url}/sandbox") as control:
        await control.post("/body-shape", json={"shape": "spec"})
        await control.post("/users", json={})
        await control.post("/drain")
        assert "extensionId" in webhook_sink.received[0].body["body"]
        deliveries = (await control.get("/deliveries")).json()
        assert deliveries[0]["outcome"] == "delivered"
        await control.post(f"/subscriptions/{sub_id}/blacklist")
        assert sandbox.world.subscriptions[sub_id].status == "Blacklisted"
        faults = await control.post("/faults", json={"error_rate": 1.0, "seed": 1})
        assert faults.json()["error_rate"] == 1.0
        assert (await api.get("/restapi/v1.0/account/~")).status_code == 500
        await control.post("/faults", json={})
        await control.post("/clock/advance", json={"seconds": 3601})
        assert (await api.get("/restapi/v1.0/account/~")).status_code == 401
        calls = (await control.get("/calls")).json()
        assert [c["status"] for c in calls[-2:]] == [500, 401]
        counters = (await control.get("/counters")).json()
        assert counters["requests"]["light"] >= 2
        assert (await control.post("/faults", json={"drop": 2})).status_code == 400


async def test_error_rate_gives_5xx_in_the_error_shape(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    sandbox.world.set_faults(error_rate=1.0)
    response = await api.get("/restapi/v1.0/account/~/extension")
    assert response.status_code == 500
    assert response.json()["errors"][0]["errorCode"] == "CMN-203"
    assert response.headers["X-Rate-Limit-Group"] == "medium"


async def test_latency_fault_slows_api_calls(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    sandbox.world.set_faults(latency=0.2)
    started = time.monotonic()
    assert (await api.get("/restapi/v1.0/account/~")).status_code == 200
    assert time.monotonic() - started >= 0.2


async def test_refuse_answers_chosen_calls_with_an_error(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=f"{sandbox.url}/sandbox") as control:
        shown = await control.post("/faults", json={"refuse": {"GET /restapi/v1.0/account/*": 403}})
        assert shown.json()["refuse"] == {"GET /restapi/v1.0/account/*": 403}
        refused = await api.get("/restapi/v1.0/account/~")
        assert (refused.status_code, refused.json()["errorCode"]) == (403, "CMN-101")
        assert (await api.get("/restapi/v1.0/subscription")).status_code == 200
        bad = await control.post("/faults", json={"refuse": {"/no/method": 500}})
        assert bad.status_code == 400
