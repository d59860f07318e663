"""Bearer-token guards: each surface of the API has its own token, compared in constant time.

A request without the right token never reaches a route. The token is unwrapped only here, and
neither it nor what the caller sent is ever logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_matches(expected: SecretStr, authorization: str | None) -> bool:
    """Whether `authorization` is `Bearer <expected>`; an unset `expected` matches nothing."""
    secret = expected.get_secret_value()
    if not secret or not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), secret.encode())


class BearerGuard:
    """Lets a request through to `app` only with the bearer `token`; `refuse` answers the rest
    (a 401 with `WWW-Authenticate: Bearer`, RFC 6750)."""

    def __init__(self, app: ASGIApp, token: SecretStr, refuse: Callable[[], Response]) -> None:
        self.app = app
        self.token = token
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not bearer_matches(
            self.token, Headers(scope=scope).get("authorization")
        ):
            response = self.refuse()
            if response.status_code == 401:
                response.headers.update(CHALLENGE)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
