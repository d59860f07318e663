"""The account's call log (`GET /restapi/v1.0/account/~/call-log`) and one extension's
(`GET .../extension/{id}/call-log`), both Heavy as the spec's `x-throttling-group` says.

Records come newest first, between `dateFrom` (default: `dateTo` minus 24 hours) and `dateTo`
(default: now), 100 a page unless `perPage` says otherwise (1,000 at most, or `max`), in the
spec's Simple view: `id`, `sessionId`, `startTime`, `direction`, `result`, `from`/`to` parties
(`extensionId`, `extensionNumber` and `name` for the account's own extensions, `phoneNumber` for
outside numbers) and the `extension` the record belongs to. The control API adds calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.extensions import account_ok
from sandbox.gate import gated
from sandbox.paging import page_of
from sandbox.phone_calls import PhoneCall
from sandbox.responses import invalid, json_response, not_found
from sandbox.world import World

DEFAULT_SPAN = 86_400.0


def instant(value: str) -> float | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _party(world: World, extension: str | None, number: str | None) -> dict[str, Any]:
    if extension is None:
        return {"phoneNumber": number, "name": None}
    user = world.find(extension)
    party: dict[str, Any] = {"extensionId": extension}
    if user is not None:
        party.update(extensionNumber=user.extension_number, name=user.name)
    return party


def record(world: World, call: PhoneCall) -> dict[str, Any]:
    """One call in the spec's Simple view (CallLogRecord)."""
    base, account_id = world.base_url, world.account_id
    own = call.from_extension if call.direction == "Outbound" else call.to_extension
    body: dict[str, Any] = {
        "uri": f"{base}/restapi/v1.0/account/{account_id}/call-log/{call.id}?view=Simple",
        "id": call.id,
        "sessionId": f"4{call.id[2:]}",
        "telephonySessionId": f"s-{call.id}",
        "startTime": world.clock.iso(call.start),
        "duration": call.duration,
        "durationMs": call.duration * 1000,
        "type": "Voice",
        "internalType": "Local",
        "direction": call.direction,
        "action": "VoIP Call" if call.direction == "Outbound" else "Phone Call",
        "result": call.result,
        "transport": "VoIP",
        "from": _party(world, call.from_extension, call.from_number),
        "to": _party(world, call.to_extension, call.to_number),
    }
    if own is not None:
        body["extension"] = {
            "id": int(own),
            "uri": f"{base}/restapi/v1.0/account/{account_id}/extension/{own}",
        }
    return body


def _listing(request: Request, world: World, extension: str | None, path: str) -> Response:
    params = request.query_params
    until = world.clock.now()
    if params.get("dateTo"):
        found = instant(params["dateTo"])
        if found is None:
            return invalid("dateTo")
        until = found
    since = until - DEFAULT_SPAN
    if params.get("dateFrom"):
        found = instant(params["dateFrom"])
        if found is None:
            return invalid("dateFrom")
        since = found
    calls = world.phone_calls.between(since, until, extension)
    page = page_of(request, calls, path, allow_max=True)
    if isinstance(page, Response):
        return page
    records = [record(world, call) for call in page.items]
    return json_response({**page.frame, "records": records})


@gated("Heavy")
async def account_call_log(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    path = f"{world.base_url}/restapi/v1.0/account/{world.account_id}/call-log"
    return _listing(request, world, None, path)


@gated("Heavy")
async def extension_call_log(request: Request, world: World) -> Response:
    if not account_ok(request, world):
        return not_found("accountId")
    extension_id = request.path_params["extension_id"]
    user = world.find(world.owner_id if extension_id == "~" else extension_id)
    if user is None:
        return not_found("extensionId")
    base, account_id = world.base_url, world.account_id
    path = f"{base}/restapi/v1.0/account/{account_id}/extension/{user.id}/call-log"
    return _listing(request, world, user.id, path)


def add_calls(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """The control API: `{"calls": [{direction, result, startTime, from, to, duration?}]}`
    (a party is `{"extensionId": ...}` or `{"phoneNumber": ...}`), or for benchmarks
    `{"generate": N, "extensions": [...], "dateFrom": ..., "dateTo": ...}`."""
    if "generate" in body:
        since = instant(str(body.get("dateFrom", "")))
        until = instant(str(body.get("dateTo", "")))
        if since is None or until is None:
            raise ValueError("generate needs dateFrom and dateTo (ISO 8601)")
        extensions = [str(e) for e in body.get("extensions") or [u.id for u in world.ordered()]]
        count = world.phone_calls.generate(
            int(body["generate"]), extensions, since, until, int(body.get("seed", 0))
        )
        return {"added": count, "total": len(world.phone_calls)}
    added = []
    for raw in body.get("calls") or []:
        start = instant(str(raw.get("startTime", "")))
        if start is None:
            raise ValueError("each call needs startTime (ISO 8601)")
        parties = {side: raw.get(side) or {} for side in ("from", "to")}
        call = world.phone_calls.add(
            direction=str(raw.get("direction", "")),
            result=str(raw.get("result", "")),
            start=start,
            from_extension=_id(parties["from"].get("extensionId")),
            from_number=parties["from"].get("phoneNumber"),
            to_extension=_id(parties["to"].get("extensionId")),
            to_number=parties["to"].get("phoneNumber"),
            duration=int(raw.get("duration", 60)),
        )
        added.append(call.id)
    return {"ids": added, "total": len(world.phone_calls)}


def _id(value: object) -> str | None:
    return None if value is None else str(value)


ROUTES = [
    Route("/restapi/v1.0/account/{account_id}/call-log", account_call_log, methods=["GET"]),
    Route(
        "/restapi/v1.0/account/{account_id}/extension/{extension_id}/call-log",
        extension_call_log,
        methods=["GET"],
    ),
]
