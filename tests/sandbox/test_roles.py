"""Role assignments: the account's listing (Medium, paged, only holders listed), one extension's
(Light, 404 CMN-102 once gone), and the control calls: assigning roles notifies nobody, flipping
admin sends an Extension Info event hinting `Permissions`."""

from __future__ import annotations

import httpx

from sandbox.server import SandboxServer
from tests.fixtures.sandbox import WebhookSink, subscribe


async def test_the_account_listing_pages_through_role_holders_only(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    ids = sandbox.world.seed(25)
    sandbox.world.assign_roles(ids[3], [])
    listed: dict[str, list[str]] = {}
    url: str | None = "/restapi/v1.0/account/~/assigned-role?perPage=10"
    while url:
        response = await api.get(url)
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit-Group"] == "medium"
        page = response.json()
        listed |= {r["extensionId"]: [role["id"] for role in r["roles"]] for r in page["records"]}
        url = page["navigation"].get("nextPage", {}).get("uri")
    assert list(listed) == [i for i in ids if i != ids[3]]
    assert set(map(tuple, listed.values())) == {("2",)}
    assert page["paging"]["totalElements"] == 24
    assert page["paging"]["page"] == 3


async def test_one_extensions_roles_are_light_and_gone_with_it(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    user = sandbox.world.create_user()
    sandbox.world.assign_roles(user, ["4", "1", "4"])
    response = await api.get(f"/restapi/v1.0/account/~/extension/{user}/assigned-role")
    assert response.headers["X-Rate-Limit-Group"] == "light"
    roles = [(r["id"], r["displayName"]) for r in response.json()["records"]]
    assert roles == [("4", "Users Admin"), ("1", "Super Admin")]
    sandbox.world.delete(user)
    response = await api.get(f"/restapi/v1.0/account/~/extension/{user}/assigned-role")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "CMN-102"


async def test_assigning_roles_notifies_nobody_and_an_admin_flip_hints_permissions(
    sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    user = sandbox.world.seed(1)[0]
    filters = [f"/restapi/v1.0/account/~/extension/{user}"]
    assert (await subscribe(api, sandbox, webhook_sink.url, filters=filters)).status_code == 200
    async with httpx.AsyncClient(base_url=sandbox.url) as control:
        assigned = await control.post(f"/sandbox/users/{user}/roles", json={"roles": ["3"]})
        assert assigned.json()["roles"] == ["3"]
        await sandbox.world.drain()
        assert webhook_sink.bodies() == []
        refused = await control.post(f"/sandbox/users/{user}/roles", json={"roles": ["99"]})
        assert refused.status_code == 400
        flipped = await control.post(f"/sandbox/users/{user}/admin", json={"admin": True})
        assert flipped.json()["admin"] is True
    await sandbox.world.drain()
    [body] = webhook_sink.bodies()
    assert body["body"]["hints"] == ["Permissions"]
    read = await api.get(f"/restapi/v1.0/account/~/extension/{user}")
    assert read.json()["permissions"]["admin"] == {"enabled": True}
