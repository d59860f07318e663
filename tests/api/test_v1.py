"""`/v1` and `/metrics` over a seeded mirror: tokens, the same documents as the CLI, queued work,
and bad input answered with a reason (never a 500)."""

from __future__ import annotations

import httpx
import orjson
from redis.asyncio import Redis

from tests.api.conftest import Served
from tests.api.mirror import API_TOKEN, SCIM_TOKEN
from tests.fixtures.commands import ringsync

ROUTES = [("GET", "/v1/accounts"), ("GET", "/v1/status"), ("GET", "/v1/users"),
          ("GET", "/v1/openapi.json"), ("GET", "/metrics"), ("POST", "/v1/replay"),
          ("POST", "/v1/resync"), ("GET", "/v1/actions"), ("POST", "/v1/actions"),
          ("POST", "/v1/actions/1/approve"), ("POST", "/v1/actions/1/reject")]  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_none_wrong_other_and_right(served: Served) -> None:
    refused = [{}, bearer(API_TOKEN[::-1]), bearer(SCIM_TOKEN), {"Authorization": API_TOKEN}]
    async with httpx.AsyncClient(base_url=served.url) as http:
        assert (await http.get("/healthz")).status_code == 200
        for headers in refused:
            for method, path in ROUTES:
                reply = await http.request(method, path, headers=headers, json={})
                assert reply.status_code == 401, (method, path)
                assert reply.headers["www-authenticate"] == "Bearer"
                assert reply.json()["error"] == "unauthorized"
        http.headers.update(bearer(API_TOKEN))
        for method, path in ROUTES[:5]:
            assert (await http.request(method, path)).status_code == 200, path


async def test_users_are_the_objects_the_cli_prints(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(API_TOKEN)) as http:
        every = (await http.get("/v1/users", params={"account_id": served.account_id})).json()
        suspended = await http.get(
            "/v1/users", params={"account_id": served.account_id, "state": "suspended"}
        )
        bad = await http.get("/v1/users", params={"state": "gone"})
        accounts = (await http.get("/v1/accounts")).json()
    env = served.settings.process_env()
    ran = await ringsync(env, "users", "--json")
    printed = [orjson.loads(line) for line in ran.out.splitlines()]
    assert every == [line for line in printed if line["account_id"] == served.account_id]
    assert len(every) == 60
    assert {u["state"] for u in suspended.json()} == {"suspended"}
    assert len(suspended.json()) == sum(p.state == "suspended" for p in served.people)
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid")
    assert {"account_id": served.account_id, "users": 60} in accounts


async def test_status_is_the_document_the_cli_prints(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(API_TOKEN)) as http:
        served_report = (await http.get("/v1/status")).json()
    ran = await ringsync(served.settings.process_env(), "status", "--json")
    printed = orjson.loads(ran.out)
    assert set(served_report) == set(printed)
    assert {"queue", "subscription", "last_event", "dead_letters", "approvals",
            "rate_limits", "attention"} <= set(served_report)  # fmt: skip
    assert served_report["attention"] == printed["attention"]


async def test_resync_and_replay_are_queued(served: Served, redis: Redis) -> None:
    queue = served.settings.queue_name
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(API_TOKEN)) as http:
        first = await http.post("/v1/resync")
        again = await http.post("/v1/resync", json={})
        replayed = await http.post("/v1/replay", json={"extension": "1000"})
        dry = await http.post("/v1/replay", json={"dead_letters": True, "dry_run": True})
    assert (first.status_code, first.json()["queued"]) == (202, True)
    assert (again.status_code, again.json()["queued"]) == (202, False)
    assert await redis.zscore(queue, first.json()["job_id"]) is not None
    assert (replayed.status_code, replayed.json()["users"]) == (202, 1)
    assert (dry.status_code, dry.json()["dead_letters"]) == (202, 0)


async def test_bad_input_is_refused_with_a_reason(served: Served) -> None:
    bad = [
        ("/v1/resync", b'{"approve": "no such plan"}'),
        ("/v1/resync", b'{"approve": 12'),
        ("/v1/resync", b'{"whatever": 1}'),
        ("/v1/replay", b"{}"),
        ("/v1/replay", b'{"since": "2026-01-01T00:00:00"}'),
        ("/v1/replay", b'{"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}'),
        ("/v1/replay", b'{"extension": "1000; drop"}'),
        ("/v1/replay", b"[]"),
    ]
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(API_TOKEN)) as http:
        replies = [await http.post(path, content=body) for path, body in bad]
        unknown_plan = await http.post("/v1/resync", json={"approve": "a1b2c3d4e5f6"})
        missing = await http.get("/v1/nothing")
    for reply in replies:
        assert reply.status_code == 422, reply.text
        assert reply.json()["reason"]
    assert unknown_plan.status_code == 409
    assert "no resync plan a1b2c3d4e5f6" in unknown_plan.json()["reason"]
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


async def test_the_openapi_document_names_every_route(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(API_TOKEN)) as http:
        document = (await http.get("/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/accounts", "/status", "/users", "/resync", "/replay",
        "/actions", "/actions/{action_id}/approve", "/actions/{action_id}/reject",
    }  # fmt: skip
    assert document["paths"]["/actions"]["post"]["responses"].keys() >= {"201", "404", "422"}
