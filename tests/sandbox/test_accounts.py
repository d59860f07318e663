"""`SandboxServer(accounts=N)`: one server, N accounts of one app, each with its own JWT, users,
tokens, rate limits and control API, reached over HTTP as ringsync reaches them."""

from __future__ import annotations

import httpx

from sandbox.delivery import DELIVERIES_AT_ONCE
from sandbox.oauth import JWT_GRANT
from sandbox.server import SandboxServer


async def _login(http: httpx.AsyncClient, sb: SandboxServer, jwt: str) -> str:
    response = await http.post(
        "/restapi/oauth/token",
        auth=(sb.client_id, sb.client_secret),
        data={"grant_type": JWT_GRANT, "assertion": jwt},
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


async def test_each_account_has_its_own_jwt_users_and_tokens() -> None:
    async with (
        SandboxServer(accounts=2, users=3) as sb,
        httpx.AsyncClient(base_url=sb.url) as http,
    ):
        listed = (await http.get("/sandbox/accounts")).json()
        assert [a["account_id"] for a in listed] == [w.account_id for w in sb.worlds]
        assert listed[0]["jwt"] == sb.jwt != listed[1]["jwt"]

        seen = []
        for account in listed:
            token = await _login(http, sb, account["jwt"])
            auth = {"Authorization": f"Bearer {token}"}
            me = (await http.get("/restapi/v1.0/account/~", headers=auth)).json()
            users = await http.get("/restapi/v1.0/account/~/extension", headers=auth)
            seen.append((str(me["id"]), {str(r["id"]) for r in users.json()["records"]}))
        (a_id, a_users), (b_id, b_users) = seen
        assert (a_id, b_id) == (sb.worlds[0].account_id, sb.worlds[1].account_id)
        assert len(a_users) == len(b_users) == 3
        assert not a_users & b_users


async def test_the_control_api_names_its_account() -> None:
    async with (
        SandboxServer(accounts=2) as sb,
        httpx.AsyncClient(base_url=sb.url) as http,
    ):
        second = sb.worlds[1].account_id
        created = await http.post(
            "/sandbox/users", json={"first_name": "Bo"}, headers={"X-Sandbox-Account": second}
        )
        assert created.status_code == 200
        assert [u["first_name"] for u in sb.account(second).users()] == ["Bo"]
        assert sb.world.users() == []
        by_query = await http.get("/sandbox/users", params={"account": second})
        assert [u["first_name"] for u in by_query.json()] == ["Bo"]


async def test_an_unknown_jwt_is_refused_as_usual() -> None:
    async with (
        SandboxServer(accounts=2) as sb,
        httpx.AsyncClient(base_url=sb.url) as http,
    ):
        refused = await http.post(
            "/restapi/oauth/token",
            auth=(sb.client_id, sb.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": "eyJ.eyJ.bm90LWEtand0"},
        )
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["errorCode"] == "OAU-213"


async def test_every_accounts_deliveries_share_one_bound_below_the_clients_pool() -> None:
    """Per-account bounds let hundreds of accounts queue thousands of requests inside the one
    HTTP client's pool, where each freed connection scans the whole queue: a server of 400
    accounts spent its time there instead of delivering."""
    async with SandboxServer(accounts=3) as sb:
        slots = {id(world.deliverer._slots) for world in sb.worlds if world.deliverer}
        assert len(slots) == 1
        assert DELIVERIES_AT_ONCE < 100  # httpx's default connection pool
