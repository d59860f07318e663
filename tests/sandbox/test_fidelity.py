"""Fidelity: every response the sandbox serves (and every notification it sends) has the shape
RingCentral's API reference gives for that path, method and status.

The shapes are facts we keep in `spec_facts.py`, so these tests always run. When RingCentral's
public OpenAPI spec is also at hand (read from ../shared/reference beside the repository, never
copied into it), every response is validated against the spec's own schema too, and the facts are
checked against the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from sandbox.oauth import JWT_GRANT
from sandbox.server import SandboxServer
from tests.fixtures.sandbox import WebhookSink, subscribe
from tests.sandbox import spec_facts
from tests.sandbox.spec_facts import NOTIFICATIONS, RESPONSES

SPEC = (
    Path(__file__).resolve().parents[2].parent
    / "shared/reference/ringcentral-openapi/rc-public-openapi.yml"
)
Spec = dict[str, Any]
# RingCentral's general error responses, for statuses a path does not list itself.
GENERAL_ERRORS = {"401": "Unauthorized", "404": "NotFound", "429": "TooManyRequests"}


@pytest.fixture(scope="session")
def spec() -> Spec | None:
    """RingCentral's spec when it is at hand, else None (the facts are checked either way)."""
    if not SPEC.is_file():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open("rb") as handle:
        loaded: Spec = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    return loaded


def conforms(facts: spec_facts.Schema, instance: Any) -> None:
    """Raise unless `instance` has the shape the facts give."""
    Draft202012Validator(facts, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        instance
    )


def check(spec: Spec | None, path: str, method: str, response: httpx.Response) -> None:
    """Check a response against our facts and, when at hand, the spec's schema."""
    key = (method.upper(), path, response.status_code)
    assert key in RESPONSES, f"no facts for {key}: add them to spec_facts.py"
    facts = RESPONSES[key]
    if facts is None:
        assert not response.content, f"{path}: no body is expected for {key[2]}"
    else:
        conforms(facts, response.json())
    if spec is None:
        return
    content = _declared(spec, path, method, response.status_code).get("content")
    if content is None:
        assert not response.content, f"{path}: the spec declares no body for {key[2]}"
        return
    validate(spec, content["application/json"]["schema"], response.json())


def check_notification(spec: Spec | None, name: str, body: Any) -> None:
    conforms(NOTIFICATIONS[name], body)
    if spec is not None:
        validate(spec, component(name), body)


def _declared(spec: Spec, path: str, method: str, status: int) -> dict[str, Any]:
    responses = spec["paths"][path][method.lower()]["responses"]
    declared = responses.get(str(status))
    if declared is None:
        declared = {"$ref": f"#/components/responses/{GENERAL_ERRORS[str(status)]}"}
    return _deref(spec, declared)


def _deref(spec: Spec, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        found: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def validate(spec: Spec, schema: dict[str, Any], instance: Any) -> None:
    root = {**schema, "components": spec["components"]}
    OAS30ReadValidator(root, format_checker=oas30_format_checker).validate(instance)


def component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


async def test_oauth_responses_match_the_spec(spec: Spec | None, sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        ok = await client.post(
            "/restapi/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": sandbox.jwt},
        )
        bad = await client.post(
            "/restapi/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": "a.b.c"},
        )
        revoked = await client.post(
            "/restapi/oauth/revoke",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"token": ok.json()["access_token"]},
        )
    check(spec, "/restapi/oauth/token", "post", ok)
    check(spec, "/restapi/oauth/token", "post", bad)
    check(spec, "/restapi/oauth/revoke", "post", revoked)


