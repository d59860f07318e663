"""Extension and account reads: filters, paging with navigation, numeric ids, the fields ringsync
mirrors, statusInfo for Disabled, 404 CMN-102 after a hard delete, Unassigned after unassign."""

from __future__ import annotations

import asyncio

import httpx

from sandbox.server import SandboxServer


async def test_account_has_a_numeric_id(sandbox: SandboxServer, api: httpx.AsyncClient) -> None:
    response = await api.get("/restapi/v1.0/account/~")
    assert response.status_code == 200
    assert response.json()["id"] == int(sandbox.account_id)
    assert response.headers["X-Rate-Limit-Group"] == "light"


async def test_list_pages_follow_navigation(sandbox: SandboxServer, api: httpx.AsyncClient) -> None:
    ids = sandbox.world.seed(25)
    seen: list[str] = []
    url: str | None = "/restapi/v1.0/account/~/extension?type=User&perPage=10"
    while url:
        response = await api.get(url)
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit-Group"] == "medium"
        page = response.json()
        seen += [str(record["id"]) for record in page["records"]]
        assert all(isinstance(record["id"], int) for record in page["records"])
        url = page["navigation"].get("nextPage", {}).get("uri")
    assert seen == ids
    assert page["paging"] == {
        "page": 3,
        "totalPages": 3,
        "perPage": 10,
        "totalElements": 25,
        "pageStart": 20,
        "pageEnd": 24,
    }


async def test_per_page_is_at_most_1000(api: httpx.AsyncClient) -> None:
    response = await api.get("/restapi/v1.0/account/~/extension?perPage=1001")
    assert response.status_code == 400
    assert response.json()["errors"][0]["errorCode"] == "CMN-101"


