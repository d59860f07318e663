"""One extension's message store (`GET .../extension/{id}/message-store`, Light), SMS only:
newest first between `dateFrom` (default: `dateTo` minus 24 hours) and `dateTo` (default: now),
filtered by `direction` and `messageType`, paged. The control API adds texts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.call_log import DEFAULT_SPAN, instant
from sandbox.extensions import account_ok
from sandbox.gate import gated
from sandbox.paging import page_of
from sandbox.responses import invalid, json_response, not_found
from sandbox.texts import Text
from sandbox.world import World


def _record(world: World, text: Text, base: str) -> dict[str, Any]:
    user = world.find(text.extension_id)
    own = {"extensionNumber": user.extension_number, "name": user.name} if user else {}
    outbound = text.direction == "Outbound"
    mine = {"phoneNumber": "+16505550000", **own}
    peer = {"phoneNumber": text.peer}
    moment = world.clock.iso(text.created)
    return {
        "id": int(text.id),
        "uri": f"{base}/{text.id}",
        "extensionId": text.extension_id,
        "type": "SMS",
        "direction": text.direction,
        "availability": "Alive",
        "creationTime": moment,
        "lastModifiedTime": moment,
        "messageStatus": "Delivered" if outbound else "Received",
        "readStatus": "Read",
        "conversationId": int(text.id) + 7_000_000,
        "from": mine if outbound else peer,
        "to": [peer if outbound else mine],
    }


@gated("Light")
async def message_store(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    extension_id = request.path_params["extension_id"]
    user = world.find(world.owner_id if extension_id == "~" else extension_id)
    if user is None:
        return not_found("extensionId")
    params = request.query_params
    until = instant(params["dateTo"]) if params.get("dateTo") else world.clock.now()
    if until is None:
        return invalid("dateTo")
    since = instant(params["dateFrom"]) if params.get("dateFrom") else until - DEFAULT_SPAN
    if since is None:
        return invalid("dateFrom")
    kinds = params.getlist("messageType")
    direction = params.get("direction")
    texts = (
        []
        if kinds and "SMS" not in kinds
        else world.texts.between(user.id, since, until, direction)
    )
    base = f"{world.base_url}/restapi/v1.0/account/{world.account_id}/extension/{user.id}"
    page = page_of(request, texts, f"{base}/message-store")
    if isinstance(page, Response):
        return page
    records = [_record(world, text, f"{base}/message-store") for text in page.items]
    return json_response({**page.frame, "records": records})


def add_texts(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """The control API: `{"texts": [{extensionId, direction, creationTime, peer?}]}`."""
    ids = []
    for raw in body.get("texts") or []:
        created = instant(str(raw.get("creationTime", "")))
        if created is None:
            raise ValueError("each text needs creationTime (ISO 8601)")
        extension = str(raw.get("extensionId", ""))
        if world.find(extension) is None:
            raise ValueError(f"no extension {extension!r}")
        peer = str(raw.get("peer", "+16505550199"))
        ids.append(world.texts.add(extension, str(raw.get("direction", "")), created, peer).id)
    return {"ids": ids}


ROUTES = [
    Route(
        "/restapi/v1.0/account/{account_id}/extension/{extension_id}/message-store",
        message_store,
        methods=["GET"],
    )
]