async def test_account_and_extension_responses_match_the_spec(
    spec: Spec | None, sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    world = sandbox.world
    world.seed(3)
    disabled = world.create_user(department="Ops", email="x@example.com")
    world.update_user(disabled, job_title="Boss", international_calling=True)
    world.disable(disabled)
    unassigned = world.create_user()
    world.unassign(unassigned)
    gone = world.create_user()
    world.delete(gone)
    account = "/restapi/v1.0/account/{accountId}"
    extensions = f"{account}/extension"
    one = f"{extensions}/{{extensionId}}"
    check(spec, account, "get", await api.get("/restapi/v1.0/account/~"))
    for query in ("", "?perPage=2&page=2", "?type=User&status=Disabled", "?page=9"):
        check(spec, extensions, "get", await api.get(f"/restapi/v1.0/account/~/extension{query}"))
    for extension_id in (disabled, unassigned, world.seed(1)[0]):
        check(spec, one, "get", await api.get(f"/restapi/v1.0/account/~/extension/{extension_id}"))
    missing = await api.get(f"/restapi/v1.0/account/~/extension/{gone}")
    assert missing.status_code == 404
    check(spec, one, "get", missing)
    async with httpx.AsyncClient(base_url=sandbox.url) as anonymous:
        check(spec, extensions, "get", await anonymous.get("/restapi/v1.0/account/~/extension"))


async def test_role_responses_match_the_spec(
    spec: Spec | None, sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    world = sandbox.world
    ids = world.seed(3)
    world.assign_roles(ids[0], ["1", "4"])
    world.assign_roles(ids[1], [])
    world.update_user(ids[2], site={"id": "1234", "name": "Paris"})
    gone = world.create_user()
    world.delete(gone)
    account = "/restapi/v1.0/account/{accountId}/assigned-role"
    one = "/restapi/v1.0/account/{accountId}/extension/{extensionId}/assigned-role"
    for query in ("", "?perPage=1&page=2", "?page=9"):
        check(spec, account, "get", await api.get(f"/restapi/v1.0/account/~/assigned-role{query}"))
    for extension_id in (*ids, gone):
        path = f"/restapi/v1.0/account/~/extension/{extension_id}/assigned-role"
        check(spec, one, "get", await api.get(path))
    listed = await api.get(f"/restapi/v1.0/account/~/extension/{ids[2]}")
    check(spec, "/restapi/v1.0/account/{accountId}/extension/{extensionId}", "get", listed)
    assert listed.json()["site"] == {"id": "1234", "name": "Paris"}


async def test_scim_responses_match_the_spec(
    spec: Spec | None, sandbox: SandboxServer, api: httpx.AsyncClient
) -> None:
    sandbox.world.seed(2)
    user_id = sandbox.world.create_user(department="R&D", job_title="Dev")
    check(spec, "/scim/v2/Users", "get", await api.get("/scim/v2/Users"))
    check(spec, "/scim/v2/Users", "get", await api.get("/scim/v2/Users?filter=bad"))
    one = "/scim/v2/Users/{scimUserId}"
    check(spec, one, "get", await api.get(f"/scim/v2/Users/{user_id}"))
    check(spec, one, "get", await api.get("/scim/v2/Users/1"))


async def test_subscription_responses_match_the_spec(
    spec: Spec | None, sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    created = await subscribe(api, sandbox, webhook_sink.url, expires_in=3000)
    sub_id = created.json()["id"]
    collection, one = "/restapi/v1.0/subscription", "/restapi/v1.0/subscription/{subscriptionId}"
    check(spec, collection, "post", created)
    check(spec, collection, "get", await api.get(collection))
    check(spec, one, "get", await api.get(f"{collection}/{sub_id}"))
    body = {"eventFilters": ["/restapi/v1.0/account/~/extension"], "expiresIn": 600}
    check(spec, one, "put", await api.put(f"{collection}/{sub_id}", json=body))
    check(spec, f"{one}/renew", "post", await api.post(f"{collection}/{sub_id}/renew"))
    sandbox.world.blacklist(sub_id)
    check(spec, one, "get", await api.get(f"{collection}/{sub_id}"))
    check(spec, one, "delete", await api.delete(f"{collection}/{sub_id}"))
    check(spec, one, "get", await api.get(f"{collection}/{sub_id}"))
    webhook_sink.handshake = "status-500"
    check(spec, collection, "post", await subscribe(api, sandbox, webhook_sink.url))


async def test_notifications_match_the_spec(
    spec: Spec | None, sandbox: SandboxServer, api: httpx.AsyncClient, webhook_sink: WebhookSink
) -> None:
    user_id = sandbox.world.seed(1)[0]
    filters = ["/restapi/v1.0/account/~/extension", f"/restapi/v1.0/account/~/extension/{user_id}"]
    assert (await subscribe(api, sandbox, webhook_sink.url, filters=filters)).status_code == 200
    sandbox.world.set_body_shape("spec")
    sandbox.world.update_user(user_id, first_name="Changed")
    await sandbox.world.drain()
    by_event = {b["event"].rsplit("/", 1)[-1]: b for b in webhook_sink.bodies()}
    check_notification(spec, "ExtensionListEvent", by_event["extension"])
    check_notification(spec, "ExtensionInfoEvent", by_event[user_id])


@pytest.mark.parametrize(
    ("facts", "body"),
    [
        (spec_facts.EXTENSION, {"id": 1, "status": "Deleted"}),
        (spec_facts.EXTENSION, {"id": "1"}),
        (spec_facts.EXTENSION_LIST, {"records": [], "paging": {"perPage": 1001}}),
        (spec_facts.EXTENSION_LIST, {"records": [], "navigation": {"nextPage": {"href": "x"}}}),
        (spec_facts.SCIM_ERROR, {"status": 404}),
        (spec_facts.EXTENSION_ROLES, {"records": [{"id": "1"}]}),
        (spec_facts.ACCOUNT_ROLES, {"records": [{"extensionId": 1, "roles": []}]}),
        (spec_facts.ERRORS, {"errors": []}),
        (spec_facts.SUBSCRIPTION_LIST, {"uri": "http://x/", "records": [{"id": "1"}]}),
        (NOTIFICATIONS["ExtensionListEvent"], {"uuid": "u", "event": "/e", "body": {}}),
    ],
)
def test_the_facts_refuse_what_the_reference_does_not_allow(
    facts: spec_facts.Schema, body: Any
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        conforms(facts, body)


def test_the_facts_agree_with_the_spec(spec: Spec | None) -> None:
    if spec is None:
        pytest.skip(f"RingCentral's OpenAPI spec is not at {SPEC}: facts not compared with it")
    problems = []
    for (method, path, status), facts in RESPONSES.items():
        content = _declared(spec, path, method, status).get("content")
        where = f"{method} {path} {status}"
        if facts is None or content is None:
            assert facts is content, f"{where}: a body in one and not the other"
            continue
        problems += disagreements(spec, facts, content["application/json"]["schema"], where)
    for name, facts in NOTIFICATIONS.items():
        problems += disagreements(spec, facts, component(name), name)
    assert problems == []


def disagreements(
    spec: Spec, ours: spec_facts.Schema, theirs: dict[str, Any], where: str
) -> list[str]:
    """Where our facts say more than, or other than, the spec's schema."""
    theirs = _merged(spec, theirs)
    alternatives = theirs.get("anyOf") or theirs.get("oneOf")
    if alternatives:
        found = [disagreements(spec, ours, option, where) for option in alternatives]
        return [] if [] in found else min(found, key=len)
    problems = [
        f"{where}: {key} is {ours[key]!r}, the spec says {theirs.get(key)!r}"
        for key in ("type", "format", "minimum", "maximum", "minItems", "maxItems")
        if key in ours and ours[key] != theirs.get(key, "object" if key == "type" else None)
    ]
    if "enum" in ours and not set(ours["enum"]) <= set(theirs.get("enum", ())):
        problems.append(f"{where}: {ours['enum']} is not within {theirs.get('enum')}")
    if missing := set(theirs.get("required", ())) - set(ours.get("required", ())):
        problems.append(f"{where}: the spec also requires {sorted(missing)}")
    if (
        theirs.get("additionalProperties") is False
        and ours.get("additionalProperties") is not False
    ):
        problems.append(f"{where}: the spec allows no other fields")
    known = theirs.get("properties", {})
    for name, schema in ours.get("properties", {}).items():
        if name not in known:
            problems.append(f"{where}: the spec has no field {name}")
        else:
            problems += disagreements(spec, schema, known[name], f"{where}.{name}")
    if "items" in ours:
        problems += disagreements(spec, ours["items"], theirs.get("items", {}), f"{where}[]")
    return problems


def _merged(spec: Spec, node: dict[str, Any]) -> dict[str, Any]:
    """A schema with its references followed and its allOf parts folded into one."""
    node = _deref(spec, node)
    if "allOf" not in node:
        return node
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for part in (_merged(spec, p) for p in node["allOf"]):
        merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
        merged["required"] = [*merged.get("required", ()), *part.get("required", ())]
        merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
    return merged
