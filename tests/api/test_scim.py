"""The SCIM service provider over a seeded mirror: tokens, paging, ETags, what `active` means,
attribute selection, accounts, errors, and a real SCIM client and conformance checker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import httpx2
from scim2_client.engines.httpx2 import AsyncSCIMClient, SyncSCIMClient
from scim2_models import (
    EnterpriseUser,
    ListResponse,
    ResourceType,
    ScimProvider,
    SearchRequest,
    User,
)
from scim2_tester import check_server
from scim2_tester.utils import Status

from api.scim.documents import roles_of
from api.scim.schemas import RINGSYNC_USER, RingsyncUser
from tests.api.conftest import Served
from tests.api.mirror import API_TOKEN, SCIM_TOKEN, api_settings, running_api
from workers.activity.store import ActivityStore, Cursor
from workers.decide import Observation
from workers.store.identity import Store

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_none_wrong_other_and_right(served: Served) -> None:
    cases = {
        "none": {},
        "wrong": bearer(SCIM_TOKEN[:-1] + ("x" if SCIM_TOKEN[-1] != "x" else "y")),
        "api token": bearer(API_TOKEN),
        "not bearer": {"Authorization": f"Basic {SCIM_TOKEN}"},
    }
    paths = ["/Users", "/Users/1000", "/Groups", "/ServiceProviderConfig", "/Schemas",
             "/ResourceTypes", f"/accounts/{served.account_id}/Users", "/nowhere"]  # fmt: skip
    async with httpx.AsyncClient(base_url=f"{served.url}/scim/v2") as http:
        for headers in cases.values():
            for path in paths:
                reply = await http.get(path, headers=headers)
                assert reply.status_code == 401, path
                assert reply.headers["www-authenticate"] == "Bearer"
                assert reply.json()["schemas"] == [ERROR]
                assert reply.json()["status"] == "401"
        for path in paths[:-1]:
            assert (await http.get(path, headers=bearer(SCIM_TOKEN))).status_code == 200, path
        missing = await http.get("/nowhere", headers=bearer(SCIM_TOKEN))
    assert (missing.status_code, missing.json()["status"]) == (404, "404")


async def test_pages_are_stable_and_add_up(served: Served) -> None:
    inactive = sorted(p.extension_id for p in served.people if p.state != "active")
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(SCIM_TOKEN)) as http:
        start = 1
        while True:
            page = (
                await http.get(
                    "/scim/v2/Users",
                    params={"filter": "active eq false", "startIndex": start, "count": 7},
                )
            ).json()
            assert page["totalResults"] == len(inactive)
            assert page["startIndex"] == start
            assert page["itemsPerPage"] == len(page.get("Resources", []))
            if not page.get("Resources"):
                break
            seen += [resource["id"] for resource in page["Resources"]]
            start += 7
        only_total = (await http.get("/scim/v2/Users", params={"count": 0})).json()
        clamped = (await http.get("/scim/v2/Users", params={"startIndex": -5, "count": 2})).json()
        bad = await http.get("/scim/v2/Users", params={"count": "many"})
        far = await http.get("/scim/v2/Users", params={"startIndex": 10**30})
    assert seen == inactive
    assert (only_total["totalResults"], only_total.get("Resources", [])) == (60, [])
    assert clamped["startIndex"] == 1
    assert [r["id"] for r in clamped["Resources"]] == sorted(p.extension_id for p in served.people)[
        :2
    ]
    assert (bad.status_code, bad.json()["schemas"]) == (400, [ERROR])
    assert (far.status_code, far.json()["totalResults"], far.json().get("Resources", [])) == (
        200, 60, [],
    )  # fmt: skip


async def test_suspended_and_deprovisioned_users_are_inactive_with_their_names(
    served: Served,
) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(SCIM_TOKEN)) as http:
        listed = (await http.get("/scim/v2/Users", params={"count": 1000})).json()["Resources"]
    by_id = {resource["id"]: resource for resource in listed}
    assert len(by_id) == len(served.people)
    for person in served.people:
        user = by_id[person.extension_id]
        assert user["active"] is (person.state == "active")
        assert user[RINGSYNC_USER]["state"] == person.state
        assert user["name"].get("givenName") == person.first
        assert user["userName"] == (person.email or person.extension_id)
    assert {p.state for p in served.people} == {"active", "pending", "suspended", "deprovisioned"}


async def test_etag_moves_with_the_user_and_only_then(served: Served, store: Store) -> None:
    person = next(p for p in served.people if p.state == "active" and p.email)
    path = f"/scim/v2/Users/{person.extension_id}"
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(SCIM_TOKEN)) as http:
        first = await http.get(path)
        tag = first.headers["etag"]
        assert first.json()["meta"]["version"] == tag
        unchanged = await http.get(path, headers={"If-None-Match": tag})
        assert (unchanged.status_code, unchanged.content) == (304, b"")
        assert unchanged.headers["etag"] == tag

        def read(seconds: int, first_name: str | None) -> Observation:
            return Observation(
                read_at=person.last_modified + timedelta(hours=2, seconds=seconds),
                status="Enabled",
                type="User",
                first_name=first_name,
                last_name=person.last,
                email=person.email,
                extension_number=person.extension_id[-3:],
                department="Sales" if int(person.extension_id) % 2 else "Support",
            )

        await store.reconcile(served.account_id, person.extension_id, read(0, person.first), "r")
        again = await http.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304  # read again, nothing changed: same version
        await store.reconcile(served.account_id, person.extension_id, read(1, "Renamed"), "r")
        changed = await http.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert changed.json()["name"]["givenName"] == "Renamed"
    assert changed.json()["meta"]["lastModified"] > first.json()["meta"]["lastModified"]


async def test_attributes_and_excluded_attributes_on_lists_and_one_user(served: Served) -> None:
    person = served.people[0]
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(SCIM_TOKEN)) as http:
        listed = await http.get("/scim/v2/Users", params={"attributes": "userName", "count": 3})
        one = await http.get(
            f"/scim/v2/Users/{person.extension_id}",
            params={"excludedAttributes": f"emails,name,{RINGSYNC_USER}:state"},
        )
        picked = await http.get(
            f"/scim/v2/Users/{person.extension_id}", params={"attributes": "name.familyName"}
        )
        bad = await http.get("/scim/v2/Users", params={"attributes": "not an attribute"})
    assert all(set(r) == {"schemas", "id", "userName"} for r in listed.json()["Resources"])
    body = one.json()
    assert set(body) & {"emails", "name", "userName"} == {"userName"}
    assert set(body[RINGSYNC_USER]) == {"extensionNumber", "status"}
    assert picked.json()["name"] == {"familyName": person.last}
    assert (bad.status_code, bad.json()["schemas"]) == (400, [ERROR])


async def test_accounts_by_path_and_unknown_accounts(served: Served) -> None:
    base = f"/scim/v2/accounts/{served.account_id}"
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(SCIM_TOKEN)) as http:
        listed = (await http.get(f"{base}/Users", params={"count": 1})).json()
        unknown = await http.get("/scim/v2/accounts/999999999999/Users")
        unknown_user = await http.get("/scim/v2/Users/424242")
    assert listed["totalResults"] == 60
    location = listed["Resources"][0]["meta"]["location"]
    assert location == f"{served.url}{base}/Users/{listed['Resources'][0]['id']}"
    for reply in (unknown, unknown_user):
        assert (reply.status_code, reply.json()["schemas"], reply.json()["status"]) == (
            404, [ERROR], "404",
        )  # fmt: skip


async def test_writes_are_501_and_discovery_writes_405(served: Served) -> None:
    writes = [("POST", "/Users"), ("PUT", "/Users/1000"), ("PATCH", "/Users/1000"),
              ("DELETE", "/Users/1000"), ("POST", "/Groups"), ("POST", "/Bulk"),
              ("GET", "/Me"), ("POST", "/.search")]  # fmt: skip
    discovery = ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes", "/ResourceTypes/User"]
    async with httpx.AsyncClient(base_url=f"{served.url}/scim/v2") as http:
        http.headers.update(bearer(SCIM_TOKEN))
        for method, path in writes:
            reply = await http.request(method, path, json={"schemas": [], "userName": "x"})
            assert (reply.status_code, reply.json()["status"]) == (501, "501"), (method, path)
            assert reply.json()["schemas"] == [ERROR]
        for path in discovery:
            reply = await http.post(path, json={})
            assert (reply.status_code, reply.json()["status"]) == (405, "405"), path
    async with httpx.AsyncClient(base_url=served.url) as http:
        assert (await http.get("/scim/v2/Users/1000")).status_code == 401


async def test_discovery_documents_describe_what_is_served(served: Served) -> None:
    async with httpx.AsyncClient(base_url=f"{served.url}/scim/v2") as http:
        http.headers.update(bearer(SCIM_TOKEN))
        config = (await http.get("/ServiceProviderConfig")).json()
        schemas = (await http.get("/Schemas")).json()["Resources"]
        ours = (await http.get(f"/Schemas/{RINGSYNC_USER}")).json()
        user_type = (await http.get("/ResourceTypes/User")).json()
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["etag"]["supported"] is True
    assert not any(config[k]["supported"] for k in ("patch", "bulk", "changePassword", "sort"))
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    user_schema = next(s for s in schemas if s["id"].endswith("core:2.0:User"))
    names = {a["name"] for a in user_schema["attributes"]}
    assert {"userName", "name", "emails", "active"} <= names
    assert "password" not in names
    assert all(a["mutability"] == "readOnly" for a in user_schema["attributes"])
    assert {a["name"] for a in ours["attributes"]} == {
        "extensionNumber",
        "status",
        "state",
        "lastActivity",
    }
    assert {e["schema"] for e in user_type["schemaExtensions"]} >= {RINGSYNC_USER}


async def test_a_real_scim_client_reads_typed_users(served: Served) -> None:
    person = next(p for p in served.people if p.state == "suspended" and p.email)
    email = person.email or ""
    async with httpx2.AsyncClient(
        base_url=f"{served.url}/scim/v2", headers=bearer(SCIM_TOKEN)
    ) as http:
        provider = ScimProvider(
            [User, EnterpriseUser, RingsyncUser],
            resource_types=[ResourceType.from_resource(User[EnterpriseUser | RingsyncUser])],
        )
        scim = AsyncSCIMClient(http, provider=provider)
        await scim.discover()
        one = await scim.query(User[EnterpriseUser | RingsyncUser], person.extension_id)
        found = await scim.query(
            User[EnterpriseUser | RingsyncUser],
            query_parameters=SearchRequest(filter=f'userName eq "{email.upper()}"'),
        )
    assert isinstance(one, User)
    assert isinstance(found, ListResponse)
    assert (one.user_name, one.active) == (email, False)
    assert one[RingsyncUser].state == "suspended"
    assert [u.id for u in found.resources or []] == [person.extension_id]


async def test_the_scim_conformance_checks_for_a_read_only_server_pass(served: Served) -> None:
    def check() -> list[tuple[str | None, Status, str | None]]:
        with httpx2.Client(base_url=f"{served.url}/scim/v2", headers=bearer(SCIM_TOKEN)) as http:
            results = check_server(SyncSCIMClient(http), include_tags={"discovery", "misc"})
        return [(r.title, r.status, r.reason) for r in results]

    results = await asyncio.to_thread(check)
    ran = [r for r in results if r[1] is not Status.SKIPPED]  # CRUD checks: not for read-only
    good = (Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE)
    assert len(ran) >= 15
    assert [r for r in ran if r[1] not in good] == []


async def test_scim_is_off_without_its_token(served: Served) -> None:
    # The served app has one; another on the same settings without it answers 404 everywhere.
    async with (
        running_api(api_settings(served.settings, scim=False)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for headers in ({}, bearer(SCIM_TOKEN)):
            reply = await http.get("/scim/v2/Users", headers=headers)
            assert (reply.status_code, reply.json()["status"]) == (404, "404")
            assert "www-authenticate" not in reply.headers


def test_roles_become_group_memberships() -> None:
    row = {"roles": [{"id": "1", "name": "Super Admin"}, {"id": 2, "displayName": "User"}, "x"]}
    assert roles_of(row) == [("1", "Super Admin"), ("2", "User")]
    assert roles_of({}) == []


async def test_groups_are_empty_until_roles_are_mirrored(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(SCIM_TOKEN)) as http:
        groups = (await http.get("/scim/v2/Groups")).json()
        missing = await http.get("/scim/v2/Groups/1")
    assert (groups["totalResults"], groups.get("Resources", [])) == (0, [])
    assert (missing.status_code, missing.json()["status"]) == (404, "404")


async def test_last_activity_in_scim_and_v1_once_the_scan_stored_it(
    served: Served, store: Store
) -> None:
    person = served.people[0]
    at = datetime(2026, 11, 30, 9, 15, 0, 123000, tzinfo=UTC)
    path = f"/scim/v2/Users/{person.extension_id}"
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(SCIM_TOKEN)) as http:
        first = await http.get(path)
        before = first.json()
        cursor = Cursor(date_from=at, date_to=at)
        await ActivityStore(store).record_page(served.account_id, {person.extension_id: at}, cursor)
        second = await http.get(path, headers={"If-None-Match": first.headers["etag"]})
        after = second.json()
    # The served user changed, so its ETag did: a cached copy is not "not modified".
    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]
    assert "lastActivity" not in before[RINGSYNC_USER]
    assert after[RINGSYNC_USER]["lastActivity"].startswith("2026-11-30T09:15:00.123")
    async with httpx.AsyncClient(base_url=served.url, headers=bearer(API_TOKEN)) as http:
        users = (await http.get("/v1/users", params={"account_id": served.account_id})).json()
    [mine] = [u for u in users if u["extension_id"] == person.extension_id]
    assert mine["last_activity_at"] == at.isoformat()
