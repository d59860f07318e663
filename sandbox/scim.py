"""SCIM 2.0 user reads: `GET /scim/v2/Users` (filter on userName or email, startIndex/count,
`Resources` with a capital R) and `GET /scim/v2/Users/{id}`; both Light, with SCIM's own error
shape. Unassigned extensions are no longer SCIM users."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gate import gated
from sandbox.responses import json_response, scim_error
from sandbox.users import User
from sandbox.world import World

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_FILTER = re.compile(r'^\s*(userName|email|emails)\s+eq\s+"([^"]*)"\s*$', re.IGNORECASE)


def _render(user: User, world: World) -> dict[str, object]:
    return user.scim(world.base_url, user.creation_time, world.clock.iso(user.modified))


def _positive(raw: str | None, default: int) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        return max(0, int(raw))
    except ValueError:
        return None


@gated("Light", auth="scim")
async def users(request: Request, world: World) -> Response:
    query = request.query_params
    start = _positive(query.get("startIndex"), 1)
    count = _positive(query.get("count"), 100)
    if start is None or count is None:
        return scim_error(400, "startIndex and count must be integers", "invalidValue")
    found = [u for u in world.ordered() if u.status != "Unassigned"]
    raw_filter = query.get("filter")
    if raw_filter:
        match = _FILTER.match(raw_filter)
        if match is None:
            return scim_error(400, f"Unsupported filter: {raw_filter}", "invalidFilter")
        wanted = match.group(2).lower()
        found = [u for u in found if u.email.lower() == wanted]
    first = max(start, 1) - 1
    page = found[first : first + count]
    return json_response(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": len(found),
            "startIndex": first + 1,
            "itemsPerPage": len(page),
            "Resources": [_render(u, world) for u in page],
        }
    )


@gated("Light", auth="scim")
async def user(request: Request, world: World) -> Response:
    found = world.find(request.path_params["user_id"])
    if found is None or found.status == "Unassigned":
        return scim_error(404, "User not found")
    return json_response(_render(found, world))


ROUTES = [
    Route("/scim/v2/Users", users, methods=["GET"]),
    Route("/scim/v2/Users/{user_id}", user, methods=["GET"]),
]
