"""One sandbox server, many accounts: each request reaches the world of the account it is for.

Every account is a World of its own (users, subscriptions, tokens, rate limits, faults) behind one
address, as RingCentral serves every account from one platform. A request belongs to the account
whose token it carries (a bearer token, or at the token endpoint the JWT or refresh token in its
form); the control API names the account in an `X-Sandbox-Account` header or an `account` query
parameter, else the first account is meant. `GET /sandbox/accounts` lists every account with its
JWT (a local test server: handing out its own invented credentials is the point).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, parse_qsl

import orjson
from starlette.types import Message, Receive, Scope, Send

from sandbox.app import create_app
from sandbox.world import World

ACCOUNT_HEADER = b"x-sandbox-account"
_TOKEN_PATHS = ("/restapi/oauth/token", "/restapi/oauth/revoke")


class AccountRouter:
    """An ASGI app over one app per World."""

    def __init__(self, worlds: Sequence[World]) -> None:
        self.worlds = list(worlds)
        self._apps = {world.account_id: create_app(world) for world in self.worlds}

    def listing(self) -> list[dict[str, str]]:
        return [
            {
                "account_id": world.account_id,
                "client_id": world.credentials.client_id,
                "jwt": world.credentials.jwt,
            }
            for world in self.worlds
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._apps[self.worlds[0].account_id](scope, receive, send)
            return
        if scope["path"] == "/sandbox/accounts" and scope["method"] == "GET":
            await _json(send, self.listing())
            return
        world = self._by_header_or_query(scope) or self._by_bearer(scope)
        if world is None and scope["path"] in _TOKEN_PATHS:
            body = await _body(receive)
            world = self._by_form(body)
            receive = _replay(body)
        chosen = world or self.worlds[0]
        await self._apps[chosen.account_id](scope, receive, send)

    def _find(self, account_id: str) -> World | None:
        return next((w for w in self.worlds if w.account_id == account_id), None)

    def _by_header_or_query(self, scope: Scope) -> World | None:
        for name, value in scope["headers"]:
            if name == ACCOUNT_HEADER:
                return self._find(value.decode())
        named = parse_qs(scope.get("query_string", b"").decode()).get("account")
        return self._find(named[0]) if named else None

    def _by_bearer(self, scope: Scope) -> World | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode().partition(" ")
                if scheme.lower() == "bearer":
                    return self._holding(token.strip())
        return None

    def _by_form(self, body: bytes) -> World | None:
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        jwt = form.get("assertion")
        if jwt:
            return next((w for w in self.worlds if w.credentials.jwt == jwt), None)
        return self._holding(form.get("refresh_token") or form.get("token") or "")

    def _holding(self, token: str) -> World | None:
        if not token:
            return None
        return next((w for w in self.worlds if w.tokens.holds(token)), None)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _json(send: Send, document: object) -> None:
    payload = orjson.dumps(document)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})
