"""SCIM user reads: `Resources`, filter on userName/email, startIndex/count, SCIM errors."""

from __future__ import annotations

import httpx

from sandbox.server import SandboxServer


async def test_users_list_pages(sandbox: SandboxServer, api: httpx.AsyncClient) -> None:
    ids = sandbox.world.seed(5)
    response = await api.get("/scim/v2/Users?startIndex=2&count=2")
    assert response.status_code == 200
    assert response.headers["X-Rate-Limit-Group"] == "light"
    body = response.json()
    assert body["totalResults"] == 5
    assert body["startIndex"] == 2
    assert body["itemsPerPage"] == 2
    assert [u["id"] for u in body["Resources"]] == ids[1:3]


async def test_filter_on_user_name_and_email(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    sandbox.world.seed(3)
    wanted = sandbox.world.create_user(email="Find.Me@example.com", job_title="Lead")
    for expression in ('userName eq "find.me@example.com"', 'email eq "Find.Me@example.com"'):
        response = await api.get("/scim/v2/Users", params={"filter": expression})
        resources = response.json()["Resources"]
        assert [u["id"] for u in resources] == [wanted]
    user = resources[0]
    assert user["userName"] == "Find.Me@example.com"
    assert user["emails"] == [{"type": "work", "value": "Find.Me@example.com"}]
    assert user["active"] is True
    assert user["title"] == "Lead"


async def test_bad_filter_is_a_scim_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/scim/v2/Users", params={"filter": "title co x"})
    assert response.status_code == 400
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "400"
    assert body["scimType"] == "invalidFilter"


async def test_user_read_and_scim_404(sandbox: SandboxServer, api: httpx.AsyncClient) -> None:
    user_id = sandbox.world.create_user(first_name="Radia", last_name="Perlman")
    sandbox.world.disable(user_id)
    body = (await api.get(f"/scim/v2/Users/{user_id}")).json()
    assert body["name"] == {"givenName": "Radia", "familyName": "Perlman"}
    assert body["active"] is False
    sandbox.world.unassign(user_id)
    missing = await api.get(f"/scim/v2/Users/{user_id}")
    assert missing.status_code == 404
    assert missing.json()["status"] == "404"
    assert missing.json()["detail"]


async def test_scim_needs_a_token(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{sandbox.url}/scim/v2/Users")
    assert response.status_code == 401
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
