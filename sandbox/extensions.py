"""Account and extension reads: `GET /restapi/v1.0/account/{accountId}` (Light), the extension
list (Medium; type/status/extensionNumber/email filters, page/perPage <= 1000, paging and
navigation) and one extension (Light; 404 CMN-102 once hard-deleted)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gate import gated
from sandbox.responses import invalid, json_response, not_found
from sandbox.users import User
from sandbox.world import World

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 100


def _account_ok(request: Request, world: World) -> bool:
    return request.path_params["account_id"] in ("~", world.account_id)


@gated("Light")
async def account(request: Request, world: World) -> Response:
    if not _account_ok(request, world):
        return not_found("accountId")
    return json_response(
        {
            "id": int(world.account_id),
            "uri": f"{world.base_url}/restapi/v1.0/account/{world.account_id}",
            "mainNumber": "+16505550100",
            "status": "Confirmed",
            "setupWizardState": "Completed",
            "operator": {
                "id": int(world.owner_id),
                "uri": f"{world.base_url}/restapi/v1.0/account/{world.account_id}"
                f"/extension/{world.owner_id}",
            },
        }
    )


def _int_param(request: Request, name: str, default: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 1 else None


def _selected(request: Request, world: World) -> list[User]:
    """The filtered list, cached per filter until the world changes (100,000 users stay fast)."""
    query = request.query_params
    key = (
        tuple(sorted(query.getlist("type"))),
        tuple(sorted(s for s in query.getlist("status") if s)),
        query.get("extensionNumber", ""),
        tuple(sorted(e.lower() for e in query.getlist("email"))),
    )
    cache: dict[Any, list[User]] = request.app.state.list_cache
    if request.app.state.list_version != world.version:
        cache.clear()
        request.app.state.list_version = world.version
    found = cache.get(key)
    if found is None:
        types, statuses, number, emails = key
        found = [
            user
            for user in world.ordered()
            if (not types or user.type in types)
            and (not statuses or user.status in statuses)
            and (not number or user.extension_number == number)
            and (not emails or user.email.lower() in emails)
        ]
        cache[key] = found
    return found


@gated("Medium")
async def extension_list(request: Request, world: World) -> Response:
    if not _account_ok(request, world):
        return not_found("accountId")
    page = _int_param(request, "page", 1)
    if page is None:
        return invalid("page")
    per_page = _int_param(request, "perPage", DEFAULT_PER_PAGE)
    if per_page is None or per_page > MAX_PER_PAGE:
        return invalid("perPage")
    users = _selected(request, world)
    start = (page - 1) * per_page
    chunk = users[start : start + per_page]
    base, account_id = world.base_url, world.account_id
    total_pages = max(1, math.ceil(len(users) / per_page))
    path = f"{base}/restapi/v1.0/account/{account_id}/extension"

    def uri(number: int) -> dict[str, str]:
        params = [
            (k, v) for k, v in request.query_params.multi_items() if k not in ("page", "perPage")
        ]
        params += [("page", str(number)), ("perPage", str(per_page))]
        return {"uri": f"{path}?{urlencode(params)}"}

    paging: dict[str, int] = {
        "page": page,
        "totalPages": total_pages,
        "perPage": per_page,
        "totalElements": len(users),
    }
    if chunk:
        paging["pageStart"] = start
        paging["pageEnd"] = start + len(chunk) - 1
    navigation = {"firstPage": uri(1), "lastPage": uri(total_pages)}
    if page < total_pages:
        navigation["nextPage"] = uri(page + 1)
    if page > 1:
        navigation["previousPage"] = uri(min(page - 1, total_pages))
    response = json_response(
        {
            "uri": uri(page)["uri"],
            "records": [user.list_record(base, account_id) for user in chunk],
            "paging": paging,
            "navigation": navigation,
        }
    )
    world.page_served(page)
    return response


@gated("Light")
async def extension_read(request: Request, world: World) -> Response:
    if not _account_ok(request, world):
        return not_found("accountId")
    extension_id = request.path_params["extension_id"]
    if extension_id == "~":
        extension_id = world.owner_id
    user = world.find(extension_id)
    if user is None:
        return not_found("extensionId")
    return json_response(user.info(world.base_url, world.account_id))


ROUTES = [
    Route("/restapi/v1.0/account/{account_id}", account, methods=["GET"]),
    Route("/restapi/v1.0/account/{account_id}/extension", extension_list, methods=["GET"]),
    Route(
        "/restapi/v1.0/account/{account_id}/extension/{extension_id}",
        extension_read,
        methods=["GET"],
    ),
]
