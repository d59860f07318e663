"""Role assignments: the account's (`GET .../assigned-role`, Medium; paged, only extensions that
hold a role are listed) and one extension's (`GET .../extension/{id}/assigned-role`, Light; 404
CMN-102 once the extension is gone). Assigning a role notifies nobody, as in RingCentral."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.extensions import account_ok, cached
from sandbox.gate import gated
from sandbox.paging import page_of
from sandbox.responses import json_response, not_found
from sandbox.world import World


@gated("Medium")
async def account_roles(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    base, account_id = world.base_url, world.account_id
    holders = cached(request, world, "assigned-role", lambda user: bool(user.roles))
    found = page_of(request, holders, f"{base}/restapi/v1.0/account/{account_id}/assigned-role")
    if isinstance(found, Response):
        return found
    records = [
        {
            "uri": f"{base}/restapi/v1.0/account/{account_id}/extension/{user.id}/assigned-role",
            "extensionId": user.id,
            "roles": user.assigned_roles(base, account_id),
        }
        for user in found.items
    ]
    return json_response({**found.frame, "records": records})


@gated("Light")
async def extension_roles(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    extension_id = request.path_params["extension_id"]
    user = world.find(world.owner_id if extension_id == "~" else extension_id)
    if user is None:
        return not_found("extensionId")
    base, account_id = world.base_url, world.account_id
    return json_response(
        {
            "uri": f"{base}/restapi/v1.0/account/{account_id}/extension/{user.id}/assigned-role",
            "records": user.assigned_roles(base, account_id),
        }
    )


ROUTES = [
    Route("/restapi/v1.0/account/{account_id}/assigned-role", account_roles, methods=["GET"]),
    Route(
        "/restapi/v1.0/account/{account_id}/extension/{extension_id}/assigned-role",
        extension_roles,
        methods=["GET"],
    ),
]
