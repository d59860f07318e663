"""Account and extension reads: `GET /restapi/v1.0/account/{accountId}` (Light), the extension
list (Medium; type/status/extensionNumber/email filters, page/perPage <= 1000, paging and
navigation) and one extension (Light; 404 CMN-102 once hard-deleted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gate import gated
from sandbox.paging import page_of
from sandbox.responses import json_response, not_found
from sandbox.users import User
from sandbox.world import World


def account_ok(request: Request, world: World) -> bool:
    return request.path_params["account_id"] in ("~", world.account_id)


@gated("Light")
async def account(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    return json_response(
        {
            "id": int(world.account_id),
            "uri": f"{world.base_url}/restapi/v1.0/account/{world.account_id}",
            "mainNumber": "+16505550100",
            "status": "Confirmed",
            "setupWizardState": "Completed",
            "operator": {
                "id": int(world.operator_id),
                "uri": f"{world.base_url}/restapi/v1.0/account/{world.account_id}"
                f"/extension/{world.operator_id}",
            },
        }
    )


def _selected(request: Request, world: World) -> list[User]:
    """The filtered list, cached per filter until the world changes (100,000 users stay fast)."""
    query = request.query_params
    key = (
        tuple(sorted(query.getlist("type"))),
        tuple(sorted(s for s in query.getlist("status") if s)),
        query.get("extensionNumber", ""),
        tuple(sorted(e.lower() for e in query.getlist("email"))),
    )
    types, statuses, number, emails = key
    return cached(
        request,
        world,
        key,
        lambda user: (
            (not types or user.type in types)
            and (not statuses or user.status in statuses)
            and (not number or user.extension_number == number)
            and (not emails or user.email.lower() in emails)
        ),
    )


def cached(request: Request, world: World, key: Any, keep: Callable[[User], bool]) -> list[User]:
    """The users `keep` selects, in list order, cached under `key` until the world changes."""
    cache: dict[Any, list[User]] = request.app.state.list_cache
    if request.app.state.list_version != world.version:
        cache.clear()
        request.app.state.list_version = world.version
    found = cache.get(key)
    if found is None:
        found = cache[key] = [user for user in world.ordered() if keep(user)]
    return found


@gated("Medium")
async def extension_list(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    base, account_id = world.base_url, world.account_id
    found = page_of(
        request, _selected(request, world), f"{base}/restapi/v1.0/account/{account_id}/extension"
    )
    if isinstance(found, Response):
        return found
    records = [user.list_record(base, account_id) for user in found.items]
    response = json_response({**found.frame, "records": records})
    world.page_served(found.number)
    return response


@gated("Light")
async def extension_read(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    extension_id = request.path_params["extension_id"]
    if extension_id == "~":
        extension_id = world.owner_id
    user = world.find(extension_id)
    if user is None and extension_id == world.owner_id:
        return json_response(_owner(world))
    if user is None:
        return not_found("extensionId")
    return json_response(user.info(world.base_url, world.account_id))


def _owner(world: World) -> dict[str, Any]:
    """The credential's own extension, which the sandbox lists only when a test adds it."""
    base = f"{world.base_url}/restapi/v1.0/account/{world.account_id}"
    return {
        "id": int(world.owner_id),
        "uri": f"{base}/extension/{world.owner_id}",
        "extensionNumber": "100",
        "type": "User",
        "status": "Enabled",
        "name": "Account Owner",
        "account": {"id": world.account_id, "uri": base},
    }


ROUTES = [
    Route("/restapi/v1.0/account/{account_id}", account, methods=["GET"]),
    Route("/restapi/v1.0/account/{account_id}/extension", extension_list, methods=["GET"]),
    Route(
        "/restapi/v1.0/account/{account_id}/extension/{extension_id}",
        extension_read,
        methods=["GET"],
    ),
]
