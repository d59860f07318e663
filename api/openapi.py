"""`/v1/openapi.json`: the JSON API described in OpenAPI 3.1, built from the request models."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from api.v1 import DecideRequest, ProposeRequest, ReplayRequest, ResyncRequest, reply
from workers.actions.decide import ActionState

_ERROR: Final = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
}
_ARRAY: Final = {"type": "array", "items": {"type": "object"}}


def _get(summary: str, schema: dict[str, Any], query: list[dict[str, Any]] | None = None) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": query or [],
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": schema}}},
                "401": {"description": "bearer token missing or wrong"},
                "422": {
                    "description": "bad input",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
    }


def _post(summary: str, model: Any, refusals: tuple[str, ...] = ("422",), ok: str = "202") -> Any:
    responses: dict[str, Any] = {
        ok: {
            "description": {"201": "created", "202": "queued"}.get(ok, "ok"),
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "401": {"description": "bearer token missing or wrong"},
    }
    for status in refusals:
        responses[status] = {
            "description": "refused",
            "content": {"application/json": {"schema": _ERROR}},
        }
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": model.model_json_schema()}},
            },
            "responses": responses,
        }
    }


def _decision(summary: str) -> Any:
    operation = _post(summary, DecideRequest, ("403", "404", "409", "422"), ok="200")
    operation["post"]["parameters"] = [
        {"name": "action_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    return operation


def document() -> dict[str, Any]:
    state = {
        "name": "state",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["active", "pending", "suspended", "deprovisioned"]},
    }
    action_state = {
        "name": "state",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": [s.value for s in ActionState]},
    }
    account = {"name": "account_id", "in": "query", "required": False, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ringsync API", "version": "1"},
        "servers": [{"url": "/v1"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/accounts": _get("accounts the mirror holds users of", _ARRAY),
            "/status": _get("the document `ringsync status --json` prints", {"type": "object"}),
            "/users": _get("the objects `ringsync users --json` prints", _ARRAY, [state, account]),
            "/resync": _post(
                "queue a full resync, or the approval of a held plan", ResyncRequest, ("409", "422")
            ),
            "/replay": _post("queue stored work again", ReplayRequest),
            "/actions": {
                **_get("actions, oldest first", _ARRAY, [action_state, account]),
                **_post(
                    "propose a suspend, deprovision or reactivate; answers the action",
                    ProposeRequest,
                    ("404", "422", "503"),
                    ok="201",
                ),
            },
            "/actions/{action_id}/approve": _decision("approve (not by the proposer)"),
            "/actions/{action_id}/reject": _decision("reject"),
        },
    }


async def openapi(request: Request) -> Response:
    return reply(document())
