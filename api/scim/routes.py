"""The `/scim/v2` service provider: read-only routes, SCIM errors for everything else.

Every answer is `application/scim+json`; every error (401, 404, 405, 501, a bad filter) is a SCIM
Error body with its status as a string. The default account is served at the root, any account
under `/accounts/{account_id}/`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    Group,
    InvalidValueException,
    ListResponse,
    Meta,
    NotFoundException,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from api.guard import BearerGuard
from api.scim.documents import etag, user_document
from api.scim.filters import compile_filter
from api.scim.schemas import (
    MAX_RESULTS,
    ScimUser,
    dump,
    resource_types,
    schemas,
    service_provider_config,
)
from api.scim.users import groups, one_user, user_page, user_resource
from api.state import api_state
from events.settings import Settings

MEDIA_TYPE: Final = "application/scim+json"
_WRITES: Final = ["POST", "PUT", "PATCH", "DELETE"]


def scim_response(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(orjson.dumps(body), status, headers or None, MEDIA_TYPE)


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Response:
    error = Error(status=status, detail=detail, scim_type=scim_type)
    return scim_response(dump(error), status)


def _from_exception(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SCIMException):
        return scim_response(dump(exc.to_error()), exc.status)
    assert isinstance(exc, HTTPException)
    return scim_error(exc.status_code, exc.detail)


async def _account(request: Request) -> str | None:
    """The account this request is about; NotFound for one the mirror does not hold."""
    state = api_state(request)
    named = request.path_params.get("account_id")
    if named is None:
        return await state.default_account()
    if not await state.holds_account(named):
        raise NotFoundException(detail=f"account {named} is not mirrored here")
    return str(named)


def _root(request: Request) -> str:
    """This request's SCIM base URL (the account's, when one is named in the path)."""
    prefix = "/scim/v2"
    if "account_id" in request.path_params:
        prefix += f"/accounts/{request.path_params['account_id']}"
    return str(request.base_url).rstrip("/") + prefix


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidValueException(detail=f"{name} must be an integer") from None


def _selection(request: Request) -> ResponseParameters[Any]:
    try:
        return ResponseParameters(
            attributes=request.query_params.get("attributes") or None,
            excluded_attributes=request.query_params.get("excludedAttributes") or None,
        )
    except ValidationError:
        raise InvalidValueException(
            detail="attributes or excludedAttributes is not valid"
        ) from None


async def list_users(request: Request) -> Response:
    state = api_state(request)
    account = await _account(request)
    selection = _selection(request)
    text = request.query_params.get("filter")
    where = compile_filter(text, state.dialect) if text else None
    # Past the last user is an empty page; past a 32-bit offset, a database error otherwise.
    start = min(max(_int(request, "startIndex", 1), 1), 2**31 - 1)
    count = min(max(_int(request, "count", MAX_RESULTS), 0), MAX_RESULTS)
    page = await user_page(state.engine, account, where, start, count)
    root = _root(request)
    located = [(row, f"{root}/Users/{row['extension_id']}") for row in page.rows]
    selected = selection.attributes or selection.excluded_attributes
    answer = ListResponse[ScimUser](
        total_results=page.total,
        start_index=start,
        items_per_page=len(located),
        resources=[user_resource(row, at) for row, at in located] if selected else [],
    )
    body = answer.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=selection)
    if located and not selected:
        body["Resources"] = [user_document(row, at) for row, at in located]
    return scim_response(body)


async def get_user(request: Request) -> Response:
    state = api_state(request)
    account = await _account(request)
    selection = _selection(request)
    extension_id = request.path_params["id"]
    row = await one_user(state.engine, account, extension_id)
    if row is None:
        raise NotFoundException(detail=f"no user {extension_id}")
    version = etag(row)
    wanted = request.headers.get("if-none-match", "")
    if version in (tag.strip() for tag in wanted.split(",")) or wanted.strip() == "*":
        return Response(status_code=304, headers={"ETag": version})
    location = f"{_root(request)}/Users/{extension_id}"
    if selection.attributes or selection.excluded_attributes:
        user = user_resource(row, location)
        context = Context.RESOURCE_QUERY_RESPONSE
        body = user.model_dump(scim_ctx=context, response_parameters=selection)
    else:
        body = user_document(row, location)
    return scim_response(body, ETag=version)


async def list_groups(request: Request) -> Response:
    root = _root(request) + "/Groups"
    found = await groups(api_state(request).engine, await _account(request), root)
    answer = ListResponse[Group](
        total_results=len(found), start_index=1, items_per_page=len(found), resources=found
    )
    return scim_response(dump(answer, Context.SEARCH_RESPONSE))


async def get_group(request: Request) -> Response:
    root = _root(request) + "/Groups"
    found = await groups(api_state(request).engine, await _account(request), root)
    for group in found:
        if group.id == request.path_params["id"]:
            return scim_response(dump(group))
    raise NotFoundException(detail=f"no group {request.path_params['id']}")


async def get_config(request: Request) -> Response:
    config = service_provider_config()
    config.meta = _meta("ServiceProviderConfig", f"{_root(request)}/ServiceProviderConfig")
    return scim_response(dump(config))


def _meta(kind: str, location: str) -> Meta:
    return Meta(resource_type=kind, location=location)


def _discovery(kind: str, model: Any, documents: list[Any]) -> tuple[Route, Route]:
    async def listing(request: Request) -> Response:
        located = [_located(request, kind, doc) for doc in documents]
        answer = ListResponse[model](
            total_results=len(located),
            start_index=1,
            items_per_page=len(located),
            resources=located,
        )
        return scim_response(dump(answer, Context.SEARCH_RESPONSE))

    async def one(request: Request) -> Response:
        for doc in documents:
            if doc.id == request.path_params["id"]:
                return scim_response(dump(_located(request, kind, doc)))
        raise NotFoundException(detail=f"no {kind} {request.path_params['id']}")

    return Route(f"/{kind}s", listing, methods=["GET"]), Route(
        f"/{kind}s/{{id}}", one, methods=["GET"]
    )


def _located(request: Request, kind: str, document: Any) -> Any:
    return document.model_copy(
        update={"meta": _meta(kind, f"{_root(request)}/{kind}s/{document.id}")}
    )


async def not_implemented(request: Request) -> Response:
    return scim_error(501, "this service provider is read-only: the mirror follows RingCentral")


def _routes() -> list[BaseRoute]:
    return [
        Route("/Users", list_users, methods=["GET"]),
        Route("/Users", not_implemented, methods=_WRITES),
        Route("/Users/{id}", get_user, methods=["GET"]),
        Route("/Users/{id}", not_implemented, methods=_WRITES),
        Route("/Groups", list_groups, methods=["GET"]),
        Route("/Groups", not_implemented, methods=_WRITES),
        Route("/Groups/{id}", get_group, methods=["GET"]),
        Route("/Groups/{id}", not_implemented, methods=_WRITES),
        Route("/Bulk", not_implemented, methods=["GET", *_WRITES]),
        Route("/Me", not_implemented, methods=["GET", *_WRITES]),
        Route("/.search", not_implemented, methods=["POST"]),
        Route("/Users/.search", not_implemented, methods=["POST"]),
        Route("/ServiceProviderConfig", get_config, methods=["GET"]),
        *_discovery("ResourceType", ResourceType, resource_types()),
        *_discovery("Schema", Schema, schemas()),
    ]


def create_scim_app(settings: Settings) -> BearerGuard:
    """The `/scim/v2` app behind its token; without RINGSYNC_SCIM_TOKEN every path is 404."""
    routes = _routes()
    app = Starlette(
        routes=[*routes, Mount("/accounts/{account_id}", routes=routes)],
        exception_handlers={SCIMException: _from_exception, HTTPException: _from_exception},
    )
    token = settings.scim_token

    def refuse() -> Response:
        if not token.get_secret_value():
            return scim_error(404, "SCIM is not enabled (RINGSYNC_SCIM_TOKEN is not set)")
        return scim_error(401, "a bearer token (RINGSYNC_SCIM_TOKEN) is required")

    return BearerGuard(app, token, refuse)
