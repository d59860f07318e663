"""Writes to users: `PUT /restapi/v1.0/account/{accountId}/extension/{extensionId}` (Medium;
status and statusInfo, answered with the extension as GetExtensionInfoResponse) and the bulk
`DELETE /restapi/v2/accounts/{accountId}/extensions` (Heavy; 1 to 50 `records`, each with its
own `bulkItemSuccessful` outcome, numbers and devices kept in inventory by default).

Both notify subscribers as any other change of the user does (an Extension Info update, a
delete). `World.fail_writes` makes them fail for chosen extensions with a chosen error code.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.extensions import account_ok
from sandbox.gate import gated
from sandbox.responses import invalid, json_object, json_response, missing, not_found, rc_error
from sandbox.world import World

# ExtensionStatusEnumForUpdate and ExtensionStatusInfo.reason, from the spec.
_STATUSES: Final = ("Enabled", "Disabled", "Frozen", "NotActivated")
_REASONS: Final = ("Voluntarily", "Involuntarily")
MAX_RECORDS: Final = 50


def _failure(world: World, extension_id: str) -> tuple[int, str] | None:
    return world.write_failures.get(extension_id)


@gated("Medium")
async def update_extension(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    extension_id = request.path_params["extension_id"]
    user = world.find(extension_id)
    if user is None:
        return not_found("extensionId")
    body = await json_object(request)
    if body is None:
        return invalid("body")
    fields: dict[str, Any] = {}
    if "status" in body:
        if body["status"] not in _STATUSES:
            return invalid("status")
        fields["status"] = body["status"]
    info = body.get("statusInfo")
    if info is not None:
        if not isinstance(info, dict) or info.get("reason", "Voluntarily") not in _REASONS:
            return invalid("statusInfo.reason")
        fields["status_reason"] = info.get("reason")
        fields["status_comment"] = info.get("comment")
    failure = _failure(world, user.id)
    if failure is not None:
        status, code = failure
        return rc_error(status, code, f"Extension [{user.id}] cannot be updated.")
    if fields:
        world.update_user(user.id, **fields)
    return json_response(user.info(world.base_url, world.account_id))


@gated("Heavy")
async def delete_extensions(request: Request, world: World) -> Response:
    if request.path_params["account_id"] not in ("~", world.account_id):
        return not_found("accountId")
    body = await json_object(request)
    if body is None:
        return invalid("body")
    records = body.get("records")
    if records is None:
        return missing("records")
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_RECORDS:
        return invalid("records")
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str | int) for r in records):
        return invalid("records.id")
    results = [_delete_one(world, str(record["id"])) for record in records]
    return json_response({"records": results})


def _delete_one(world: World, extension_id: str) -> dict[str, Any]:
    user = world.find(extension_id)
    failure = _failure(world, extension_id)
    if user is None:
        code, message = "CMN-102", f"Resource for parameter [id] is not found: {extension_id}."
    elif failure is not None:
        code, message = failure[1], f"Extension [{extension_id}] cannot be deleted."
    elif user.type not in ("User", "Limited"):
        code, message = "CMN-101", f"Extension [{extension_id}] is not a User or Limited."
    else:
        world.delete(extension_id)
        return {"id": extension_id, "bulkItemSuccessful": True}
    error = {"errorCode": code, "message": message, "parameterName": "id"}
    return {"id": extension_id, "bulkItemSuccessful": False, "bulkItemErrors": [error]}


ROUTES = [
    Route(
        "/restapi/v1.0/account/{account_id}/extension/{extension_id}",
        update_extension,
        methods=["PUT"],
    ),
    Route("/restapi/v2/accounts/{account_id}/extensions", delete_extensions, methods=["DELETE"]),
]
