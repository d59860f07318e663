"""`POST /restapi/oauth/token` (JWT bearer grant, refresh) and `/restapi/oauth/revoke`, with
client credentials in HTTP Basic auth; both in the Auth throttling group."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gate import gated
from sandbox.responses import json_response, oauth_error
from sandbox.world import World

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _client_ok(request: Request, world: World) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return _same(client_id, world.credentials.client_id) and _same(
        secret, world.credentials.client_secret
    )


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body (parsed here: Starlette's form parser needs an extra package)."""
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _invalid_client() -> Response:
    return oauth_error(401, "invalid_client", "OAU-123", "Invalid client credentials")


@gated("Auth", auth="none")
async def token(request: Request, world: World) -> Response:
    if not _client_ok(request, world):
        return _invalid_client()
    form = await _form(request)
    grant_type = form.get("grant_type", "")
    if grant_type == JWT_GRANT:
        assertion = form.get("assertion", "")
        if not _JWT_SHAPE.match(assertion) or not _same(assertion, world.credentials.jwt):
            return oauth_error(400, "invalid_grant", "OAU-213", "Invalid JWT token")
        grant = world.tokens.issue()
    elif grant_type == "refresh_token":
        refreshed = world.tokens.refresh(form.get("refresh_token", ""))
        if refreshed is None:
            return oauth_error(400, "invalid_grant", "OAU-211", "Invalid or expired refresh token")
        grant = refreshed
    else:
        return oauth_error(400, "unsupported_grant_type", "OAU-250", "Unsupported grant type")
    return json_response(
        {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": grant.expires_in,
            "refresh_token": grant.refresh_token,
            "refresh_token_expires_in": 604_800,
            "scope": "ReadAccounts",
            "owner_id": world.owner_id,
            "endpoint_id": grant.session_id,
            "session_id": grant.session_id,
        }
    )


@gated("Auth", auth="none")
async def revoke(request: Request, world: World) -> Response:
    if not _client_ok(request, world):
        return _invalid_client()
    form = await _form(request)
    value = form.get("token") or request.query_params.get("token") or ""
    world.tokens.revoke(value)
    return Response(status_code=200)


ROUTES = [
    Route("/restapi/oauth/token", token, methods=["POST"]),
    Route("/restapi/oauth/revoke", revoke, methods=["POST"]),
]
