"""Response shapes: JSON via orjson, RingCentral's error envelope, SCIM's and OAuth's.

RingCentral errors: {"errorCode", "message", "errors": [{"errorCode", "message", ...}]}; clients
branch on `errorCode`. SCIM: {schemas, status (a string), scimType?, detail}. OAuth: {error,
error_description, errors[]}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


async def json_object(request: Request) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def rc_error(
    status: int,
    code: str,
    message: str,
    *,
    parameter: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"errorCode": code, "message": message}
    if parameter is not None:
        error["parameterName"] = parameter
    return json_response(
        {"errorCode": code, "message": message, "errors": [error]}, status, headers
    )


def invalid(parameter: str) -> Response:
    return rc_error(
        400, "CMN-101", f"Parameter [{parameter}] value is invalid.", parameter=parameter
    )


def missing(parameter: str) -> Response:
    return rc_error(
        400, "CMN-100", f"Mandatory parameter [{parameter}] not specified.", parameter=parameter
    )


def not_found(parameter: str) -> Response:
    return rc_error(
        404, "CMN-102", f"Resource for parameter [{parameter}] is not found.", parameter=parameter
    )


def scim_error(
    status: int,
    detail: str,
    scim_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"schemas": [SCIM_ERROR], "status": str(status), "detail": detail}
    if scim_type is not None:
        body["scimType"] = scim_type
    return json_response(body, status, headers)


def oauth_error(status: int, error: str, code: str, description: str) -> Response:
    return json_response(
        {
            "error": error,
            "error_description": description,
            "errors": [{"errorCode": code, "message": description}],
        },
        status,
    )