async def test_list_filters_by_type_and_status(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    world = sandbox.world
    enabled = world.create_user(first_name="En", last_name="Abled")
    disabled = world.create_user(first_name="Dis", last_name="Abled")
    world.disable(disabled)
    room = world.create_user(first_name="Room", last_name="One", type="Room")
    response = await api.get("/restapi/v1.0/account/~/extension?type=User&status=Disabled")
    assert [str(r["id"]) for r in response.json()["records"]] == [disabled]
    response = await api.get("/restapi/v1.0/account/~/extension?type=User")
    assert {str(r["id"]) for r in response.json()["records"]} == {enabled, disabled}
    response = await api.get("/restapi/v1.0/account/~/extension?type=Room&type=User")
    assert {str(r["id"]) for r in response.json()["records"]} == {enabled, disabled, room}


async def test_read_carries_the_mirrored_fields(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    world = sandbox.world
    user_id = world.create_user(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        department="Engines",
        extension_number="1815",
    )
    world.update_user(user_id, job_title="Analyst", international_calling=True)
    response = await api.get(f"/restapi/v1.0/account/{sandbox.account_id}/extension/{user_id}")
    assert response.status_code == 200
    assert response.headers["X-Rate-Limit-Group"] == "light"
    body = response.json()
    assert body["id"] == int(user_id)
    assert body["extensionNumber"] == "1815"
    assert body["name"] == "Ada Lovelace"
    assert body["status"] == "Enabled"
    assert body["type"] == "User"
    assert body["contact"] == {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "emailAsLoginName": True,
        "department": "Engines",
        "jobTitle": "Analyst",
    }
    assert body["permissions"]["internationalCalling"] == {"enabled": True}
    assert "regionalSettings" in body
    assert "statusInfo" not in body


async def test_list_records_carry_fewer_fields_than_a_read(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    sandbox.world.seed(1)
    record = (await api.get("/restapi/v1.0/account/~/extension")).json()["records"][0]
    assert "regionalSettings" not in record
    assert record["contact"]["email"]


async def test_disabled_read_has_status_info(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    user_id = sandbox.world.create_user()
    sandbox.world.disable(user_id, reason="Involuntarily")
    body = (await api.get(f"/restapi/v1.0/account/~/extension/{user_id}")).json()
    assert body["status"] == "Disabled"
    assert body["statusInfo"] == {"reason": "Involuntarily"}


async def test_hard_delete_is_404_cmn_102(sandbox: SandboxServer, api: httpx.AsyncClient) -> None:
    user_id = sandbox.world.create_user()
    sandbox.world.delete(user_id)
    response = await api.get(f"/restapi/v1.0/account/~/extension/{user_id}")
    assert response.status_code == 404
    body = response.json()
    assert body["errorCode"] == "CMN-102"
    assert body["errors"][0]["errorCode"] == "CMN-102"
    assert body["errors"][0]["message"]


async def test_unassign_leaves_an_unassigned_extension(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    user_id = sandbox.world.create_user()
    sandbox.world.unassign(user_id)
    body = (await api.get(f"/restapi/v1.0/account/~/extension/{user_id}")).json()
    assert body["status"] == "Unassigned"
    assert "extensionNumber" not in body
    listed = await api.get("/restapi/v1.0/account/~/extension?status=Unassigned")
    assert [str(r["id"]) for r in listed.json()["records"]] == [user_id]


async def test_freeze_and_enable_change_status(sandbox: SandboxServer) -> None:
    world = sandbox.world
    user_id = world.create_user(status="NotActivated")
    assert world.user(user_id)["status"] == "NotActivated"
    assert world.freeze(user_id)["status"] == "Frozen"
    assert world.enable(user_id)["status"] == "Enabled"


async def test_unknown_account_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/restapi/v1.0/account/12345/extension")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "CMN-102"


async def test_before_reply_holds_a_read_with_its_state_already_taken(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    user_id = sandbox.world.create_user(last_name="Before")
    reading, release = asyncio.Event(), asyncio.Event()

    async def hold(path: str) -> None:
        if path.endswith(f"/extension/{user_id}"):
            reading.set()
            await release.wait()

    sandbox.world.before_reply = hold
    read = asyncio.create_task(api.get(f"/restapi/v1.0/account/~/extension/{user_id}"))
    await asyncio.wait_for(reading.wait(), 5)
    sandbox.world.update_user(user_id, last_name="After")
    release.set()
    assert (await read).json()["contact"]["lastName"] == "Before"


async def test_a_deletion_after_a_list_page_shifts_the_rest_of_the_listing(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    ids = sandbox.world.seed(6)
    scheduled = await api.post(f"/sandbox/users/{ids[0]}/delete-after-page", json={"page": 1})
    assert scheduled.status_code == 200
    assert scheduled.json() == {"extension_id": ids[0], "after_page": 1}
    seen: list[str] = []
    url: str | None = "/restapi/v1.0/account/~/extension?perPage=3"
    while url:
        page = (await api.get(url)).json()
        seen += [str(record["id"]) for record in page["records"]]
        url = page["navigation"].get("nextPage", {}).get("uri")
    # ids[0] went right after page 1: ids[3] moved up onto page 1, already read, and was missed.
    assert seen == [*ids[:3], *ids[4:]]
    gone = await api.get(f"/restapi/v1.0/account/~/extension/{ids[0]}")
    assert gone.json()["errorCode"] == "CMN-102"
    again = (await api.get("/restapi/v1.0/account/~/extension?perPage=3")).json()
    assert again["paging"]["totalElements"] == 5  # done once, not after every first page


async def test_delete_after_page_refuses_what_it_cannot_do(
    sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    (user_id,) = sandbox.world.seed(1)
    for body in ({}, {"page": 0}, {"page": "1"}):
        response = await api.post(f"/sandbox/users/{user_id}/delete-after-page", json=body)
        assert response.status_code == 400, body
        assert "page" in response.json()["error"]
    unknown = await api.post("/sandbox/users/999/delete-after-page", json={"page": 1})
    assert unknown.status_code == 404
